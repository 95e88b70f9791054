{#- A number as text with a fixed count of decimals ('3.5'), rendered alike on every engine
    (a plain cast of a double prints '3.5', '3.50000' or '3.5E0' depending on the engine,
    and PostgreSQL has no round(double precision, int)). Rounds half away from zero. -#}
{% macro number_as_text(expr, places=1) %}
    {{ return(adapter.dispatch('number_as_text', 'surveysynth')(expr, places)) }}
{% endmacro %}

{% macro default__number_as_text(expr, places) %}
    cast(cast({{ expr }} as decimal(38, {{ places }})) as {{ dbt.type_string() }})
{% endmacro %}
