{#- Release safety as data tests on the staged release tables (severity error): a failing one stops
    release_publish, so nothing it catches ever reaches the release schema. -#}

{#- No value of any column of `model` (as text) is a unit id of the frame. -#}
{% test release_has_no_frame_unit_ids(model) %}
{%- set cols = surveysynth.release_columns(model) -%}
with frame_ids as (

    select distinct unit_id from {{ ref('stg_frame') }}

),

released as (

    {% for c in cols -%}
    select distinct '{{ c.name }}' as column_name, {{ surveysynth.as_text(c.sql) }} as value
    from {{ model }}
    {{ 'union all' if not loop.last }}
    {% endfor %}
    {%- if not cols %}select cast(null as {{ dbt.type_string() }}) as column_name, cast(null as {{ dbt.type_string() }}) as value where 1 = 0{% endif %}

)

select r.column_name, r.value
from released as r
inner join frame_ids as f on r.value = f.unit_id

{% endtest %}

{#- A suppressed row (method 'suppressed') carries no numeric value but the cell dimensions, the
    wave, counts (n_*), m and its release id: the rule domain_estimates_release applies. -#}
{% test suppressed_rows_carry_no_values(model) %}
{%- set structural = ((var('ss_cell_dims') | list) + ['wave', 'm']) | map('lower') | list -%}
{%- set checked = [] -%}
{%- for c in surveysynth.release_columns(model) -%}
    {%- set lname = c.name | lower -%}
    {%- if c.numeric and lname not in structural and not lname.startswith('n_') -%}
        {%- do checked.append(c.sql) -%}
    {%- endif -%}
{%- endfor %}
{%- set names = surveysynth.release_columns(model) | map(attribute='name') | map('lower') | list -%}
select *
from {{ model }}
where method = 'suppressed'
    and ({{ (checked | join(' is not null or ')) ~ ' is not null' if checked else 'false' }}
        {%- if 'reason' in names %} or reason like '%RMSE%' or reason like '%phi =%'{% endif %})
{% endtest %}
