{{ surveysynth.validate_config() }}
{#- Every cell that the release would publish, with the primary rules recomputed from the real
    contributions: the cells of the protected tables that table_suppression leaves published
    (rules from table_primary_suppression) and the domain estimates that domain_estimates_protected
    leaves published (threshold rule on their real respondents). The data tests
    published_cells_meet_threshold_rule and published_cells_meet_dominance_rules fail the build on
    any row that breaks a rule, whoever chose the pattern. -#}
{%- set rules = surveysynth.sdc_rules() -%}
{%- set dims = surveysynth.cell_dims() -%}
{%- set t = surveysynth.as_text -%}

with pattern as (

    select * from {{ ref('table_suppression') }}

),

rules as (

    select * from {{ ref('table_primary_suppression') }}

),

domains as (

    select * from {{ ref('domain_estimates_protected') }}

),

table_cells as (

    select
        'protected_table' as source,
        rules.table_name as published_in,
        rules.wave,
        {{ dbt.concat(["rules.row_dim", "'='", "rules.row_label", "' x '", "rules.col_dim", "'='", "rules.col_label"]) }} as cell,
        cast(null as {{ dbt.type_string() }}) as indicator,
        rules.n_contributors,
        rules.unsafe_threshold,
        rules.unsafe_dominance,
        rules.unsafe_p,
        rules.reason
    from pattern
    inner join rules
        on pattern.table_name = rules.table_name
        and pattern.wave = rules.wave
        and pattern.row_label = rules.row_label
        and pattern.col_label = rules.col_label
    where not pattern.suppressed

),

domain_cells as (

    select
        'domain_estimates' as source,
        'domain_estimates' as published_in,
        wave,
        {%- set parts = ['domain_level'] -%}
        {%- for d in dims -%}
            {%- do parts.append("' " ~ d ~ "='") -%}
            {%- do parts.append("coalesce(" ~ t(d) ~ ", '*')") -%}
        {%- endfor %}
        {{ dbt.concat(parts) }} as cell,
        indicator,
        n_respondents as n_contributors,
        case when n_respondents > 0 and n_respondents < {{ rules.k }} then true else false end as unsafe_threshold,
        false as unsafe_dominance,
        false as unsafe_p,
        reason
    from domains
    where method <> 'suppressed'

),

stacked as (

    select * from table_cells
    union all
    select * from domain_cells

),

final as (

    select
        stacked.*,
        case
            when unsafe_threshold then {{ dbt.concat([
                "published_in", "' wave '", t('wave'), "': '", "cell", "coalesce(" ~ dbt.concat(["' '", "indicator"]) ~ ", '')",
                "' is published from '", t('n_contributors'),
                "' respondent(s), below ss_sdc_min_respondents = " ~ rules.k ~ "'"]) }}
            when unsafe_dominance or unsafe_p then {{ dbt.concat([
                "published_in", "' wave '", t('wave'), "': '", "cell", "' is published but unsafe: '", "reason"]) }}
        end as message
    from stacked

)

select * from final
