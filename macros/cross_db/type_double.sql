{#- 64-bit floating point on every engine (surveysynth.type_double() is 32-bit on DuckDB). -#}
{% macro type_double() %}
    {{ return(adapter.dispatch('type_double', 'surveysynth')()) }}
{% endmacro %}

{% macro default__type_double() %}double precision{% endmacro %}

{% macro duckdb__type_double() %}double{% endmacro %}

{% macro spark__type_double() %}double{% endmacro %}
