{{ surveysynth.validate_config() }}
{#- Raking convergence of the implicates, one row per implicate x wave; a group that did not converge
    fails the build (data test calibration_converged). -#}
{%- set settings = surveysynth.rake_settings() -%}

with factors as (

    select * from {{ ref('int_augmented_calibration_factors') }}

),

final as (

    select
        implicate,
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
    group by implicate, wave

)

select * from final
