{{ surveysynth.validate_config() }}
{#- The design strata, one row per stratum x wave: population N_h, sampled and responding units,
    the derived design weight N_h / n_h and a status. A stratum with no respondents keeps its row
    (status no_respondents): its population is reached only through calibration to coarser margins,
    and a margin category left with no respondents fails the build (calibration_margin_check). -#}
{{ surveysynth.validate_design_config() }}
{%- set strata = surveysynth.design_strata() -%}

with cells as (

    select * from {{ ref('population_cells') }}

),

responses as (

    select * from {{ ref('stg_responses') }}

),

sample as (

    select * from {{ ref('int_design_sample') }}

),

strata as (

    select
        {% for d in strata -%}
        {{ d }},
        {% endfor -%}
        {{ surveysynth.category_key_expr(strata) }} as stratum_id,
        {% call surveysynth.dagg() %}n_population{% endcall %} as n_population
    from cells
    group by {% for d in strata %}{{ d }}{{ ', ' if not loop.last }}{% endfor %}

),

waves as (

    select distinct wave from responses

),

respondents as (

    select
        {{ surveysynth.category_key_expr(strata) }} as stratum_id,
        wave,
        count(*) as n_respondents
    from responses
    group by {{ surveysynth.category_key_expr(strata) }}, wave

),

sampled as (

    select
        stratum_id,
        wave,
        count(*) as n_sampled,
        {% call surveysynth.dagg() %}case when responded then 1 else 0 end{% endcall %} as n_flagged_responded
    from sample
    group by stratum_id, wave

),

joined as (

    select
        {% for d in strata -%}
        strata.{{ d }},
        {% endfor -%}
        strata.stratum_id,
        waves.wave,
        strata.n_population,
        {% if surveysynth.has_sample() -%}
        coalesce(sampled.n_sampled, 0) as n_sampled,
        coalesce(sampled.n_flagged_responded, 0) as n_flagged_responded,
        {%- else -%}
        cast(null as {{ dbt.type_bigint() }}) as n_sampled,
        cast(null as {{ dbt.type_bigint() }}) as n_flagged_responded,
        {%- endif %}
        coalesce(respondents.n_respondents, 0) as n_respondents
    from strata
    cross join waves
    left join respondents
        on strata.stratum_id = respondents.stratum_id
        and waves.wave = respondents.wave
    left join sampled
        on strata.stratum_id = sampled.stratum_id
        and waves.wave = sampled.wave

),

final as (

    select
        joined.*,
        -- N_h / n_h with n_h the sampled units when the sample is known, else the respondents
        -- (then the derived weight already carries a within-stratum nonresponse adjustment)
        case
            when coalesce(n_sampled, n_respondents) > 0
                then cast(n_population as {{ surveysynth.type_double() }}) / coalesce(n_sampled, n_respondents)
        end as derived_design_weight,
        -- finite population correction factor of the variance estimator, 1 - n_h / N_h
        case
            when n_population > 0 and n_respondents <= n_population
                then 1.0 - cast(n_respondents as {{ surveysynth.type_double() }}) / n_population
            else 0.0
        end as fpc,
        case
            when n_respondents = 0 then 'no_respondents'
            when n_respondents = 1 then 'single_respondent'
            else 'ok'
        end as status,
        case
            when n_respondents = 0
                then 'no respondents: the stratum is represented only through calibration to coarser margins'
            when n_respondents = 1
                then 'one respondent: the variance estimator centres it on zero (lonely unit, conservative)'
            else 'two or more respondents'
        end as reason
    from joined

)

select * from final
