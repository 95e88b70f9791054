{#- Fails (returns a row) when the share of input response rows quarantined exceeds max_share. -#}
{% test quarantine_share_below(model, checked, max_share) %}

with counts as (

    select
        (select count(distinct _row_id) from {{ model }}) as n_quarantined,
        (select count(*) from {{ checked }}) as n_input

),

validation_errors as (

    select
        n_quarantined,
        n_input,
        cast(n_quarantined as {{ surveysynth.type_double() }}) / n_input as quarantined_share,
        {{ max_share }} as max_share
    from counts
    where n_input > 0
        and cast(n_quarantined as {{ surveysynth.type_double() }}) / n_input > {{ max_share }}

)

select * from validation_errors

{% endtest %}
