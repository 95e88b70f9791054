{#- Fails on every unit whose g = calibrated / base weight is outside [lower, upper] (upper may be
    none; both default to ss_rake_bounds), or missing. A tiny relative slack absorbs floating-point rounding. -#}
{% test weights_within_bounds(model, column_name, lower=none, upper=none) %}
{#- default: the calibration bounds of ss_rake_bounds -#}
{%- if lower is none and upper is none -%}
    {%- set settings = surveysynth.rake_settings() -%}
    {%- set lower = settings.lower -%}{%- set upper = settings.upper -%}
{%- endif -%}

{%- set validation_sql -%}
with validation_errors as (

    select *
    from {{ model }}
    where {{ column_name }} is null
        or {{ column_name }} < {{ lower }} * (1 - 1e-9) - 1e-12
        {% if upper is not none -%}
        or {{ column_name }} > {{ upper }} * (1 + 1e-9)
        {%- endif %}

)

select * from validation_errors
{%- endset -%}

{%- set msg = dbt.concat(["'unit '", surveysynth.as_text('unit_id'), "' (wave '", surveysynth.as_text('wave'), "', cell '",
    surveysynth.as_text('cell_id'), "'): " ~ column_name ~ " = '", "coalesce(" ~ surveysynth.as_text(column_name) ~ ", 'null')",
    "' outside the bounds [" ~ lower ~ ", " ~ (upper if upper is not none else 'inf') ~ "] (ss_rake_bounds)'"]) -%}
{{ surveysynth.report_failures('weights_within_bounds', model, validation_sql, msg) }}

{{ validation_sql }}

{% endtest %}
