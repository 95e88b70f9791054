{{ surveysynth.validate_config() }}
{#- Raking convergence of the implicates, one row per implicate x wave; a group that did not converge
    fails the build (data test calibration_converged). -#}

with factors as (

    select * from {{ ref('int_augmented_calibration_factors') }}

),

final as (

    {{ surveysynth.rake_convergence('factors', ['implicate', 'wave']) }}

)

select * from final
