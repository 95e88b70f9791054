{#- Quote a Python/Jinja value as a SQL literal: null, numbers as is, booleans as true/false,
    anything else as a string literal with the engine's escaping (quotes doubled; on Spark, whose
    string literals read backslash escapes and join adjacent literals, quote and backslash
    escaped with a backslash). Every var value that reaches SQL text goes through here. -#}
{% macro sql_literal(value) %}
    {%- if value is none -%}{{ return('null') }}
    {%- elif value is sameas true or value is sameas false -%}{{ return('true' if value else 'false') }}
    {%- elif value is number -%}{{ return(value | string) }}
    {%- endif -%}
    {{ return(adapter.dispatch('sql_literal', 'surveysynth')(value | string)) }}
{% endmacro %}

{% macro default__sql_literal(text) %}
    {{ return("'" ~ text.replace("'", "''") ~ "'") }}
{% endmacro %}

{% macro spark__sql_literal(text) %}
    {{ return("'" ~ text.replace("\\", "\\\\").replace("'", "\\'") ~ "'") }}
{% endmacro %}
