{#- The raking sweeps over the cell table rk_start, as CTE definitions ending in `rk_last` (the
    final state of every group x cell) followed by a comma.

    recursive: one recursive CTE; each recursion is one sweep (category sums by group-by + join,
               see _rake_sweep_join), and a group stops recursing once its error is within tol,
               so the cost follows the sweeps actually needed.
    unrolled:  ss_rake_max_iter sweeps compiled as chained CTEs, each reading the one before once;
               a converged group passes through unchanged. Plain SQL for engines without
               recursive CTEs with window functions; compile and plan time grow with max_iter.
    tables:    each sweep is one CREATE TABLE from the table before (macro _rake_sweep_tables), run
               while the model compiles, until every group has converged; the model then reads
               the last state table. For engines whose planners cannot take the unrolled query and
               whose recursive CTEs forbid window functions (Spark).
    `auto` picks recursive on DuckDB (rake_uses_recursive), tables on Spark and PostgreSQL
    (rake_uses_tables), unrolled elsewhere. -#}

{% macro rake_uses_recursive(method) %}
    {%- if method == 'recursive' -%}{{ return(true) }}{%- endif -%}
    {%- if method in ('unrolled', 'tables') -%}{{ return(false) }}{%- endif -%}
    {%- if surveysynth.rake_uses_tables(method) -%}{{ return(false) }}{%- endif -%}
    {{ return(adapter.dispatch('rake_supports_recursive', 'surveysynth')()) }}
{% endmacro %}

{% macro default__rake_supports_recursive() %}{{ return(false) }}{% endmacro %}

{% macro duckdb__rake_supports_recursive() %}{{ return(true) }}{% endmacro %}

{% macro rake_uses_tables(method) %}
    {%- if method == 'tables' -%}{{ return(true) }}{%- endif -%}
    {%- if method != 'auto' -%}{{ return(false) }}{%- endif -%}
    {{ return(adapter.dispatch('rake_prefers_tables', 'surveysynth')()) }}
{% endmacro %}

{% macro default__rake_prefers_tables() %}{{ return(false) }}{% endmacro %}

{#- Spark forbids window functions over a recursive reference, and plans the unrolled sweeps in
    time that grows faster than their number (minutes for ten sweeps). -#}
{% macro spark__rake_prefers_tables() %}{{ return(true) }}{% endmacro %}

{#- PostgreSQL runs the recursive sweeps, but estimates the CTEs inside the recursive term at one
    row and plans nested loops: minutes where the tables method takes seconds. -#}
{% macro postgres__rake_prefers_tables() %}{{ return(true) }}{% endmacro %}

{#- `head`: the CTE definitions of rk_cells and rk_start (needed by the tables method only). -#}
{% macro rake_iterate(plan, head=none) %}
    {%- set cols = surveysynth._rake_cols(plan.static + ['rk_sweep'] + plan.state + ['rk_err']) -%}
    {%- if surveysynth.rake_uses_tables(plan.method) %}
rk_last as (

    select {{ cols }} from {{ surveysynth._rake_sweep_tables(plan, head) }}

),
    {%- elif surveysynth.rake_uses_recursive(plan.method) %}
rk_iter as (

    select * from (
        with rk_s0 as (select * from rk_start)
        {{ surveysynth._rake_error_stage_join(plan, 'rk_s0', 's0') }}
    ) as rk_anchor

    union all

    {{ surveysynth._rake_sweep_join(plan, 'select * from rk_iter where rk_err > ' ~ plan.tol ~ ' and rk_sweep < ' ~ plan.max_iter, 'r') }}

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
