{{ surveysynth.validate_config() }}
{#- The released synthetic microdata: synthetic_microdata as it stood when every gate passed
    (release_gates). A plain table, rewritten only by a build in which every gate passed: when a gate
    fails, dbt skips this model and the last good release stays. -#}
-- depends_on: {{ ref('release_gates') }}
select * from {{ ref('synthetic_microdata') }}
