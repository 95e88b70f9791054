{{ surveysynth.validate_config() }}
{#- The recommended estimate of every domain x wave x indicator, with its method, uncertainty and
    grade, and the direct and augmented estimates alongside. Domains and indicators are those of
    direct_estimates (each cell, each cell dimension, ss_estimation_domains, national; means of
    numeric outcomes and shares of every level); the measure is the indicator's mean or share.

    Augmented estimates come from the estimate macro over augmented_microdata (Rubin's combining rule
    across implicates; see macros/estimation/estimate.sql). Which one is recommended:
      direct      the direct estimate is publishable (grade good or caution): the survey speaks for
                  the domain, so no model is needed;
      augmented   otherwise, when the domain has synthetic records and the augmented CV is below
                  ss_grade_cv_caution (graded good or caution by the same CV thresholds);
      suppressed  otherwise (estimate, se and interval null), with the reason. -#}
{{ surveysynth.validate_design_config() }}
{%- set dims = surveysynth.cell_dims() -%}
{%- set outs = surveysynth.outcomes() -%}
{%- set domains = surveysynth.estimation_domains() -%}
{%- set good = var('ss_grade_cv_good') -%}
{%- set caution = var('ss_grade_cv_caution') -%}
{%- set t = surveysynth.as_text -%}

{%- set inds = [] -%}
{%- for name, spec in outs.items() -%}
    {%- if spec.type in ('continuous', 'count') -%}
        {%- do inds.append({'measure': 'mean', 'column': name}) -%}
    {%- else -%}
        {%- for lv in (spec.levels if spec.type != 'binary' else [0, 1]) -%}
            {%- do inds.append({'measure': 'share', 'column': name, 'level': lv}) -%}
        {%- endfor -%}
    {%- endif -%}
{%- endfor -%}


-- gated on the calibration of the implicates: a failing margin or convergence test skips this model
-- depends_on: {{ ref('augmented_margin_check') }}
-- depends_on: {{ ref('augmented_calibration_convergence') }}

with direct as (

    select * from {{ ref('direct_estimates') }}
    where measure in ('mean', 'share')

),

support as (

    select * from {{ ref('cell_support') }}

),

{#- one pass over augmented_microdata: moments per implicate x cell x wave x stratum; every domain
    level below is a roll-up of them -#}
moments as (

    {{ surveysynth.estimate_moments(ref('augmented_microdata'), indicators=inds, group_by=dims + ['wave']) }}

),

{% for dom in domains -%}
augmented_{{ loop.index }} as (

    select
        {% for d in dims -%}
        {% if d in dom.dims %}est.{{ d }}{% else %}cast(null as {{ dbt.type_string() }}){% endif %} as {{ d }},
        {% endfor -%}
        '{{ dom.level }}' as domain_level,
        est.wave,
        est.indicator,
        est.measure,
        est.estimate,
        est.se,
        est.ci_low,
        est.ci_high,
        est.df,
        est.m,
        est.between_var,
        est.within_var,
        est.combining_rule,
        est.n_real,
        est.n_synthetic
    from (
        {{ surveysynth.estimate_from_moments('moments', group_by=dom.dims + ['wave'], indicators=inds) }}
    ) as est

),

{% endfor -%}

augmented as (

    {% for dom in domains -%}
    select * from augmented_{{ loop.index }}
    {{ 'union all' if not loop.last }}
    {% endfor %}

),

joined as (

    select
        {% for d in dims -%}
        direct.{{ d }},
        {% endfor -%}
        direct.cell_id,
        direct.domain_level,
        direct.wave,
        direct.indicator,
        direct.measure,
        support.support_class,
        direct.n_population,

        direct.estimate as direct_estimate,
        direct.se as direct_se,
        direct.ci_low as direct_ci_low,
        direct.ci_high as direct_ci_high,
        direct.cv as direct_cv,
        direct.grade as direct_grade,
        direct.grade_reason as direct_grade_reason,
        direct.n_respondents,

        augmented.estimate as augmented_estimate,
        augmented.se as augmented_se,
        augmented.ci_low as augmented_ci_low,
        augmented.ci_high as augmented_ci_high,
        augmented.df as augmented_df,
        case when augmented.estimate <> 0 then augmented.se / abs(augmented.estimate) end as augmented_cv,
        augmented.m,
        augmented.between_var,
        augmented.within_var,
        augmented.combining_rule,
        coalesce(augmented.n_synthetic, 0) as n_synthetic
    from direct
    left join augmented
        on direct.domain_level = augmented.domain_level
        and direct.wave = augmented.wave
        and direct.indicator = augmented.indicator
        {% for d in dims -%}
        and direct.{{ d }} is not distinct from augmented.{{ d }}
        {% endfor %}
    left join support
        on direct.cell_id = support.cell_id
        and direct.wave = support.wave

),

graded as (

    select
        joined.*,
        case
            when augmented_se is null or augmented_cv is null then 'not_published'
            when augmented_cv < {{ good }} then 'good'
            when augmented_cv < {{ caution }} then 'caution'
            else 'not_published'
        end as augmented_grade
    from joined

),

decided as (

    select
        graded.*,
        case
            when direct_grade in ('good', 'caution') then 'direct'
            when n_synthetic > 0 and augmented_grade in ('good', 'caution') then 'augmented'
            else 'suppressed'
        end as method,
        case
            when n_synthetic = 0 then 'no synthetic records in the domain'
            when augmented_cv is null then 'the augmented estimate has no CV (estimate 0 or no SE)'
            else {{ dbt.concat(["'augmented CV '", surveysynth.number_as_text('augmented_cv', 3),
                "' at or above ss_grade_cv_caution = " ~ caution ~ "'"]) }}
        end as suppress_reason
    from graded

),

final as (

    select
        -- domain
        {% for d in dims -%}
        {{ d }},
        {% endfor -%}
        cell_id,
        domain_level,
        wave,
        support_class,

        -- what is estimated
        indicator,
        measure,

        -- the recommended estimate
        method,
        case method when 'direct' then direct_estimate when 'augmented' then augmented_estimate end as estimate,
        case method when 'direct' then direct_se when 'augmented' then augmented_se end as se,
        case method when 'direct' then direct_ci_low when 'augmented' then augmented_ci_low end as ci_low,
        case method when 'direct' then direct_ci_high when 'augmented' then augmented_ci_high end as ci_high,
        case method when 'direct' then direct_grade when 'augmented' then augmented_grade else 'not_published' end as grade,
        case method
            when 'direct' then {{ dbt.concat(["'direct estimate publishable: '", "direct_grade_reason"]) }}
            when 'augmented' then {{ dbt.concat(["'direct estimate not publishable ('", "direct_grade_reason",
                "'); augmented with '", t('n_synthetic'), "' synthetic record(s) per implicate, m = '", t('m'),
                "', CV '", surveysynth.number_as_text('augmented_cv', 3)]) }}
            else {{ dbt.concat(["'direct estimate not publishable ('", "direct_grade_reason", "'); '", "suppress_reason"]) }}
        end as reason,
        cast(n_respondents as {{ dbt.type_bigint() }}) as n_respondents,
        cast(n_synthetic as {{ dbt.type_bigint() }}) as n_synthetic,
        n_population,

        -- direct estimate alongside
        direct_estimate,
        direct_se,
        direct_ci_low,
        direct_ci_high,
        direct_grade,

        -- augmented estimate alongside (Rubin's rule over m implicates)
        augmented_estimate,
        augmented_se,
        augmented_ci_low,
        augmented_ci_high,
        augmented_df,
        augmented_cv,
        augmented_grade,
        m,
        between_var,
        within_var,
        combining_rule
    from decided

)

select * from final
