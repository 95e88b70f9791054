-- gated on the calibration checks: a failing margin or convergence test skips this model
-- depends_on: {{ ref('calibration_margin_check') }}
-- depends_on: {{ ref('calibration_convergence') }}
{# Direct (design-based) estimates with calibrated weights, one row per domain x wave x indicator
    x measure, for every domain of the population (cells and margins), respondents or not.

    Measures (w = calibrated weight, over item respondents: units with a non-null answer)
      mean / share  Hajek: sum w y / sum w (share for the 0/1 indicator of a category level)
      total         sum w y, the estimate of the population total of y
      ratio         (sum w y / sum w x) * X, X the domain's known frame total of the auxiliary x
                    (var ss_ratio_estimators), for skewed variables such as turnover
    Variance: Taylor linearisation for a stratified design with units as PSUs (STATS.md), strata
    = ss_design_strata, f_h = n_h / N_h with n_h the stratum's respondents:
        V = sum_h (1 - f_h) n_h / (n_h - 1) sum_{i in h} (z_i - zbar_h)^2
    z_i = w_i (y_i - R b_i) * s / sum w b for ratio-type measures (mean: b = 1, s = 1; ratio: b = x,
    s = X) and z_i = w_i y_i for totals; z_i = 0 for units outside the domain or without an
    answer, who still count in n_h (domain estimation). A stratum with one respondent is centred
    on 0, the mean of z over the sample (lonely PSU 'adjust'): it adds (1 - f_h) z_i^2. Every
    term is a sum of per-stratum moments, so the variance is one pass of group-bys.
    Calibrated weights are treated as fixed: the variance reduction from calibration is not
    credited (conservative for totals over the calibration margins). -#}
{{ surveysynth.validate_design_config() }}
{%- set dims = surveysynth.cell_dims() -%}
{%- set strata = surveysynth.design_strata() -%}
{%- set outs = surveysynth.outcomes() -%}
{%- set ratios = surveysynth.ratio_estimators() -%}
{%- set domains = surveysynth.estimation_domains() -%}
{%- set z975 = 1.959963984540054 -%}
{%- set good = var('ss_grade_cv_good') -%}
{%- set caution = var('ss_grade_cv_caution') -%}
{%- set min_n = var('ss_grade_min_n') -%}
{%- set dbl = surveysynth.type_double() -%}
{%- set t = surveysynth.as_text -%}

{#- indicators: [{indicator, expr, kind (mean|share)}], numbered k = 1.. -#}
{%- set indicators = [] -%}
{%- for name, spec in outs.items() -%}
    {%- for ind in surveysynth.outcome_indicators(name, spec, 'responses') -%}
        {%- do indicators.append(ind) -%}
    {%- endfor -%}
{%- endfor -%}
{%- set ratio_list = [] -%}
{%- for y, x in ratios.items() %}{% do ratio_list.append({'y': y, 'x': x}) %}{% endfor -%}

with responses as (

    select * from {{ ref('stg_responses') }}

),

weights as (

    select * from {{ ref('calibrated_weights') }}

),

strata as (

    select * from {{ ref('design_strata') }}

),

cells as (

    select * from {{ ref('population_cells') }}

),

waves as (

    select distinct wave from responses

),

units as (

    select
        responses.wave,
        {% for d in dims -%}
        responses.{{ d }},
        {% endfor -%}
        {{ surveysynth.category_key_expr(strata, 'responses') }} as stratum_id,
        weights.calibrated_weight as w,
        {% for ind in indicators -%}
        {{ ind.expr }} as y_{{ loop.index }},
        {% endfor -%}
        {% for r in ratio_list -%}
        case when responses.{{ r.x }} is not null then cast(responses.{{ r.y }} as {{ dbl }}) end as ry_{{ loop.index }},
        case when responses.{{ r.y }} is not null then cast(responses.{{ r.x }} as {{ dbl }}) end as rx_{{ loop.index }},
        {% endfor -%}
        1 as one
    from responses
    inner join weights
        on responses._row_id = weights._row_id

),

{#- per wave x cell: the weighted moments every estimate and its variance are built from -#}
moments as (

    select
        wave,
        {% for d in dims -%}
        {{ d }},
        {% endfor -%}
        stratum_id,
        {% for ind in indicators -%}
        {%- set k = loop.index -%}
        count(y_{{ k }}) as n_{{ k }},
        sum(w * y_{{ k }}) as sa_{{ k }},
        sum(case when y_{{ k }} is not null then w end) as sb_{{ k }},
        sum(w * w * y_{{ k }} * y_{{ k }}) as saa_{{ k }},
        sum(w * w * y_{{ k }}) as sab_{{ k }},
        sum(case when y_{{ k }} is not null then w * w end) as sbb_{{ k }},
        {% endfor -%}
        {% for r in ratio_list -%}
        {%- set k = loop.index -%}
        count(ry_{{ k }}) as rn_{{ k }},
        sum(w * ry_{{ k }}) as rsa_{{ k }},
        sum(w * rx_{{ k }}) as rsb_{{ k }},
        sum(w * w * ry_{{ k }} * ry_{{ k }}) as rsaa_{{ k }},
        sum(w * w * ry_{{ k }} * rx_{{ k }}) as rsab_{{ k }},
        sum(w * w * rx_{{ k }} * rx_{{ k }}) as rsbb_{{ k }},
        {% endfor -%}
        count(*) as n_units
    from units
    group by wave, {% for d in dims %}{{ d }}, {% endfor %}stratum_id

),

{#- long: one row per wave x cell x indicator x measure with the moments (a = y, b = 1 or x) -#}
long as (

    {% for ind in indicators -%}
    {%- set k = loop.index -%}
    {%- for measure in [ind.kind, 'total'] -%}
    select
        wave, {% for d in dims %}{{ d }}, {% endfor %}stratum_id,
        '{{ ind.indicator }}' as indicator,
        '{{ measure }}' as measure,
        n_{{ k }} as n, sa_{{ k }} as sa, sb_{{ k }} as sb, saa_{{ k }} as saa, sab_{{ k }} as sab, sbb_{{ k }} as sbb
    from moments
    union all
    {% endfor -%}
    {% endfor -%}
    {% for r in ratio_list -%}
    {%- set k = loop.index -%}
    select
        wave, {% for d in dims %}{{ d }}, {% endfor %}stratum_id,
        '{{ r.y }}' as indicator,
        'ratio' as measure,
        rn_{{ k }} as n, rsa_{{ k }} as sa, rsb_{{ k }} as sb, rsaa_{{ k }} as saa, rsab_{{ k }} as sab, rsbb_{{ k }} as sbb
    from moments
    union all
    {% endfor -%}
    select
        wave, {% for d in dims %}{{ d }}, {% endfor %}stratum_id,
        cast(null as {{ dbt.type_string() }}) as indicator,
        cast(null as {{ dbt.type_string() }}) as measure,
        0 as n, 0.0 as sa, 0.0 as sb, 0.0 as saa, 0.0 as sab, 0.0 as sbb
    from moments
    where 1 = 0

),

indicator_list as (

    {% for ind in indicators -%}
    {%- set outer = loop -%}
    {%- for measure in [ind.kind, 'total'] -%}
    select '{{ ind.indicator }}' as indicator, '{{ measure }}' as measure, cast(null as {{ dbt.type_string() }}) as auxiliary
    {{ 'union all' if not (outer.last and loop.last and not ratio_list) }}
    {% endfor -%}
    {% endfor -%}
    {% for r in ratio_list -%}
    select '{{ r.y }}' as indicator, 'ratio' as measure, '{{ r.x }}' as auxiliary
    {{ 'union all' if not loop.last }}
    {% endfor %}

),

{% for dom in domains -%}
{%- set L = loop.index -%}
{%- set D = dom.dims -%}
-- ---------------------------------------------------------------- domain level: {{ dom.level }}
spine_{{ L }} as (

    select
        {% for d in D -%}
        {{ d }},
        {% endfor -%}
        sum(n_population) as n_population
        {%- for r in ratio_list %},
        sum(total_{{ r.x }}) as known_{{ loop.index }}
        {%- endfor %}
    from cells
    {% if D %}group by {{ D | join(', ') }}{% endif %}

),

by_stratum_{{ L }} as (

    select
        wave, {% for d in D %}{{ d }}, {% endfor %}indicator, measure, stratum_id,
        sum(n) as n, sum(sa) as sa, sum(sb) as sb, sum(saa) as saa, sum(sab) as sab, sum(sbb) as sbb
    from long
    group by wave, {% for d in D %}{{ d }}, {% endfor %}indicator, measure, stratum_id

),

point_{{ L }} as (

    select
        by_stratum.wave,
        {% for d in D -%}
        by_stratum.{{ d }},
        {% endfor -%}
        by_stratum.indicator,
        by_stratum.measure,
        sum(by_stratum.n) as n_respondents,
        sum(by_stratum.sa) as sum_a,
        sum(by_stratum.sb) as sum_b,
        case
            {% for r in ratio_list -%}
            when by_stratum.measure = 'ratio' and by_stratum.indicator = '{{ r.y }}' then max(spine.known_{{ loop.index }})
            {% endfor -%}
            else 1.0
        end as scale
    -- the domain's spine row, for its known auxiliary totals (the one row, for national)
    from by_stratum_{{ L }} as by_stratum
    inner join spine_{{ L }} as spine
        on {% for d in D %}by_stratum.{{ d }} = spine.{{ d }} and {% endfor %}1 = 1
    group by by_stratum.wave, {% for d in D %}by_stratum.{{ d }}, {% endfor %}by_stratum.indicator, by_stratum.measure

),

variance_{{ L }} as (

    select
        wave, {% for d in D %}{{ d }}, {% endfor %}indicator, measure,
        sum(
            fpc * case
                when n_h >= 2 then cast(n_h as {{ dbl }}) / (n_h - 1) * (szz - sz * sz / n_h)
                else szz
            end
        ) as variance
    from (
        select
            by_stratum.wave,
            {% for d in D -%}
            by_stratum.{{ d }},
            {% endfor -%}
            by_stratum.indicator,
            by_stratum.measure,
            strata.n_respondents as n_h,
            strata.fpc,
            case
                when by_stratum.measure = 'total' then by_stratum.sa
                else point.scale * (by_stratum.sa - point.sum_a / point.sum_b * by_stratum.sb) / point.sum_b
            end as sz,
            case
                when by_stratum.measure = 'total' then by_stratum.saa
                else point.scale * point.scale
                    * (by_stratum.saa
                        - 2 * (point.sum_a / point.sum_b) * by_stratum.sab
                        + (point.sum_a / point.sum_b) * (point.sum_a / point.sum_b) * by_stratum.sbb)
                    / (point.sum_b * point.sum_b)
            end as szz
        from by_stratum_{{ L }} as by_stratum
        inner join point_{{ L }} as point
            on by_stratum.wave = point.wave
            and by_stratum.indicator = point.indicator
            and by_stratum.measure = point.measure
            {% for d in D -%}
            and by_stratum.{{ d }} = point.{{ d }}
            {% endfor %}
        inner join strata
            on by_stratum.stratum_id = strata.stratum_id
            and by_stratum.wave = strata.wave
        where point.sum_b <> 0 or by_stratum.measure = 'total'
    ) as linearised
    group by wave, {% for d in D %}{{ d }}, {% endfor %}indicator, measure

),

domain_{{ L }} as (

    select
        {% for d in dims -%}
        {% if d in D %}spine.{{ d }}{% else %}cast(null as {{ dbt.type_string() }}){% endif %} as {{ d }},
        {% endfor -%}
        {% if dom.level == 'cell' -%}
        {{ surveysynth.cell_id_expr('spine') }} as cell_id,
        {%- else -%}
        cast(null as {{ dbt.type_string() }}) as cell_id,
        {%- endif %}
        '{{ dom.level }}' as domain_level,
        waves.wave,
        indicator_list.indicator,
        indicator_list.measure,
        indicator_list.auxiliary,
        spine.n_population,
        coalesce(point.n_respondents, 0) as n_respondents,
        case
            when point.n_respondents is null or point.n_respondents = 0 then null
            when indicator_list.measure = 'total' then point.sum_a
            when point.sum_b = 0 then null
            else point.scale * point.sum_a / point.sum_b
        end as estimate,
        case
            when point.n_respondents is null or point.n_respondents < 2 then null
            when indicator_list.measure <> 'total' and point.sum_b = 0 then null
            else sqrt(greatest(coalesce(variance.variance, 0.0), 0.0))
        end as se
    from spine_{{ L }} as spine
    cross join waves
    cross join indicator_list
    left join point_{{ L }} as point
        on waves.wave = point.wave
        and indicator_list.indicator = point.indicator
        and indicator_list.measure = point.measure
        {% for d in D -%}
        and spine.{{ d }} = point.{{ d }}
        {% endfor %}
    left join variance_{{ L }} as variance
        on waves.wave = variance.wave
        and indicator_list.indicator = variance.indicator
        and indicator_list.measure = variance.measure
        {% for d in D -%}
        and spine.{{ d }} = variance.{{ d }}
        {% endfor %}

),

{% endfor -%}

stacked as (

    {% for dom in domains -%}
    select * from domain_{{ loop.index }}
    {{ 'union all' if not loop.last }}
    {% endfor %}

),

measured as (

    select
        stacked.*,
        estimate - {{ z975 }} * se as ci_low,
        estimate + {{ z975 }} * se as ci_high,
        case when estimate <> 0 then se / abs(estimate) end as cv
    from stacked

),

graded as (

    select
        measured.*,
        case
            when n_respondents < {{ min_n }} then 'not_published'
            when se is null or cv is null then 'not_published'
            when cv < {{ good }} then 'good'
            when cv < {{ caution }} then 'caution'
            else 'not_published'
        end as grade,
        case
            when n_respondents < {{ min_n }}
                then {{ dbt.concat([t('n_respondents'), "' item respondent(s), below ss_grade_min_n = " ~ min_n ~ "'"]) }}
            when se is null then 'no standard error (fewer than 2 item respondents or no weight)'
            when cv is null then 'estimate is 0: the CV is undefined'
            when cv < {{ good }} then 'CV below ss_grade_cv_good = {{ good }}'
            when cv < {{ caution }} then 'CV below ss_grade_cv_caution = {{ caution }}'
            else 'CV at or above ss_grade_cv_caution = {{ caution }}'
        end as grade_reason
    from measured

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

        -- what is estimated
        indicator,
        measure,
        auxiliary,

        -- estimate and uncertainty
        estimate,
        se,
        ci_low,
        ci_high,
        cv,

        -- support and quality
        cast(n_respondents as {{ dbt.type_bigint() }}) as n_respondents,
        cast(n_population as {{ dbt.type_bigint() }}) as n_population,
        grade,
        grade_reason
    from graded

)

select * from final
