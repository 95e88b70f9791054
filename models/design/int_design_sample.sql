{{ surveysynth.validate_config() }}
{{ config(materialized=surveysynth.input_materialization('ss_sample')) }}
{#- The sample (var ss_sample), typed: every sampled unit per wave, respondents and nonrespondents,
    with its cell, stratum, design weight and responded flag. No rows when ss_sample is null. -#}
{{ surveysynth.validate_design_config() }}
{%- set dims = surveysynth.cell_dims() -%}
{%- set strata = surveysynth.design_strata() -%}
{%- set t = surveysynth.as_text -%}

{%- if surveysynth.has_sample() -%}
{%- set sample_sql = surveysynth.input_relation('ss_sample') -%}
{%- set weight = var('ss_sample_design_weight', none) -%}
{%- set required = [(var('ss_unit_id'), 'ss_unit_id'), (var('ss_wave'), 'ss_wave'),
                    (var('ss_sample_responded'), 'ss_sample_responded')] -%}
{%- for d in dims %}{% do required.append((d, 'ss_cell_dims')) %}{% endfor -%}
{%- if weight is not none %}{% do required.append((weight, 'ss_sample_design_weight')) %}{% endif -%}
{{ surveysynth.assert_columns('ss_sample', sample_sql, required) }}

with source as (

    select * from {{ sample_sql }}

),

renamed as (

    select
        -- ids
        {{ t(var('ss_unit_id')) }} as unit_id,
        {{ var('ss_wave') }} as wave,

        -- cell and stratum
        {% for d in dims -%}
        {{ t(d) }} as {{ d }},
        {% endfor -%}
        {{ surveysynth.cell_id_expr() }} as cell_id,
        {{ surveysynth.category_key_expr(strata) }} as stratum_id,

        -- design
        {% if weight is not none -%}
        cast({{ weight }} as {{ surveysynth.type_double() }}) as design_weight,
        {%- else -%}
        cast(null as {{ surveysynth.type_double() }}) as design_weight,
        {%- endif %}
        case
            when lower({{ t(var('ss_sample_responded')) }}) in ('1', '1.0', 'true', 't', 'yes') then true
            else false
        end as responded
    from source

)

select * from renamed

{%- else -%}

select
    cast(null as {{ dbt.type_string() }}) as unit_id,
    cast(null as {{ dbt.type_int() }}) as wave,
    {% for d in dims -%}
    cast(null as {{ dbt.type_string() }}) as {{ d }},
    {% endfor -%}
    cast(null as {{ dbt.type_string() }}) as cell_id,
    cast(null as {{ dbt.type_string() }}) as stratum_id,
    cast(null as {{ surveysynth.type_double() }}) as design_weight,
    cast(null as {{ dbt.type_boolean() }}) as responded
where 1 = 0

{%- endif %}
