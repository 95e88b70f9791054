{#- Every input response row, typed, numbered and checked. Each _problem_* column holds a readable
    reason, or null where the row passes that check (see macro response_checks). stg_responses keeps
    the rows with no problem; quarantined_responses lists every problem of the others.
    Before it is built, the contract, the population and the back-test truth are checked; after,
    its post-hook stops the run when the responses are empty or a column is miscoded
    (macros/input/assert_inputs.sql), so nothing downstream runs on them. Every column name from a
    var goes through ident, every value from a var through sql_literal. -#}
{{ config(post_hook="{{ surveysynth.assert_responses_usable(this) }}") }}
{{ surveysynth.validate_config() }}
{%- set dims = surveysynth.cell_dim_names() -%}
{%- set outs = surveysynth.outcome_specs() -%}
{%- set aux = surveysynth.frame_auxiliaries() -%}
{%- set weight = var('ss_design_weight', none) -%}
{%- set t = surveysynth.as_text -%}
{%- set q = surveysynth.ident -%}
{%- set responses_sql = surveysynth.input_relation('ss_responses') -%}

{%- set required = [(var('ss_unit_id'), 'ss_unit_id'), (var('ss_wave'), 'ss_wave')] -%}
{%- for d in dims %}{% do required.append((d, 'ss_cell_dims')) %}{% endfor -%}
{%- if weight is not none %}{% do required.append((weight, 'ss_design_weight')) %}{% endif -%}
{%- for o in outs %}{% do required.append((o, 'ss_outcomes')) %}{% endfor -%}
{{ surveysynth.assert_columns('ss_responses', responses_sql, required) }}
{{ surveysynth.assert_population_is_valid() }}
{{ surveysynth.assert_truth_is_usable(responses_sql) }}

with source as (

    select * from {{ responses_sql }}

),

renamed as (

    select
        -- ids
        {{ t(q(var('ss_unit_id'))) }} as unit_id,
        {{ q(var('ss_wave')) }} as wave,

        -- cell dimensions
        {% for d in dims -%}
        {{ t(q(d)) }} as {{ q(d) }},
        {% endfor %}
        -- design weight
        {% if weight is not none -%}
        {{ q(weight) }} as _raw_design_weight,
        {{ surveysynth.try_cast_number(q(weight)) }} as design_weight,
        {%- else -%}
        cast(null as {{ surveysynth.type_double() }}) as design_weight,
        {%- endif %}

        -- outcomes: raw value (for messages) and typed value (null where it does not parse)
        {% for name, spec in outs.items() -%}
        {{ q(name) }} as {{ q('_raw_' ~ name) }},
        {% if spec.type in ('continuous', 'count') -%}
        {{ surveysynth.try_cast_number(q(name)) }} as {{ q(name) }}{{ ',' if not loop.last }}
        {% elif spec.type == 'binary' -%}
        case
            when lower({{ t(q(name)) }}) in ('1', '1.0', 'true', 't', 'yes') then 1
            when lower({{ t(q(name)) }}) in ('0', '0.0', 'false', 'f', 'no') then 0
        end as {{ q(name) }}{{ ',' if not loop.last }}
        {% else -%}
        case
            when {{ t(q(name)) }} in ({% for lv in spec.levels %}{{ surveysynth.sql_literal(lv | string) }}{{ ', ' if not loop.last }}{% endfor %})
                then {{ t(q(name)) }}
        end as {{ q(name) }}{{ ',' if not loop.last }}
        {% endif -%}
        {% endfor %}
    from source

),

{% for d in dims %}
known_{{ loop.index }} as (

    select distinct {{ q(d) }} as known_value from {{ ref('population_cells') }}

),
{% endfor %}

numbered as (

    select
        renamed.*,
        {% for d in dims -%}
        known_{{ loop.index }}.known_value as _known_{{ loop.index }},
        {% endfor -%}
        {% if surveysynth.has_frame() -%}
        frame.unit_id as _frame_unit_id,
        {% for a in aux -%}
        frame.{{ a }} as {{ a }},
        {% endfor -%}
        {% endif -%}
        count(*) over (partition by renamed.unit_id, renamed.wave) as _n_same_key,
        -- nulls placed explicitly: engines differ in where they sort them by default
        row_number() over (
            order by renamed.unit_id nulls last, renamed.wave nulls last
            {%- for name in outs %}, renamed.{{ q('_raw_' ~ name) }} nulls last{% endfor %}
        ) as _row_id
    from renamed
    {% for d in dims -%}
    left join known_{{ loop.index }}
        on renamed.{{ q(d) }} = known_{{ loop.index }}.known_value
    {% endfor -%}
    {% if surveysynth.has_frame() -%}
    left join {{ ref('stg_frame') }} as frame
        on renamed.unit_id = frame.unit_id
    {%- endif %}

),

checked as (

    select
        numbered.*,
        {% for check in surveysynth.response_checks() -%}
        {{ check.reason }} as {{ check.column }}{{ ',' if not loop.last }}
        {% endfor %}
    from numbered

)

select * from checked
