{#- The engine's name of an expression's type, as text (for comparing the types of two inputs). -#}
{% macro type_of(expr) %}
    {{ return(adapter.dispatch('type_of', 'surveysynth')(expr)) }}
{% endmacro %}

{% macro default__type_of(expr) %}typeof({{ expr }}){% endmacro %}

{% macro postgres__type_of(expr) %}cast(pg_typeof({{ expr }}) as text){% endmacro %}

{#- The family of a type name: text, number, or the name itself (dates, timestamps, ...). -#}
{% macro type_family(type_name) %}
    {%- set t = (type_name or '') | upper -%}
    {%- for word in ['CHAR', 'TEXT', 'STRING'] %}{% if word in t %}{{ return('text') }}{% endif %}{% endfor -%}
    {%- for word in ['INT', 'DOUBLE', 'FLOAT', 'DECIMAL', 'NUMERIC', 'REAL'] %}{% if word in t %}{{ return('number') }}{% endif %}{% endfor -%}
    {{ return(t | lower) }}
{% endmacro %}
