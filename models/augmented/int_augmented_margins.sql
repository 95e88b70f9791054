{{ surveysynth.validate_config() }}
{#- The targets the implicates are calibrated to, one row per margin x category x wave: the trusted
    margins of calibration_margins (population counts and known auxiliary totals, as for the real
    records) plus the `completion` margin, whose categories are every completed cell x wave (target:
    its population count N) and '(observed)' (target: the population of all other cells). The
    completion margin is what keeps each augmented cell at N units while the observed cells take
    what the completed cells leave of every other margin. -#}
{{ surveysynth.validate_design_config() }}
{%- set specs = surveysynth.augmented_margin_specs() -%}
{%- set n_margins = (specs.counts | length) + (specs.totals | length) -%}

with margins as (

    select * from {{ ref('calibration_margins') }}

),

units as (

    select distinct wave, cell_id, completion_group from {{ ref('int_augmented_units') }}

),

support as (

    select * from {{ ref('cell_support') }}

),

{#- every cell x wave with its completion group (cells with no record are observed) -#}
groups as (

    select
        support.wave,
        support.cell_id,
        support.n_population,
        coalesce(units.completion_group, '(observed)') as completion_group
    from support
    left join units
        on support.cell_id = units.cell_id
        and support.wave = units.wave

),

completion as (

    select
        'completion' as margin_id,
        {{ n_margins }} as margin_index,
        'count' as margin_kind,
        cast(null as {{ dbt.type_string() }}) as variable,
        'completion_group' as margin_dims,
        completion_group as category,
        wave,
        cast({% call surveysynth.dagg() %}n_population{% endcall %} as {{ surveysynth.type_double() }}) as target,
        {% call surveysynth.dagg() %}n_population{% endcall %} as population_count
    from groups
    group by wave, completion_group

),

final as (

    select
        margin_id,
        margin_index,
        margin_kind,
        variable,
        margin_dims,
        category,
        wave,
        target,
        population_count
    from margins
    union all
    select * from completion

)

select * from final
