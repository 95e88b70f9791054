{#- True where a double is a finite number, false for inf, -inf and NaN (null stays null).
    DuckDB, PostgreSQL and Spark all accept these values in a double column and sort NaN above
    every number, so a range check alone would let them through or mislabel them. -#}
{% macro is_finite(expr) %}
    {{ return(adapter.dispatch('is_finite', 'surveysynth')(expr)) }}
{% endmacro %}

{% macro default__is_finite(expr) %}
    ({{ expr }} not in (cast('Infinity' as double precision), cast('-Infinity' as double precision), cast('NaN' as double precision)))
{% endmacro %}

{% macro duckdb__is_finite(expr) %}isfinite({{ expr }}){% endmacro %}

{% macro spark__is_finite(expr) %}
    (not isnan({{ expr }}) and abs({{ expr }}) <> cast('Infinity' as double))
{% endmacro %}
