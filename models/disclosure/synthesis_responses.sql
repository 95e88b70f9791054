{{ surveysynth.validate_config() }}
{#- The synthesizer's input: every valid response except the disclosure-risk holdout (risk_holdout),
    which the risk gate compares the synthetic records with as real data the synthesizer never saw. -#}
with responses as (

    select * from {{ ref('stg_responses') }}

),

roles as (

    select * from {{ ref('risk_holdout') }}

),

final as (

    select responses.*
    from responses
    inner join roles
        on responses._row_id = roles._row_id
    where roles.risk_role <> 'holdout'

)

select * from final
