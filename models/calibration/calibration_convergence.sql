{{ surveysynth.validate_config() }}
{#- Raking convergence, one row per wave: sweeps used, the largest relative margin error left,
    margin categories no respondent can reach, and whether the wave converged (every margin within
    ss_rake_tol and none unreachable). Data test calibration_converged fails the build otherwise. -#}
{%- set settings = surveysynth.rake_settings() -%}

with factors as (

    select * from {{ ref('int_calibration_factors') }}

),

final as (

    select
        wave,
        max(iterations) as iterations,
        max(max_rel_error) as max_rel_error,
        max(n_uncovered_categories) as n_uncovered_categories,
        min(case when converged then 1 else 0 end) = 1 as converged,
        {{ settings.tol }} as tolerance,
        {{ settings.max_iter }} as max_iterations,
        min(rake_alpha) as min_cell_factor,
        max(rake_alpha) as max_cell_factor,
        count(*) as n_cells
    from factors
    group by wave

)

select * from final
