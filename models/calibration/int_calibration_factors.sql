{{ surveysynth.validate_config() }}
{#- The raking factors, one row per wave x cell: g = rake_alpha (+ rake_beta_k * auxiliary k when
    known totals are calibrated), with the wave's iterations and convergence. Small: the sweeps run
    here, on cell sums of the base weights, never on the units. -#}
{{ surveysynth.validate_design_config() }}

{{ surveysynth.rake_factors(
    units=ref('design_weights'),
    weight='base_weight',
    margins=ref('calibration_margins'),
    group_by=['wave'],
    cell_key='cell_id',
    cells=ref('population_cells')
) }}
