{{ surveysynth.validate_config() }}
{#- The analysable augmented dataset: one complete dataset per implicate (stacked), real and synthetic
    records with their calibrated analysis weight. Policy in int_augmented_units: in a completed
    (augmented) cell the real respondents represent themselves and the synthetic records the N - n
    units that did not respond; observed cells keep their real respondents. Each implicate is raked
    (macro surveysynth.rake, via rake_factors / rake_apply) to the trusted margins, with every
    completed cell held at its population count (augmented_margin_check proves it).

    Query it like any table, or estimate with the `estimate` macro, which combines the implicates
    with Rubin's rule (see macros/estimation/estimate.sql for why that rule). -#}
{%- set dims = surveysynth.cell_dims() -%}
{%- set outs = surveysynth.outcomes() -%}
{%- set aux = surveysynth.frame_auxiliaries() if surveysynth.has_frame() else [] -%}
{%- set passthrough = ['implicate', 'is_synthetic', '_row_id', 'unit_id', 'synth_run_id', 'synth_method',
                       'wave'] + dims + ['cell_id', 'support_class', 'cell_role', 'completion_group']
                       + (outs | list) + aux + ['variance_stratum', 'fpc'] -%}

with calibrated as (

    {{ surveysynth.rake_apply(
        units=ref('int_augmented_units'),
        weight='start_weight',
        factors=ref('int_augmented_calibration_factors'),
        margin_specs=surveysynth.augmented_margin_specs(),
        unit_columns=passthrough,
        group_by=['implicate', 'wave'],
        cell_key='cell_id'
    ) }}

),

final as (

    select
        -- implicate and provenance
        implicate,
        is_synthetic,
        _row_id,
        unit_id,
        synth_run_id,
        synth_method,

        -- cell and wave
        wave,
        {% for d in dims -%}
        {{ d }},
        {% endfor -%}
        cell_id,
        support_class,
        cell_role,

        -- outcomes and auxiliaries
        {% for o in outs -%}
        {{ o }},
        {% endfor -%}
        {% for a in aux -%}
        {{ a }},
        {% endfor -%}

        -- weights and variance design
        calibrated_weight as analysis_weight,
        base_weight as start_weight,
        g as calibration_factor,
        variance_stratum,
        fpc
    from calibrated

)

select * from final
