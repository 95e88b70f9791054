{#- The raking sweeps over the cell table rk_start, as CTE definitions ending in `rk_last` (the
    final state of every group x cell) followed by a comma.

    recursive: one recursive CTE; each recursion is one sweep, and a group stops recursing once its
               error is within tol, so the cost follows the sweeps actually needed.
    unrolled:  ss_rake_max_iter sweeps compiled as chained CTEs, each reading the one before once;
               a converged group passes through unchanged. Plain SQL for engines without
               recursive CTEs with window functions; compile and plan time grow with max_iter.
    `auto` picks recursive on DuckDB (rake_uses_recursive), unrolled elsewhere. -#}

{% macro rake_uses_recursive(method) %}
    {%- if method == 'recursive' -%}{{ return(true) }}{%- endif -%}
    {%- if method == 'unrolled' -%}{{ return(false) }}{%- endif -%}
    {{ return(adapter.dispatch('rake_supports_recursive', 'surveysynth')()) }}
{% endmacro %}

{% macro default__rake_supports_recursive() %}{{ return(false) }}{% endmacro %}

{% macro duckdb__rake_supports_recursive() %}{{ return(true) }}{% endmacro %}

{% macro rake_iterate(plan) %}
    {%- set cols = surveysynth._rake_cols(plan.static + ['rk_sweep'] + plan.state + ['rk_err']) -%}
    {%- if surveysynth.rake_uses_recursive(plan.method) %}
rk_iter as (

    {{ surveysynth._rake_error_stage(plan, 'select * from rk_start', 's0') }}

    union all

    {{ surveysynth._rake_sweep(plan, 'select * from rk_iter where rk_err > ' ~ plan.tol ~ ' and rk_sweep < ' ~ plan.max_iter, 'r') }}

),

rk_last as (

    select {{ cols }}
    from (
        select rk_iter.*, max(rk_sweep) over (partition by {{ plan.group_by | join(', ') }}) as rk_last_sweep
        from rk_iter
    ) as rk_all
    where rk_sweep = rk_last_sweep

),
    {%- else %}
rk_it_0 as (

    {{ surveysynth._rake_error_stage(plan, 'select * from rk_start', 's0') }}

),
{% for s in range(1, plan.max_iter + 1) %}
rk_it_{{ s }} as (

    {{ surveysynth._rake_sweep(plan, 'select * from rk_it_' ~ (s - 1), 'u' ~ s) }}

),
{% endfor %}
rk_last as (

    select {{ cols }} from rk_it_{{ plan.max_iter }}

),
    {%- endif %}
{% endmacro %}
