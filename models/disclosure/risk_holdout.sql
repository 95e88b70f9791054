{{ surveysynth.validate_config() }}
{#- The disclosure-risk holdout: one row per valid response with its role in the risk gate.

      train    seen by the risk fit of the synthesizer (risk_synthetic_microdata);
      holdout  not seen by it: the real rows the attacks compare the risk fit's records with.

    Cross-fitting (surveysynth.checks.risk_gate): the released synthesizer (synthetic_microdata) is
    fitted on every response, train and holdout alike, so no respondent is withheld from it; the
    risk fit, the same procedure on the training units only, is what the attacks measure. Every
    unit is eligible, in augment and replica mode, thin cells included: the risk fit's records are
    never released, so a thin cell losing respondents to the holdout there costs nothing.

    The split is by unit (a panel unit's waves stay together, so no holdout row is a near-copy of a
    training row of the same business) and seeded: a unit is held out when the first 8 hex digits of
    md5(ss_seed | unit_id) fall below ss_risk_holdout_share of the range, on every engine alike. -#}
{%- set share = surveysynth.risk_holdout_share() -%}
{%- set cut = '%08x' | format((share * 4294967296) | int) -%}

with responses as (

    select * from {{ ref('stg_responses') }}

),

support as (

    select * from {{ ref('cell_support') }}

),

units as (

    select
        unit_id,
        substr({{ dbt.hash(dbt.concat(["'" ~ var('ss_seed') ~ "|'", 'unit_id'])) }}, 1, 8) as unit_draw
    from responses
    group by unit_id

),

final as (

    select
        responses._row_id,
        responses.unit_id,
        responses.wave,
        responses.cell_id,
        support.support_class,
        case when units.unit_draw < '{{ cut }}' then 'holdout' else 'train' end as risk_role
    from responses
    inner join units
        on responses.unit_id = units.unit_id
    left join support
        on responses.cell_id = support.cell_id
        and responses.wave = support.wave

)

select * from final
