{#- Any one value of an expression within a group, for columns known to be constant in it.
    any_value is cheaper than min on DuckDB (no comparisons); min is the portable fallback. -#}
{% macro any_value(expr) %}
    {{ return(adapter.dispatch('any_value', 'surveysynth')(expr)) }}
{% endmacro %}

{% macro default__any_value(expr) %}min({{ expr }}){% endmacro %}

{% macro duckdb__any_value(expr) %}any_value({{ expr }}){% endmacro %}
