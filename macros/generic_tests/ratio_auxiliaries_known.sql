{#- The register auxiliary of a ratio estimator (ss_ratio_estimators) must be known for every unit of
    the frame: the ratio mean of a domain is R X_d / N_d, and X_d sums the register over the
    domain's units, so a unit without it would count as 0. Fails with one row per frame unit whose
    ratio auxiliary is null (passes trivially without ratio estimators). -#}
{% test ratio_auxiliaries_known(model) %}

{%- set auxes = surveysynth.ratio_estimators().values() | unique | list -%}
{%- set validation_sql -%}
select *
from {{ model }}
where {% if auxes %}{% for x in auxes %}{{ x }} is null{{ ' or ' if not loop.last }}{% endfor %}{% else %}1 = 0{% endif %}
{%- endset -%}

{{ surveysynth.report_failures('ratio_auxiliaries_known', model, validation_sql,
    "'the ratio auxiliary is null for unit ' || unit_id || ': a ratio estimator (ss_ratio_estimators) needs the register value of every unit; fill it or drop the ratio estimator'") }}

{{ validation_sql }}

{% endtest %}
