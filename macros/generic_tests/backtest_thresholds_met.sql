{#- Fails on every back-test metric that misses its threshold or could not be computed
    (model: backtest_summary); the failure names the metric, its value, the threshold and its var. -#}
{% test backtest_thresholds_met(model) %}

{%- set validation_sql -%}
with validation_errors as (

    select *
    from {{ model }}
    where threshold is not null
        and (passed is null or not passed)

)

select * from validation_errors
{%- endset -%}

{{ surveysynth.report_failures('backtest_thresholds_met', model, validation_sql, 'message') }}

{{ validation_sql }}

{% endtest %}
