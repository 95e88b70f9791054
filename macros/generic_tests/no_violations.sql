{#- A release gate as data: fails with one row per row of `model` where `violation` (a SQL condition)
    holds, and prints `message` (a SQL text expression) for the first of them, most telling first
    (`order_by`). Used by the disclosure, fidelity, suppression and release gates. -#}
{% test no_violations(model, violation, message, gate='gate', order_by=none) %}

{%- set validation_sql -%}
with validation_errors as (

    select *
    from {{ model }}
    where {{ violation }}

)

select * from validation_errors
{%- endset -%}

{{ surveysynth.report_failures(gate, model, validation_sql, message, order_by) }}

{{ validation_sql }}

{% endtest %}
