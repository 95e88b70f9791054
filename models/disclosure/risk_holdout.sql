{{ surveysynth.validate_config() }}
{#- The disclosure-risk holdout: one row per valid response with its role in the risk gate.

      holdout         withheld from the synthesizer (synthesis_responses leaves it out) and compared
                      with the synthetic records as a fresh real sample would be;
      train           given to the synthesizer and compared: the holdout's exchangeable twin;
      synthesis_only  given to the synthesizer, not compared (see below).

    The split is by unit (a panel unit's waves stay together, so no holdout row is a near-copy of a
    training row of the same business) and seeded: a unit is held out when the first 8 hex digits of
    md5(ss_seed | unit_id) fall below ss_risk_holdout_share of the range, on every engine alike.

    Which units are eligible depends on the mode. replica: every unit. augment: only units whose
    every row lies in a cell x wave that is not synthesized (support class not in
    ss_synth_augment_classes). A synthesized cell's respondents cannot be withheld: the synthetic
    records of the cell stand for its *other* units, so a withheld respondent would be counted twice
    in augmented_microdata, and the thin cells would lose the little data they have. -#}
{%- set share = surveysynth.risk_holdout_share() -%}
{%- set mode = var('ss_synth_mode', 'augment') -%}
{%- set classes = var('ss_synth_augment_classes', ['sparse', 'empty']) or [] -%}
{%- set cut = '%08x' | format((share * 4294967296) | int) -%}

with responses as (

    select * from {{ ref('stg_responses') }}

),

support as (

    select * from {{ ref('cell_support') }}

),

classified as (

    select
        responses._row_id,
        responses.unit_id,
        responses.wave,
        responses.cell_id,
        support.support_class,
        {% if mode == 'replica' or not classes -%}
        0 as in_synthesized_cell
        {%- else -%}
        case
            when support.support_class in ({% for c in classes %}{{ surveysynth.sql_literal(c) }}{{ ', ' if not loop.last }}{% endfor %}) then 1
            else 0
        end as in_synthesized_cell
        {%- endif %}
    from responses
    left join support
        on responses.cell_id = support.cell_id
        and responses.wave = support.wave

),

units as (

    select
        unit_id,
        max(in_synthesized_cell) as has_synthesized_row,
        substr({{ dbt.hash(dbt.concat(["'" ~ var('ss_seed') ~ "|'", 'unit_id'])) }}, 1, 8) as unit_draw
    from classified
    group by unit_id

),

final as (

    select
        classified._row_id,
        classified.unit_id,
        classified.wave,
        classified.cell_id,
        classified.support_class,
        case
            when units.has_synthesized_row = 1 then 'synthesis_only'
            when units.unit_draw < '{{ cut }}' then 'holdout'
            else 'train'
        end as risk_role
    from classified
    inner join units
        on classified.unit_id = units.unit_id

)

select * from final
