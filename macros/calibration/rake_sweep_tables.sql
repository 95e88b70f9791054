{#- The `tables` way of running the raking sweeps (see rake_iterate): while the model compiles,
    build the starting state of the cell table as a table, then one CREATE TABLE per sweep from
    the table before, until no group is live (every group within tol, or max_iter sweeps done).
    Returns the relation holding the final state, which the model's own statement then reads.

    Each statement is small and shallow, so every engine plans it quickly; the price is one round
    trip per sweep. Two state tables, <model>__rake_state_a and _b, alternate and are replaced on
    every run; the last one is left in the model's schema (a few rows per group x cell).
    At parse time (execute false) nothing runs and the relation is only named. -#}
{% macro _rake_sweep_tables(plan, head) %}
    {%- set tables = [] -%}
    {%- for suffix in ['a', 'b'] -%}
        {%- do tables.append(api.Relation.create(
            database=this.database, schema=this.schema,
            identifier=this.identifier ~ '__rake_state_' ~ suffix, type='table')) -%}
    {%- endfor -%}
    {%- if not surveysynth.runs_queries() -%}
        {{ return(tables[0]) }}
    {%- endif -%}
    {%- if head is none -%}
        {{ exceptions.raise_compiler_error("surveysynth.rake: the tables method needs the rk_cells and rk_start CTEs (head)") }}
    {%- endif -%}

    {%- for r in tables %}{% do adapter.drop_relation(r) %}{% endfor -%}
    {%- set start = 'with ' ~ head ~ '\n' ~ surveysynth._rake_error_stage(plan, 'select * from rk_start', 's0') -%}
    {%- do run_query(create_table_as(false, tables[0], start)) -%}

    {%- set ns = namespace(current=0, done=false) -%}
    {%- for s in range(1, plan.max_iter + 1) -%}
        {%- if not ns.done -%}
            {%- set live = run_query(
                'select count(*) as n_live from ' ~ tables[ns.current]
                ~ ' where rk_err > ' ~ plan.tol ~ ' and rk_sweep < ' ~ plan.max_iter).columns[0].values()[0] -%}
            {%- if live == 0 -%}
                {%- set ns.done = true -%}
            {%- else -%}
                {%- set next = 1 - ns.current -%}
                {%- do adapter.drop_relation(tables[next]) -%}
                {%- do run_query(create_table_as(false, tables[next],
                    surveysynth._rake_sweep(plan, 'select * from ' ~ tables[ns.current], 't'))) -%}
                {%- set ns.current = next -%}
            {%- endif -%}
        {%- endif -%}
    {%- endfor -%}
    {%- do adapter.drop_relation(tables[1 - ns.current]) -%}
    {{ return(tables[ns.current]) }}
{% endmacro %}
