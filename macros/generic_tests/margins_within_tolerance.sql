{#- Fails on every calibration target the calibrated weights miss (model: calibration_margin_check):
    relative error above the tolerance, a nonzero target with no respondents, or no target. -#}
{% test margins_within_tolerance(model, tolerance=none) %}
{%- set tolerance = surveysynth.rake_settings().tol if tolerance is none else tolerance -%}

{%- set validation_sql -%}
with validation_errors as (

    select *
    from {{ model }}
    where status not in ('ok', 'collapsed', 'relaxed')
        or (status = 'ok' and relative_error is null)
        or (status = 'ok' and relative_error > {{ tolerance }} + 1e-12)

)

select * from validation_errors
{%- endset -%}

{#- categories no weight can reach first: they are usually the cause of the others -#}
{{ surveysynth.report_failures('margins_within_tolerance', model, validation_sql, 'message',
    order_by="case status when 'no_respondents' then 0 when 'no_target' then 1 else 2 end, relative_error desc, margin_id, category") }}

{{ validation_sql }}

{% endtest %}
