{{ surveysynth.validate_config() }}
{#- Base weights, one row per valid response: the design weight d (supplied, or N_h / n_h per
    stratum x wave from design_strata) times the nonresponse factor (product of the class factors of
    nonresponse_adjustment over its levels; 1 when ss_nonresponse_classes is null). These are the
    weights that calibration starts from. -#}
{%- set dims = surveysynth.cell_dims() -%}
{%- set aux = surveysynth.frame_auxiliaries() -%}
{%- set levels = surveysynth.nonresponse_levels() -%}

with base as (

    select * from {{ ref('int_design_base') }}

),

{% if levels | length > 0 -%}
adjustment as (

    select * from {{ ref('nonresponse_adjustment') }}

),
{%- else -%}
-- depends_on: {{ ref('nonresponse_adjustment') }}
{%- endif %}

adjusted as (

    select
        base.*,
        {% if levels | length > 0 -%}
        {% for cols in levels -%}
        nr_{{ loop.index0 }}.factor{{ ' * ' if not loop.last }}
        {%- endfor %} as nonresponse_factor
        {%- else -%}
        1.0 as nonresponse_factor
        {%- endif %}
    from base
    {% for cols in levels -%}
    left join adjustment as nr_{{ loop.index0 }}
        on nr_{{ loop.index0 }}.level = {{ loop.index0 }}
        and base.wave = nr_{{ loop.index0 }}.wave
        and {{ surveysynth.category_key_expr(cols, 'base') }} = nr_{{ loop.index0 }}.class_key
    {% endfor %}

),

final as (

    select
        -- ids
        _row_id,
        unit_id,
        wave,

        -- cell and stratum
        {% for d in dims -%}
        {{ d }},
        {% endfor -%}
        cell_id,
        stratum_id,

        -- weights
        design_weight,
        nonresponse_factor,
        design_weight * nonresponse_factor as base_weight{{ ',' if aux }}

        -- auxiliaries
        {% for a in aux -%}
        {{ a }}{{ ',' if not loop.last }}
        {% endfor %}
    from adjusted

)

select * from final
