{{ surveysynth.validate_config() }}
{#- domain_estimates with the threshold rule applied: every domain x wave x indicator whose estimate
    rests on 0 < n < ss_sdc_min_respondents real respondents is suppressed, whatever its method.
    For an augmented estimate this matters as much as for a direct one: in a completed cell the
    estimate is (sum of the respondents' values + sum of the synthetic records) / N, and the
    synthetic records are released, so one respondent's value (two respondents' sum) could be
    solved for. The estimate, its SE and interval and the direct and augmented estimates shown
    alongside are nulled; method becomes 'suppressed' and the reason names the rule. Cells without
    respondents (n = 0) rest on no one's answers and keep their estimate. sdc_status says what
    happened: published, suppressed_threshold (here) or suppressed_quality (domain_estimates). -#}
{%- set rules = surveysynth.sdc_rules() -%}
{%- set k = rules.k -%}
{%- set unsafe = 'n_respondents > 0 and n_respondents < ' ~ k -%}
{%- set nulled = ['estimate', 'se', 'ci_low', 'ci_high', 'direct_estimate', 'direct_se', 'direct_ci_low',
    'direct_ci_high', 'direct_cv', 'augmented_estimate', 'augmented_se', 'augmented_ci_low',
    'augmented_ci_high', 'augmented_df', 'augmented_cv', 'between_var', 'within_var'] -%}
{%- set cols = [] -%}
{%- if execute -%}
    {%- for c in adapter.get_columns_in_relation(ref('domain_estimates')) -%}
        {%- do cols.append(c.name) -%}
    {%- endfor -%}
{%- endif -%}

with estimates as (

    select * from {{ ref('domain_estimates') }}

),

final as (

    select
        {% for c in cols -%}
        {%- if c in nulled -%}
        case when {{ unsafe }} then null else {{ c }} end as {{ c }},
        {%- elif c == 'method' -%}
        case when {{ unsafe }} then 'suppressed' else method end as method,
        {%- elif c == 'grade' -%}
        case when {{ unsafe }} then 'not_published' else grade end as grade,
        {%- elif c == 'reason' -%}
        case
            when {{ unsafe }}
                then {{ dbt.concat(["'threshold rule: '", surveysynth.as_text('n_respondents'), "' real respondent(s), below ss_sdc_min_respondents = " ~ k ~ " (their values could be recovered from the estimate and the released synthetic records)'"]) }}
            else reason
        end as reason,
        {%- else -%}
        {{ surveysynth.ident(c) }},
        {%- endif %}
        {% endfor -%}
        case
            when {{ unsafe }} then 'suppressed_threshold'
            when method = 'suppressed' then 'suppressed_quality'
            else 'published'
        end as sdc_status
    from estimates

)

select * from final
