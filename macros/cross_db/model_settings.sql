{#- Session settings for the statement that builds a model, run as its pre-hook (dbt_project.yml).
    PostgreSQL: the generated SQL joins many aggregated CTEs, whose row counts the planner
    estimates at 1, so it reorders joins into near-cross products and nested loops, and its JIT
    spends seconds compiling the wide expressions. Joining in the written order (every join here
    is written fact-to-lookup on full keys) and no JIT make direct_estimates 30x faster.
    SET LOCAL ends with the model's transaction. Other engines need nothing. -#}
{% macro model_settings() %}
    {{ return(adapter.dispatch('model_settings', 'surveysynth')()) }}
{% endmacro %}

{% macro default__model_settings() %}{{ return('') }}{% endmacro %}

{% macro postgres__model_settings() %}
    {{ return('set local jit = off; set local join_collapse_limit = 1') }}
{% endmacro %}
