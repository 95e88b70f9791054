{{ surveysynth.require_contract() }}
{#- One row per problem found in an input response row: the row's key and a readable reason.
    A row with several problems appears several times; its _row_id ties them together. -#}
with checked as (

    select * from {{ ref('int_responses_checked') }}

),

problems as (

    {% for check in surveysynth.response_checks() -%}
    select
        _row_id,
        unit_id,
        wave,
        {{ surveysynth.sql_literal(check.problem) }} as problem,
        {{ check.column }} as reason
    from checked
    where {{ check.column }} is not null
    {{ 'union all' if not loop.last }}
    {% endfor %}

)

select * from problems
