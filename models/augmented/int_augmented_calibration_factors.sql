{{ surveysynth.validate_config() }}
{#- The raking factors of the implicates, one row per implicate x wave x cell (macro
    surveysynth.rake_factors, the same macro as the real records' calibration): every implicate is
    raked on its own to the margins of int_augmented_margins, starting from the start weights
    (real respondents of completed cells 1, synthetic records synth_weight, observed respondents
    their base weight). -#}
{{ surveysynth.validate_design_config() }}

{{ surveysynth.rake_factors(
    units=ref('int_augmented_units'),
    weight='start_weight',
    margins=ref('int_augmented_margins'),
    margin_specs=surveysynth.augmented_margin_specs(),
    group_by=['implicate', 'wave'],
    margin_group_by=['wave'],
    cell_key='cell_id'
) }}
