{{ surveysynth.validate_config() }}
{{ config(materialized='view') }}
{#- Respondents with their stratum and design weight d before nonresponse adjustment: the supplied
    weight (var ss_design_weight) when configured, else N_h / n_h from design_strata. -#}
{%- set dims = surveysynth.cell_dims() -%}
{%- set strata = surveysynth.design_strata() -%}
{%- set aux = surveysynth.frame_auxiliaries() -%}
{%- set supplied = var('ss_design_weight', none) is not none -%}

with responses as (

    select * from {{ ref('stg_responses') }}

),

strata as (

    select * from {{ ref('design_strata') }}

),

keyed as (

    select
        responses.*,
        {{ surveysynth.category_key_expr(strata, 'responses') }} as stratum_id
    from responses

),

final as (

    select
        -- ids
        keyed._row_id,
        keyed.unit_id,
        keyed.wave,

        -- cell and stratum
        {% for d in dims -%}
        keyed.{{ d }},
        {% endfor -%}
        keyed.cell_id,
        keyed.stratum_id,

        -- design weight
        {% if supplied -%}
        keyed.design_weight{{ ',' if aux }}
        {%- else -%}
        strata.derived_design_weight as design_weight{{ ',' if aux }}
        {%- endif %}

        -- auxiliaries (calibration totals and ratio estimators use them)
        {% for a in aux -%}
        keyed.{{ a }}{{ ',' if not loop.last }}
        {% endfor %}
    from keyed
    {% if not supplied -%}
    left join strata
        on keyed.stratum_id = strata.stratum_id
        and keyed.wave = strata.wave
    {%- endif %}

)

select * from final
