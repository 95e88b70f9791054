{#- The frame defines the population, so an empty frame, a frame row without a cell, a unit listed
    twice or an auxiliary that is not a finite number is a structural error: stop with counts and
    the column rather than guess. -#}
{% macro assert_frame_is_valid(frame_sql) %}
    {%- if surveysynth.runs_queries() -%}
        {%- set uid = surveysynth.ident(var('ss_frame_unit_id')) -%}
        {%- set null_conds = [] -%}
        {%- for d in surveysynth.cell_dims() %}{% do null_conds.append(d ~ ' is null') %}{% endfor -%}
        {%- set aux_names = surveysynth.frame_auxiliary_names() -%}
        {%- set q -%}
            select
                (select count(*) from {{ frame_sql }}) as n_rows,
                (select count(*) from {{ frame_sql }} where {{ uid }} is null or {{ null_conds | join(' or ') }}) as n_null,
                (select count(*) from (
                    select {{ uid }} from {{ frame_sql }} group by {{ uid }} having count(*) > 1
                ) as dup) as n_dup
                {%- for a in aux_names -%}
                {%- set x = surveysynth.try_cast_number(surveysynth.ident(a)) -%}
                , (select count(*) from {{ frame_sql }} where {{ surveysynth.ident(a) }} is not null
                    and ({{ x }} is null or not {{ surveysynth.is_finite(x) }} or abs({{ x }}) > {{ surveysynth.max_abs_value() }})) as n_bad_{{ loop.index }}
                {%- endfor %}
        {%- endset -%}
        {%- set row = run_query(q).rows[0] -%}
        {%- set about = "the frame (var 'ss_frame' = '" ~ var('ss_frame') ~ "')" -%}
        {%- if row[0] == 0 -%}
            {{ exceptions.raise_compiler_error(
                "surveysynth: " ~ about ~ " has no rows. The frame lists every population unit with its cell: "
                ~ "point the var at it, or set ss_frame: null and give ss_population_totals.") }}
        {%- endif -%}
        {%- if row[1] > 0 -%}
            {{ exceptions.raise_compiler_error(
                "surveysynth: " ~ about ~ " has " ~ row[1] ~ " row(s) with a missing unit id ("
                ~ var('ss_frame_unit_id') ~ ") or cell dimension (" ~ surveysynth.cell_dim_names() | join(', ')
                ~ "). Every population unit needs a cell: fix the frame.") }}
        {%- endif -%}
        {%- if row[2] > 0 -%}
            {{ exceptions.raise_compiler_error(
                "surveysynth: " ~ about ~ " lists " ~ row[2] ~ " unit id(s) of column '"
                ~ var('ss_frame_unit_id') ~ "' more than once. A frame has one row per unit: deduplicate it.") }}
        {%- endif -%}
        {%- for a in aux_names -%}
            {%- if row[2 + loop.index] > 0 -%}
                {{ exceptions.raise_compiler_error(
                    "surveysynth: " ~ about ~ ": auxiliary '" ~ a ~ "' (ss_frame_auxiliaries) is not a finite number, or is beyond "
                    ~ "ss_max_abs_value = " ~ surveysynth.max_abs_value() ~ ", in " ~ row[2 + loop.index]
                    ~ " row(s). Register values are trusted totals: fix the column, or leave it out of ss_frame_auxiliaries.") }}
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}
{% endmacro %}
