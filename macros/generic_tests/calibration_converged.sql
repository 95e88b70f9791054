{#- Fails on every wave whose raking did not converge (model: calibration_convergence). -#}
{% test calibration_converged(model) %}

{%- set validation_sql -%}
with validation_errors as (

    select *
    from {{ model }}
    where not converged
        and coalesce(fallback, 'none') = 'none'

)

select * from validation_errors
{%- endset -%}

{%- set bounds = var('ss_rake_bounds', none) -%}
{%- set bounds_hint = (' Bounds ss_rake_bounds = [' ~ bounds[0] ~ ', ' ~ bounds[1] ~ '] may make the margins unreachable: widen them.') if bounds else '' -%}
{%- set msg = dbt.concat(["'wave '", surveysynth.as_text('wave'), "': raking did not converge after '", surveysynth.as_text('iterations'),
    "' sweep(s) (at most ss_rake_max_iter = '", surveysynth.as_text('max_iterations'), "'; raise it if the error was still falling): largest relative margin error '", surveysynth.as_text('max_rel_error'), "' (tolerance '", surveysynth.as_text('tolerance'), "'), '",
    surveysynth.as_text('n_uncovered_categories'), "' margin category(ies) with a target and no respondents (ss_calibration_uncovered: collapse spreads their targets). See calibration_margin_check." ~ bounds_hint ~ "'"]) -%}
{{ surveysynth.report_failures('calibration_converged', model, validation_sql, msg) }}

{{ validation_sql }}

{% endtest %}
