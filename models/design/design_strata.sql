{{ surveysynth.validate_config() }}
{#- The design strata, one row per stratum x wave: population N_h, sampled and responding units,
    the derived design weight N_h / n_h, a status, and the stratum's variance stratum
    (ss_variance_collapse: variance_stratum_id, variance_n_respondents, variance_fpc). A stratum with no respondents keeps its row
    (status no_respondents): its population is reached only through calibration to coarser margins,
    and a margin category left with no respondents fails the build (calibration_margin_check). -#}
{{ surveysynth.validate_design_config() }}
{%- set strata = surveysynth.design_strata() -%}
{%- set collapse = surveysynth.variance_collapse() -%}

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

),

{#- the variance strata (ss_variance_collapse): a stratum x wave with fewer than two respondents
    joins the pool of its collapse key, n and N summed over the pool (its strata without
    respondents included), fpc = 1 - n / N; every other stratum is its own -#}
variance_keyed as (

    select
        final.*,
        {% if collapse -%}
        case when n_respondents < 2
            then {{ dbt.concat(["'collapsed|'", surveysynth.category_key_expr(collapse)]) }}
            else stratum_id
        end as variance_stratum_id
        {%- else -%}
        stratum_id as variance_stratum_id
        {%- endif %}
    from final

),

variance_pools as (

    select
        wave,
        variance_stratum_id,
        {% call surveysynth.dagg() %}n_respondents{% endcall %} as variance_n_respondents,
        {% call surveysynth.dagg() %}n_population{% endcall %} as variance_n_population
    from variance_keyed
    group by wave, variance_stratum_id

)

select
    variance_keyed.*,
    variance_pools.variance_n_respondents,
    case
        when variance_pools.variance_n_population > 0
            and variance_pools.variance_n_respondents <= variance_pools.variance_n_population
            then 1.0 - cast(variance_pools.variance_n_respondents as {{ surveysynth.type_double() }}) / variance_pools.variance_n_population
        else 0.0
    end as variance_fpc
from variance_keyed
inner join variance_pools
    on variance_keyed.wave = variance_pools.wave
    and variance_keyed.variance_stratum_id = variance_pools.variance_stratum_id
