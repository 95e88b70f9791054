{{ surveysynth.validate_config() }}
{#- The support map: one row per population cell x wave with how much the survey says about it.
    Weights are the design weights where supplied; without them every respondent in a cell has the
    same weight, so n_effective = n_respondents and weight_cv = 0. -#}
{%- set dims = surveysynth.cell_dims() -%}
{%- set min_n = var('ss_sparse_below_n') -%}
{%- set min_neff = var('ss_sparse_below_neff') -%}

with cells as (

    select * from {{ ref('population_cells') }}

),

responses as (

    select * from {{ ref('stg_responses') }}

),

waves as (

    select distinct wave from responses

),

respondents as (

    select
        cell_id,
        wave,
        count(*) as n_respondents,
        {% call surveysynth.dagg() %}coalesce(design_weight, 1.0){% endcall %} as sum_w,
        {% call surveysynth.dagg() %}coalesce(design_weight, 1.0) * coalesce(design_weight, 1.0){% endcall %} as sum_w2,
        max(case when design_weight is null then 1 else 0 end) as has_derived_weight
    from responses
    group by cell_id, wave

),

joined as (

    select
        {% for d in dims -%}
        cells.{{ d }},
        {% endfor -%}
        cells.cell_id,
        waves.wave,
        coalesce(respondents.n_respondents, 0) as n_respondents,
        cells.n_population,
        respondents.sum_w,
        respondents.sum_w2,
        respondents.has_derived_weight
    from cells
    cross join waves
    left join respondents
        on cells.cell_id = respondents.cell_id
        and waves.wave = respondents.wave

),

measured as (

    select
        {% for d in dims -%}
        {{ d }},
        {% endfor -%}
        cell_id,
        wave,
        n_respondents,
        n_population,
        case
            when n_respondents = 0 then 0.0
            when has_derived_weight = 1 then cast(n_population as {{ surveysynth.type_double() }})
            else sum_w
        end as sum_weights,
        case
            when n_respondents = 0 then 0.0
            else sum_w * sum_w / sum_w2
        end as n_effective,
        case
            when n_respondents = 0 then null
            when sum_w2 / n_respondents - (sum_w / n_respondents) * (sum_w / n_respondents) <= 0 then 0.0
            else sqrt(sum_w2 / n_respondents - (sum_w / n_respondents) * (sum_w / n_respondents))
                / (sum_w / n_respondents)
        end as weight_cv
    from joined

),

classified as (

    select
        measured.*,
        case
            when n_respondents = 0 or n_population = 0 then 'empty'
            when n_respondents < {{ min_n }} or n_effective < {{ min_neff }} then 'sparse'
            else 'supported'
        end as support_class,
        case
            when n_population = 0 then 'no population units in the cell'
            when n_respondents = 0 then 'no respondents'
            when n_respondents < {{ min_n }}
                then {{ dbt.concat(["cast(n_respondents as " ~ dbt.type_string() ~ ")", "' respondents, below ss_sparse_below_n = " ~ min_n ~ "'"]) }}
            when n_effective < {{ min_neff }}
                then {{ dbt.concat([surveysynth.number_as_text("n_effective", 1), "' effective respondents (Kish), below ss_sparse_below_neff = " ~ min_neff ~ "'"]) }}
            else 'enough respondents and effective sample size'
        end as reason
    from measured

)

select * from classified
