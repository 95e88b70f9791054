{#- The frame defines the population, so a frame row without a cell or a unit listed twice
    is a structural error: stop with counts and examples rather than guess. -#}
{% macro assert_frame_is_valid(frame_sql) %}
    {%- if execute -%}
        {%- set uid = var('ss_frame_unit_id') -%}
        {%- set null_conds = [] -%}
        {%- for d in surveysynth.cell_dims() %}{% do null_conds.append(d ~ ' is null') %}{% endfor -%}
        {%- set q -%}
            select
                (select count(*) from {{ frame_sql }} where {{ uid }} is null or {{ null_conds | join(' or ') }}) as n_null,
                (select count(*) from (
                    select {{ uid }} from {{ frame_sql }} group by {{ uid }} having count(*) > 1
                ) as dup) as n_dup
        {%- endset -%}
        {%- set row = run_query(q).rows[0] -%}
        {%- if row[0] > 0 -%}
            {{ exceptions.raise_compiler_error(
                "surveysynth: the frame (var 'ss_frame') has " ~ row[0] ~ " row(s) with a missing unit id ("
                ~ uid ~ ") or cell dimension (" ~ surveysynth.cell_dims() | join(', ')
                ~ "). Every population unit needs a cell: fix the frame.") }}
        {%- endif -%}
        {%- if row[1] > 0 -%}
            {{ exceptions.raise_compiler_error(
                "surveysynth: the frame (var 'ss_frame') lists " ~ row[1] ~ " unit id(s) of column '"
                ~ uid ~ "' more than once. A frame has one row per unit: deduplicate it.") }}
        {%- endif -%}
    {%- endif -%}
{% endmacro %}
