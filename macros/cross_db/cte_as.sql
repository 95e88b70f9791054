{#- The keyword between a CTE's name and its body: `as`, and on PostgreSQL `as materialized`.
    PostgreSQL (12+) inlines a CTE that is referenced once into the query that reads it; in
    domain_estimates (a hundred-odd CTEs, most read once, nested through the estimate macros) the
    inlined plan took over 10 GB and many minutes to plan, against 1.4 s with the CTEs
    materialized. Other engines plan CTEs well as they are. -#}
{% macro cte_as() %}
    {{- return(adapter.dispatch('cte_as', 'surveysynth')()) -}}
{% endmacro %}

{% macro default__cte_as() %}as{% endmacro %}

{% macro postgres__cte_as() %}as materialized{% endmacro %}
