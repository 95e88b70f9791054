{{ config(materialized=surveysynth.input_materialization('ss_frame')) }}
{#- The population frame, typed: one row per population unit with its cell and auxiliaries.
    Without a unit frame (only ss_population_totals), this view has the right columns and no rows.
    Column names come as identifiers (cell_dims, frame_auxiliaries), so any name a warehouse allows works. -#}
{{ surveysynth.validate_config() }}
{%- set dims = surveysynth.cell_dims() -%}
{%- set aux = surveysynth.frame_auxiliaries() -%}

{%- if surveysynth.has_frame() -%}
{%- set frame_sql = surveysynth.input_relation('ss_frame') -%}
{%- set required = [(var('ss_frame_unit_id'), 'ss_frame_unit_id')] -%}
{%- for d in surveysynth.cell_dim_names() %}{% do required.append((d, 'ss_cell_dims')) %}{% endfor -%}
{%- for a in surveysynth.frame_auxiliary_names() %}{% do required.append((a, 'ss_frame_auxiliaries')) %}{% endfor -%}
{{ surveysynth.assert_columns('ss_frame', frame_sql, required) }}
{{ surveysynth.assert_frame_is_valid(frame_sql) }}

with source as (

    select * from {{ frame_sql }}

),

renamed as (

    select
        -- ids
        {{ surveysynth.as_text(surveysynth.ident(var('ss_frame_unit_id'))) }} as unit_id,

        -- cell
        {% for d in dims -%}
        {{ surveysynth.as_text(d) }} as {{ d }},
        {% endfor -%}
        {{ surveysynth.cell_id_expr() }} as cell_id{{ ',' if aux }}

        -- auxiliaries (register values known for every unit)
        {% for a in aux -%}
        cast({{ a }} as {{ surveysynth.type_double() }}) as {{ a }}{{ ',' if not loop.last }}
        {% endfor %}
    from source

)

select * from renamed

{%- else -%}

select
    cast(null as {{ dbt.type_string() }}) as unit_id,
    {% for d in dims -%}
    cast(null as {{ dbt.type_string() }}) as {{ d }},
    {% endfor -%}
    cast(null as {{ dbt.type_string() }}) as cell_id
from {{ surveysynth.input_relation('ss_population_totals') }}
where 1 = 0

{%- endif %}
