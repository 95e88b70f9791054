{{ surveysynth.validate_config() }}
{#- Every respondent's contribution to every cell of every protected table (var ss_sdc_tables),
    margins included: one row per table x wave x row label x column label x unit. A contribution is
    the calibrated weight times the value (ss_sdc_weighted, the default: the published estimate's
    own terms) or the reported value. Each respondent counts in its interior cell, its row total, its
    column total and the grand total (labelled 'Total'), so the primary rules judge the margins as
    they judge any other published cell. Item nonrespondents contribute nothing. -#}
{%- set tables = surveysynth.sdc_tables() -%}
{%- set rules = surveysynth.sdc_rules() -%}
{%- set total = surveysynth.sdc_total_label() -%}
{%- set t = surveysynth.as_text -%}
{%- set dbl = surveysynth.type_double() -%}

with responses as (

    select * from {{ ref('stg_responses') }}

),

weights as (

    select * from {{ ref('calibrated_weights') }}

),

{% for tab in tables -%}
base_{{ loop.index }} as (

    select
        {{ surveysynth.sql_literal(tab.name) }} as table_name,
        {{ surveysynth.sql_literal(surveysynth.ident_name(tab.rows)) }} as row_dim,
        {{ surveysynth.sql_literal(surveysynth.ident_name(tab.cols)) }} as col_dim,
        {{ surveysynth.sql_literal(surveysynth.ident_name(tab.value)) }} as value_column,
        responses.wave,
        {{ t('responses.' ~ tab.rows) }} as row_label,
        {{ t('responses.' ~ tab.cols) }} as col_label,
        responses.unit_id,
        {% if rules.weighted -%}
        cast(weights.calibrated_weight * responses.{{ tab.value }} as {{ dbl }}) as contribution
        {%- else -%}
        cast(responses.{{ tab.value }} as {{ dbl }}) as contribution
        {%- endif %}
    from responses
    inner join weights
        on responses._row_id = weights._row_id
    where responses.{{ tab.value }} is not null

),

{% endfor -%}

stacked as (

    {% for tab in tables -%}
    {%- set b = 'base_' ~ loop.index -%}
    select table_name, row_dim, col_dim, value_column, wave, row_label, col_label, unit_id, contribution
    from {{ b }}
    union all
    select table_name, row_dim, col_dim, value_column, wave, row_label, '{{ total }}', unit_id, contribution
    from {{ b }}
    union all
    select table_name, row_dim, col_dim, value_column, wave, '{{ total }}', col_label, unit_id, contribution
    from {{ b }}
    union all
    select table_name, row_dim, col_dim, value_column, wave, '{{ total }}', '{{ total }}', unit_id, contribution
    from {{ b }}
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
        cast(null as {{ dbt.type_string() }}) as col_label,
        unit_id,
        cast(null as {{ dbl }}) as contribution
    from responses
    where 1 = 0
    {%- endif %}

),

{#- one contribution per unit and cell (a unit answers once per wave; summed all the same) -#}
final as (

    select
        table_name,
        row_dim,
        col_dim,
        value_column,
        wave,
        row_label,
        col_label,
        unit_id,
        {% call surveysynth.dagg() %}contribution{% endcall %} as contribution
    from stacked
    group by table_name, row_dim, col_dim, value_column, wave, row_label, col_label, unit_id

)

select * from final
