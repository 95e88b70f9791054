{#- Fails on every combination of `columns` that occurs on more than one row (nulls compare equal,
    as in group by), e.g. one recommended estimate per domain x wave x indicator. -#}
{% test unique_combination(model, columns) %}

with validation_errors as (

    select
        {% for c in columns -%}
        {{ c }},
        {% endfor -%}
        count(*) as n_rows
    from {{ model }}
    group by {{ columns | join(', ') }}
    having count(*) > 1

)

select * from validation_errors

{% endtest %}
