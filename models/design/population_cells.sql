{#- One row per population cell: its dimensions, key, population count N and, where a unit frame
    holds auxiliaries, their population totals (the trusted calibration margins start here). -#}
{{ surveysynth.validate_config() }}
{%- set dims = surveysynth.cell_dims() -%}
{%- set aux = surveysynth.frame_auxiliaries() -%}

{%- if surveysynth.has_frame() %}

with frame as (

    select * from {{ ref('stg_frame') }}

),

cells as (

    select
        {% for d in dims -%}
        {{ d }},
        {% endfor -%}
        cell_id,
        count(*) as n_population{{ ',' if aux }}
        {% for a in aux -%}
        {% call surveysynth.dagg() %}{{ a }}{% endcall %} as {{ surveysynth.aux_total_column(a) }}{{ ',' if not loop.last }}
        {% endfor %}
    from frame
    group by {% for d in dims %}{{ d }}, {% endfor %}cell_id

)

select * from cells

{%- else %}
{%- set totals_sql = surveysynth.input_relation('ss_population_totals') -%}
{%- set required = [(var('ss_population_count'), 'ss_population_count')] -%}
{%- for d in dims %}{% do required.append((d, 'ss_cell_dims')) %}{% endfor -%}
{{ surveysynth.assert_columns('ss_population_totals', totals_sql, required) }}

with totals as (

    select * from {{ totals_sql }}

),

renamed as (

    select
        {% for d in dims -%}
        {{ surveysynth.as_text(d) }} as {{ d }},
        {% endfor -%}
        {{ surveysynth.cell_id_expr() }} as cell_id,
        cast({{ var('ss_population_count') }} as {{ dbt.type_bigint() }}) as n_population
    from totals

)

select * from renamed

{%- endif %}
