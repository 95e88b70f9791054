{{ surveysynth.validate_config() }}
{#- The released domain estimates: domain_estimates with the threshold rule applied
    (domain_estimates_protected), as they stood when every gate passed (release_gates). Rewritten
    only by a build in which every gate passed. -#}
-- depends_on: {{ ref('release_gates') }}
select * from {{ ref('domain_estimates_protected') }}
