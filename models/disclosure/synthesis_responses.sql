{{ surveysynth.validate_config() }}
{#- The released synthesizer's input: every valid response. The disclosure-risk gate is
    cross-fitted (risk_holdout, risk_synthetic_microdata): its holdout is withheld from a second,
    unreleased fit only, so the released records are drawn from a model of all respondents. -#}
with responses as (

    select * from {{ ref('stg_responses') }}

),

final as (

    select responses.*
    from responses

)

select * from final
