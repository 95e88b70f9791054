{{ surveysynth.validate_config() }}
{#- Nonresponse adjustment classes, one row per level x class x wave (no rows when
    ss_nonresponse_classes is null). Level 0 are the classes of ss_nonresponse_classes: factor =
    sum of design weights of sampled units / sum over respondents. A class with sampled units but
    no respondents cannot carry its weight: it is `collapsed`, i.e. its weight moves to its class at
    the next level of ss_nonresponse_collapse, whose factor = sampled weight of the whole coarser
    class / sampled weight of its finer classes that have respondents (1 when none is empty). A
    respondent's factor is the product over levels, so every level's sampled weight is reproduced.
    Where no coarser level is left the class is `unresolved` and the build fails
    (data test nonresponse_classes_resolved): its weight is never silently dropped. -#}
{{ surveysynth.validate_design_config() }}
{%- set levels = surveysynth.nonresponse_levels() -%}
{%- set n_levels = levels | length -%}

{%- if n_levels > 0 %}

with sample as (

    select * from {{ ref('int_design_sample') }}

),

strata as (

    select * from {{ ref('design_strata') }}

),

respondents as (

    select * from {{ ref('int_design_base') }}

),

sampled as (

    select
        sample.*,
        coalesce(sample.design_weight, strata.derived_design_weight) as d
    from sample
    left join strata
        on sample.stratum_id = strata.stratum_id
        and sample.wave = strata.wave

),

{% for cols in levels %}
{%- set k = loop.index0 -%}
{%- set key = surveysynth.category_key_expr(cols) -%}
sampled_{{ k }} as (

    select
        wave,
        {{ key }} as class_key,
        {% if k + 1 < n_levels -%}
        {{ surveysynth.category_key_expr(levels[k + 1]) }} as parent_key,
        {%- else -%}
        cast(null as {{ dbt.type_string() }}) as parent_key,
        {%- endif %}
        {% call surveysynth.dagg() %}d{% endcall %} as sum_sampled_weight,
        count(*) as n_sampled
    from sampled
    group by wave, {{ key }}{% if k + 1 < n_levels %}, {{ surveysynth.category_key_expr(levels[k + 1]) }}{% endif %}

),

responding_{{ k }} as (

    select
        wave,
        {{ key }} as class_key,
        {% call surveysynth.dagg() %}design_weight{% endcall %} as sum_respondent_weight,
        count(*) as n_respondents
    from respondents
    group by wave, {{ key }}

),

level_{{ k }} as (

    select
        {{ k }} as level,
        '{{ cols | join(", ") }}' as class_columns,
        coalesce(s.wave, r.wave) as wave,
        coalesce(s.class_key, r.class_key) as class_key,
        s.parent_key,
        coalesce(s.n_sampled, 0) as n_sampled,
        coalesce(r.n_respondents, 0) as n_respondents,
        coalesce(s.sum_sampled_weight, 0) as sum_sampled_weight,
        coalesce(r.sum_respondent_weight, 0) as sum_respondent_weight,
        {% if k == 0 -%}
        case
            when r.n_respondents > 0 and s.n_sampled > 0 then s.sum_sampled_weight / r.sum_respondent_weight
        end as factor
        {%- else -%}
        case
            when finer.sum_resolved_weight > 0 then s.sum_sampled_weight / finer.sum_resolved_weight
        end as factor
        {%- endif %}
    from sampled_{{ k }} as s
    full outer join responding_{{ k }} as r
        on s.wave = r.wave
        and s.class_key = r.class_key
    {% if k > 0 -%}
    left join (
        select wave, parent_key, {% call surveysynth.dagg() %}sum_sampled_weight{% endcall %} as sum_resolved_weight
        from level_{{ k - 1 }}
        where n_respondents > 0 and n_sampled > 0
        group by wave, parent_key
    ) as finer
        on s.wave = finer.wave
        and s.class_key = finer.parent_key
    {%- endif %}

),
{% endfor %}

stacked as (

    {% for cols in levels -%}
    select * from level_{{ loop.index0 }}
    {{ 'union all' if not loop.last }}
    {% endfor %}

),

final as (

    select
        level,
        class_columns,
        class_key,
        wave,
        n_sampled,
        n_respondents,
        sum_sampled_weight,
        sum_respondent_weight,
        factor,
        case
            when n_sampled = 0 then 'not_in_sample'
            when n_respondents > 0 then 'adjusted'
            when level < {{ n_levels - 1 }} then 'collapsed'
            else 'unresolved'
        end as status,
        case
            when n_sampled = 0
                then {{ dbt.concat(["'class '''", "class_key", "''' (wave '", surveysynth.as_text('wave'), "') has '", surveysynth.as_text('n_respondents'), "' respondent(s) but no unit in ss_sample: the sample must list every respondent'"]) }}
            when n_respondents > 0 then 'adjusted within the class'
            when level < {{ n_levels - 1 }}
                then {{ dbt.concat(["'no respondents among '", surveysynth.as_text('n_sampled'), "' sampled: weight moved to the class '''", "coalesce(parent_key, 'all')", "''' at level '", surveysynth.as_text('level + 1')]) }}
            else {{ dbt.concat(["'nonresponse class '''", "class_key", "''' (columns '", "class_columns", "', wave '", surveysynth.as_text('wave'), "') has '", surveysynth.as_text('n_sampled'), "' sampled units and no respondents, and no coarser class is left: add a level to ss_nonresponse_collapse'"]) }}
        end as reason
    from stacked

)

select * from final

{%- else %}

select
    cast(null as {{ dbt.type_int() }}) as level,
    cast(null as {{ dbt.type_string() }}) as class_columns,
    cast(null as {{ dbt.type_string() }}) as class_key,
    cast(null as {{ dbt.type_int() }}) as wave,
    cast(null as {{ dbt.type_bigint() }}) as n_sampled,
    cast(null as {{ dbt.type_bigint() }}) as n_respondents,
    cast(null as {{ surveysynth.type_double() }}) as sum_sampled_weight,
    cast(null as {{ surveysynth.type_double() }}) as sum_respondent_weight,
    cast(null as {{ surveysynth.type_double() }}) as factor,
    cast(null as {{ dbt.type_string() }}) as status,
    cast(null as {{ dbt.type_string() }}) as reason
where 1 = 0

{%- endif %}
