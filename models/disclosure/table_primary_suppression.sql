{{ surveysynth.validate_config() }}
{#- Primary suppression of the protected magnitude tables (var ss_sdc_tables): one row per table x
    wave x cell, margins included (label 'Total'), every category of the two dimensions whether or
    not it has respondents. The published value is the weighted total sum(w y) of the cell. Rules
    (STATS.md, "Table protection"; Hundepool et al. 2012, ch. 4), on the real contributions
    (int_sdc_contributions), x1 >= x2 >= ... the largest, X the total:

      threshold    0 < n_contributors < ss_sdc_min_respondents
      dominance    X > 0 and x1 + ... + xn > k% of X        (n, k) = (ss_sdc_dominance_n, ss_sdc_dominance_k)
      p%           X > 0 and X - x1 - x2 < p/100 x1         p = ss_sdc_p

    protection_required is what the suppression pattern must leave an intruder unsure about, on each
    side of X (the largest that applies): p% rule p/100 x1 - (X - x1 - x2); (n, k) rule
    100/k (x1 + ... + xn) - X; threshold rule ss_sdc_threshold_protection_share x X. A cell without
    contributors is safe (its zero is published). Secondary suppression: table_suppression. -#}
{%- set tables = surveysynth.sdc_tables() -%}
{%- set rules = surveysynth.sdc_rules() -%}
{%- set total = surveysynth.sdc_total_label() -%}
{%- set t = surveysynth.as_text -%}
{%- set dbl = surveysynth.type_double() -%}

with contributions as (

    select * from {{ ref('int_sdc_contributions') }}

),

cells as (

    select * from {{ ref('population_cells') }}

),

waves as (

    select distinct wave from {{ ref('stg_responses') }}

),

{#- every cell of every table: the dimensions' categories (population_cells) and 'Total' -#}
grid as (

    {% for tab in tables -%}
    select
        {{ surveysynth.sql_literal(tab.name) }} as table_name,
        {{ surveysynth.sql_literal(surveysynth.ident_name(tab.rows)) }} as row_dim,
        {{ surveysynth.sql_literal(surveysynth.ident_name(tab.cols)) }} as col_dim,
        {{ surveysynth.sql_literal(surveysynth.ident_name(tab.value)) }} as value_column,
        waves.wave,
        row_labels.row_label,
        col_labels.col_label
    from waves
    cross join (
        select distinct {{ t(tab.rows) }} as row_label from cells
        union all
        select '{{ total }}' as row_label
    ) as row_labels
    cross join (
        select distinct {{ t(tab.cols) }} as col_label from cells
        union all
        select '{{ total }}' as col_label
    ) as col_labels
    {{ 'union all' if not loop.last }}
    {% endfor -%}
    {%- if not tables %}
    select
        cast(null as {{ dbt.type_string() }}) as table_name,
        cast(null as {{ dbt.type_string() }}) as row_dim,
        cast(null as {{ dbt.type_string() }}) as col_dim,
        cast(null as {{ dbt.type_string() }}) as value_column,
        wave,
        cast(null as {{ dbt.type_string() }}) as row_label,
        cast(null as {{ dbt.type_string() }}) as col_label
    from waves
    where 1 = 0
    {%- endif %}

),

ranked as (

    select
        contributions.*,
        row_number() over (
            partition by table_name, wave, row_label, col_label
            order by contribution desc, unit_id
        ) as contribution_rank
    from contributions

),

cell_stats as (

    select
        table_name,
        wave,
        row_label,
        col_label,
        count(*) as n_contributors,
        {% call surveysynth.dagg() %}contribution{% endcall %} as total,
        {% call surveysynth.dagg() %}case when contribution_rank = 1 then contribution else 0.0 end{% endcall %} as x1,
        {% call surveysynth.dagg() %}case when contribution_rank = 2 then contribution else 0.0 end{% endcall %} as x2,
        {% call surveysynth.dagg() %}case when contribution_rank <= {{ rules.dom_n }} then contribution else 0.0 end{% endcall %} as top_n_sum
    from ranked
    group by table_name, wave, row_label, col_label

),

joined as (

    select
        grid.table_name,
        grid.row_dim,
        grid.col_dim,
        grid.value_column,
        grid.wave,
        grid.row_label,
        grid.col_label,
        case when grid.row_label = '{{ total }}' or grid.col_label = '{{ total }}' then true else false end as is_margin,
        coalesce(cell_stats.n_contributors, 0) as n_contributors,
        cast(coalesce(cell_stats.total, 0.0) as {{ dbl }}) as value,
        cast(coalesce(cell_stats.x1, 0.0) as {{ dbl }}) as x1,
        cast(coalesce(cell_stats.x2, 0.0) as {{ dbl }}) as x2,
        cast(coalesce(cell_stats.top_n_sum, 0.0) as {{ dbl }}) as top_n_sum
    from grid
    left join cell_stats
        on grid.table_name = cell_stats.table_name
        and grid.wave = cell_stats.wave
        and grid.row_label = cell_stats.row_label
        and grid.col_label = cell_stats.col_label

),

flagged as (

    select
        joined.*,
        case when n_contributors > 0 and n_contributors < {{ rules.k }} then true else false end as unsafe_threshold,
        case when value > 0 and top_n_sum > {{ rules.dom_k / 100.0 }} * value then true else false end as unsafe_dominance,
        case when value > 0 and value - x1 - x2 - {{ rules.p / 100.0 }} * x1 < 0 then true else false end as unsafe_p,
        {{ rules.p / 100.0 }} * x1 - (value - x1 - x2) as p_protection,
        {{ 100.0 / rules.dom_k }} * top_n_sum - value as dominance_protection,
        {{ rules.share }} * abs(value) as threshold_protection
    from joined

),

final as (

    select
        -- table and cell
        table_name,
        row_dim,
        col_dim,
        value_column,
        wave,
        row_label,
        col_label,
        is_margin,

        -- the published value and its contributions
        value,
        n_contributors,
        x1,
        x2,
        top_n_sum,

        -- the rules
        unsafe_threshold,
        unsafe_dominance,
        unsafe_p,
        case when unsafe_threshold or unsafe_dominance or unsafe_p then true else false end as is_primary,
        greatest(
            case when unsafe_p then p_protection else 0.0 end,
            case when unsafe_dominance then dominance_protection else 0.0 end,
            case when unsafe_threshold then threshold_protection else 0.0 end
        ) as protection_required,
        {{ dbt.concat([
            "case when unsafe_threshold then " ~ dbt.concat(["'threshold: '", t('n_contributors'), "' respondent(s), below ss_sdc_min_respondents = " ~ rules.k ~ "'"]) ~ " else '' end",
            "case when unsafe_threshold and (unsafe_dominance or unsafe_p) then '; ' else '' end",
            "case when unsafe_dominance then '(" ~ rules.dom_n ~ ", " ~ rules.dom_k ~ ") dominance: the " ~ rules.dom_n ~ " largest contributions are over " ~ rules.dom_k ~ "% of the total' else '' end",
            "case when unsafe_dominance and unsafe_p then '; ' else '' end",
            "case when unsafe_p then 'p% rule (p = " ~ rules.p ~ "): the second largest contributor could estimate the largest within " ~ rules.p ~ "%' else '' end",
        ]) }} as reason
    from flagged

)

select * from final
