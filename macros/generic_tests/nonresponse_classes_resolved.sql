{#- Fails on every nonresponse class whose sampled weight no respondent carries (unresolved: no
    respondents and no coarser class left) or whose respondents are missing from the sample
    (model: nonresponse_adjustment). -#}
{% test nonresponse_classes_resolved(model) %}

{%- set validation_sql -%}
with validation_errors as (

    select *
    from {{ model }}
    where status in ('unresolved', 'not_in_sample')

)

select * from validation_errors
{%- endset -%}

{{ surveysynth.report_failures('nonresponse_classes_resolved', model, validation_sql, 'reason') }}

{{ validation_sql }}

{% endtest %}
