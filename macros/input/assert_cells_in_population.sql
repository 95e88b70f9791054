{#- A response whose every cell value is known, but whose combination is not a population cell,
    means the frame (or the totals) and the survey disagree on the population: a structural
    error, not a bad row. Stop and list examples. -#}
{% macro assert_cells_in_population(checked_relation, checks) %}
    {%- if surveysynth.runs_queries() -%}
        {%- set dims = surveysynth.cell_dims() -%}
        {%- set q -%}
            with valid as (
                select distinct {{ dims | join(', ') }} from {{ checked_relation }}
                where {% for check in checks %}{{ check.column }} is null{{ ' and ' if not loop.last }}{% endfor %}
            )
            select {% for d in dims %}valid.{{ d }}{{ ', ' if not loop.last }}{% endfor %}
            from valid
            left join {{ ref('population_cells') }} as pop
                on {% for d in dims %}valid.{{ d }} = pop.{{ d }}{{ ' and ' if not loop.last }}{% endfor %}
            where pop.cell_id is null
            order by {% for d in dims %}valid.{{ d }}{{ ', ' if not loop.last }}{% endfor %}
        {%- endset -%}
        {%- set rows = run_query(q).rows -%}
        {%- if rows | length > 0 -%}
            {%- set examples = [] -%}
            {%- for r in rows[:5] -%}
                {%- set parts = [] -%}
                {%- for d in dims %}{% do parts.append(surveysynth.ident_name(d) ~ "='" ~ r[loop.index0] ~ "'") %}{% endfor -%}
                {%- do examples.append('(' ~ parts | join(', ') ~ ')') -%}
            {%- endfor -%}
            {{ exceptions.raise_compiler_error(
                "surveysynth: " ~ rows | length ~ " cell(s) in ss_responses are absent from the population ("
                ~ ('ss_frame' if surveysynth.has_frame() else 'ss_population_totals') ~ "), e.g. "
                ~ examples | join(', ') ~ ". Add the cells to the frame or totals, or correct the responses.") }}
        {%- endif -%}
    {%- endif -%}
{% endmacro %}
