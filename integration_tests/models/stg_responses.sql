{#- The team's own staging of its survey, named like one of surveysynth's models on purpose: the
    package builds its models in '<target schema>_surveysynth', so the two never meet. -#}
select firm_ref, period, zone, industry, size_class, status, sales
from {{ ref('raw_business_survey') }}
