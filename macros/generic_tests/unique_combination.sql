{#- Fails on every combination of `columns` that occurs on more than one row (nulls compare equal,
    as in group by), e.g. one recommended estimate per domain x wave x indicator. Columns are names
    (from vars), written as identifiers. -#}
{% test unique_combination(model, columns) %}

{%- set cols = surveysynth.idents(columns) %}

with validation_errors as (

    select
        {% for c in cols -%}
        {{ c }},
        {% endfor -%}
        count(*) as n_rows
    from {{ model }}
    group by {{ cols | join(', ') }}
    having count(*) > 1

)

select * from validation_errors

{% endtest %}
