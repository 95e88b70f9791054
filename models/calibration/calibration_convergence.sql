{{ surveysynth.validate_config() }}
{#- Raking convergence, one row per wave: sweeps used, the largest relative margin error left,
    margin categories no respondent can reach, and whether the wave converged (every margin within
    ss_rake_tol and none unreachable). Data test calibration_converged fails the build otherwise. -#}

with factors as (

    select * from {{ ref('int_calibration_factors') }}

),

final as (

    {{ surveysynth.rake_convergence('factors', ['wave']) }}

)

select * from final
