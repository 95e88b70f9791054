{{ surveysynth.validate_config() }}
{#- Calibrated weights, one row per valid response: the base weight times the raking factor g of
    the unit's cell (linear in the auxiliaries when known totals are calibrated). One pass over the
    units: a join to the per-cell factors of int_calibration_factors. -#}

with calibrated as (

    {{ surveysynth.rake_apply(
        units=ref('design_weights'),
        weight='base_weight',
        factors=ref('int_calibration_factors'),
        unit_columns=['unit_id', '_row_id', 'cell_id'],
        group_by=['wave'],
        cell_key='cell_id'
    ) }}

)

select
    unit_id,
    wave,
    _row_id,
    cell_id,
    base_weight,
    calibrated_weight,
    g
from calibrated
