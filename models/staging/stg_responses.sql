{#- Valid responses, typed: one row per unit x wave, with the cell key and the unit's frame
    auxiliaries. Rows with any problem are in quarantined_responses instead, never dropped.
    Column names from vars come as identifiers (surveysynth.cell_dims, outcomes, frame_auxiliaries). -#}
-- depends_on: {{ ref('population_cells') }}
{%- set dims = surveysynth.cell_dims() -%}
{%- set outs = surveysynth.outcomes() -%}
{%- set aux = surveysynth.frame_auxiliaries() -%}
{%- set checks = surveysynth.response_checks() -%}
{{ surveysynth.assert_cells_in_population(ref('int_responses_checked'), checks) }}

with checked as (

    select * from {{ ref('int_responses_checked') }}

),

valid as (

    select * from checked
    where {% for check in checks %}{{ check.column }} is null{{ ' and ' if not loop.last }}{% endfor %}

),

final as (

    select
        -- ids
        _row_id,
        unit_id,
        wave,

        -- cell
        {% for d in dims -%}
        {{ d }},
        {% endfor -%}
        {{ surveysynth.cell_id_expr() }} as cell_id,

        -- design weight (null when none is supplied: design_weights derives one)
        design_weight,

        -- outcomes
        {% for name, spec in outs.items() -%}
        {% if spec.type == 'count' -%}
        cast({{ name }} as {{ dbt.type_bigint() }}) as {{ name }}{{ ',' if not loop.last or aux }}
        {% elif spec.type == 'binary' -%}
        cast({{ name }} as {{ dbt.type_int() }}) as {{ name }}{{ ',' if not loop.last or aux }}
        {% else -%}
        {{ name }}{{ ',' if not loop.last or aux }}
        {% endif -%}
        {% endfor %}
        -- auxiliaries from the frame
        {% for a in aux -%}
        {{ a }}{{ ',' if not loop.last }}
        {% endfor %}
    from valid

)

select * from final
