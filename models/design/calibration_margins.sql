{{ surveysynth.validate_config() }}
{#- The calibration targets in long format, one row per margin x category x wave.
    Count margins (var ss_calibration_margins) take population counts from population_cells (the
    frame, or ss_population_totals when there is no frame). Known auxiliary totals
    (var ss_calibration_totals) take the frame's total of the auxiliary within each category of
    their `by` dims; population_count carries the category's unit count, which the same step holds.
    Targets do not change between waves: each wave is calibrated on its own. -#}
{{ surveysynth.validate_design_config() }}
{%- set specs = surveysynth.calibration_specs() -%}

with cells as (

    select * from {{ ref('population_cells') }}

),

waves as (

    select distinct wave from {{ ref('stg_responses') }}

),

targets as (

    {% for m in specs.counts -%}
    select
        {{ surveysynth.sql_literal(m.id) }} as margin_id,
        {{ loop.index }} as margin_index,
        'count' as margin_kind,
        cast(null as {{ dbt.type_string() }}) as variable,
        {{ surveysynth.sql_literal(surveysynth.names_label(m.dims, ', ')) }} as margin_dims,
        {{ surveysynth.category_key_expr(m.dims) }} as category,
        cast({% call surveysynth.dagg() %}n_population{% endcall %} as {{ surveysynth.type_double() }}) as target,
        {% call surveysynth.dagg() %}n_population{% endcall %} as population_count
    from cells
    {% if m.dims | length > 0 -%}
    group by {{ surveysynth.category_key_expr(m.dims) }}
    {%- endif %}
    {{ 'union all' if not loop.last or specs.totals }}
    {% endfor -%}
    {% for t in specs.totals -%}
    select
        {{ surveysynth.sql_literal(t.id) }} as margin_id,
        {{ specs.counts | length + loop.index }} as margin_index,
        'total' as margin_kind,
        {{ surveysynth.sql_literal(surveysynth.ident_name(t.variable)) }} as variable,
        {{ surveysynth.sql_literal(surveysynth.names_label(t.dims, ', ')) }} as margin_dims,
        {{ surveysynth.category_key_expr(t.dims) }} as category,
        cast({% call surveysynth.dagg() %}{{ surveysynth.aux_total_column(t.variable) }}{% endcall %} as {{ surveysynth.type_double() }}) as target,
        {% call surveysynth.dagg() %}n_population{% endcall %} as population_count
    from cells
    {% if t.dims | length > 0 -%}
    group by {{ surveysynth.category_key_expr(t.dims) }}
    {%- endif %}
    {{ 'union all' if not loop.last }}
    {% endfor %}

),

final as (

    select
        targets.margin_id,
        targets.margin_index,
        targets.margin_kind,
        targets.variable,
        targets.margin_dims,
        targets.category,
        waves.wave,
        targets.target,
        targets.population_count
    from targets
    cross join waves

)

select * from final
