{{ surveysynth.validate_config() }}
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
    = ss_design_strata (strata with fewer than two respondents pooled per ss_variance_collapse,
    design_strata.variance_stratum_id), f_h = n_h / N_h with n_h the stratum's respondents:
        V = sum_h (1 - f_h) n_h / (n_h - 1) sum_{i in h} (z_i - zbar_h)^2
    z_i = w_i (y_i - R b_i) * s / sum w b for ratio-type measures (mean: b = 1, s = 1; ratio: b = x,
    s = X) and z_i = w_i y_i for totals; z_i = 0 for units outside the domain or without an
    answer, who still count in n_h (domain estimation). A stratum with one respondent is centred
    on 0, the mean of z over the sample (lonely PSU 'adjust'): it adds (1 - f_h) z_i^2. Every
    term is a sum of per-cell weighted moments of y centred at the cell's mean (so sums of squares
    do not cancel), so the variance needs two passes over the units and then small group-bys.
    Calibrated weights are not fixed: z is replaced by its calibration residual (g-weighted
    residuals on the count margins' indicators, as R's calibrated designs;
    macros/estimation/calibrated_variance.sql), which leaves the Hajek mean or share of a cell
    unchanged (provably) and changes margins and totals. With ss_calibration_totals (GREG steps)
    or ss_calibrated_variance false the fixed-weight form is used.
    Intervals (macros/estimation/intervals.sql, docs/estimation.md): shares by Wilson's score
    interval with the design effective n, non-negative outcomes by t on the log scale, t
    otherwise; t with the design df n - H (item respondents less the strata they fall in). -#}
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
{%- set calv = surveysynth.calibrated_variance_enabled() -%}
{#- PostgreSQL's planner misjudges the join of the units with their cells' means (1 row for
    thousands: nested loops over ~1e9 pairs), so there the centres are window averages over the
    same partition; other engines join (DuckDB's ordered averages keep their bits) -#}
{%- set windowed = target.type == 'postgres' -%}
{%- set cm = 'units.' if windowed else 'cm.' -%}

{#- indicators: [{indicator, expr, kind (mean|share)}], numbered k = 1.. -#}
{%- set indicators = [] -%}
{%- set nonneg = {} -%}
{%- for name, spec in outs.items() -%}
    {%- for ind in surveysynth.outcome_indicators(name, spec, 'responses') -%}
        {%- do indicators.append(ind) -%}
        {#- 0/1 indicators, counts and outcomes with min >= 0 cannot be negative -#}
        {%- do nonneg.update({ind.indicator: ind.kind == 'share' or spec.type == 'count' or (spec.get('min') is not none and spec.get('min') >= 0)}) -%}
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

design_strata as (

    select * from {{ ref('design_strata') }}

),

{#- the variance strata (ss_variance_collapse; each design stratum its own by default) -#}
strata as (

    select
        wave,
        variance_stratum_id as stratum_id,
        max(variance_n_respondents) as n_respondents,
        max(variance_fpc) as fpc
    from design_strata
    group by wave, variance_stratum_id

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
        design_strata.variance_stratum_id as stratum_id,
        weights.calibrated_weight as w,
        weights.base_weight as d,
        weights.g,
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
    inner join design_strata
        on {{ surveysynth.category_key_expr(strata, 'responses') }} = design_strata.stratum_id
        and responses.wave = design_strata.wave

),

{#- per wave x cell: the cell's (unweighted) mean of every indicator, the centre of the moments
    below, so that sums of squares do not cancel where answers hardly vary -#}
{% if windowed -%}
centred as (

    select
        units.*,
        {% for ind in indicators -%}
        avg(y_{{ loop.index }}) over cell as m_{{ loop.index }},
        {% endfor -%}
        {% for r in ratio_list -%}
        avg(ry_{{ loop.index }}) over cell as rmy_{{ loop.index }},
        avg(rx_{{ loop.index }}) over cell as rmx_{{ loop.index }},
        {% endfor -%}
        1 as centred
    from units
    window cell as (partition by wave{% for d in dims %}, {{ d }}{% endfor %})

),
{%- else -%}
cell_means as (

    select
        wave,
        {% for d in dims -%}
        {{ d }},
        {% endfor -%}
        {% for ind in indicators -%}
        {% call surveysynth.dagg('avg') %}y_{{ loop.index }}{% endcall %} as m_{{ loop.index }},
        {% endfor -%}
        {% for r in ratio_list -%}
        {% call surveysynth.dagg('avg') %}ry_{{ loop.index }}{% endcall %} as rmy_{{ loop.index }},
        {% call surveysynth.dagg('avg') %}rx_{{ loop.index }}{% endcall %} as rmx_{{ loop.index }},
        {% endfor -%}
        count(*) as n_units
    from units
    group by wave{% for d in dims %}, {{ d }}{% endfor %}

),
{%- endif %}

{#- per wave x cell: weighted moments of u = y - m (and v = x - m_x for ratios) over item
    respondents; every estimate and its linearised variance is built from them -#}
moments as (

    select
        units.wave,
        {% for d in dims -%}
        units.{{ d }},
        {% endfor -%}
        units.stratum_id,
        {% for ind in indicators -%}
        {%- set k = loop.index -%}
        {%- set u = '(units.y_' ~ k ~ ' - ' ~ cm ~ 'm_' ~ k ~ ')' -%}
        count(units.y_{{ k }}) as n_{{ k }},
        max({{ cm }}m_{{ k }}) as ma_{{ k }},
        {% call surveysynth.dagg() %}case when units.y_{{ k }} is not null then units.w end{% endcall %} as sw_{{ k }},
        {% call surveysynth.dagg() %}case when units.y_{{ k }} is not null then units.w * units.w end{% endcall %} as sww_{{ k }},
        {% call surveysynth.dagg() %}units.w * {{ u }}{% endcall %} as su_{{ k }},
        {% call surveysynth.dagg() %}units.w * units.w * {{ u }}{% endcall %} as su2_{{ k }},
        {% call surveysynth.dagg() %}units.w * units.w * {{ u }} * {{ u }}{% endcall %} as suu_{{ k }},
        {% endfor -%}
        {% for r in ratio_list -%}
        {%- set k = loop.index -%}
        {%- set u = '(units.ry_' ~ k ~ ' - ' ~ cm ~ 'rmy_' ~ k ~ ')' -%}
        {%- set v = '(units.rx_' ~ k ~ ' - ' ~ cm ~ 'rmx_' ~ k ~ ')' -%}
        count(units.ry_{{ k }}) as rn_{{ k }},
        max({{ cm }}rmy_{{ k }}) as rma_{{ k }},
        max({{ cm }}rmx_{{ k }}) as rmb_{{ k }},
        {% call surveysynth.dagg() %}case when units.ry_{{ k }} is not null then units.w end{% endcall %} as rsw_{{ k }},
        {% call surveysynth.dagg() %}case when units.ry_{{ k }} is not null then units.w * units.w end{% endcall %} as rsww_{{ k }},
        {% call surveysynth.dagg() %}units.w * {{ u }}{% endcall %} as rsu_{{ k }},
        {% call surveysynth.dagg() %}units.w * {{ v }}{% endcall %} as rsv_{{ k }},
        {% call surveysynth.dagg() %}units.w * units.w * {{ u }}{% endcall %} as rsu2_{{ k }},
        {% call surveysynth.dagg() %}units.w * units.w * {{ v }}{% endcall %} as rsv2_{{ k }},
        {% call surveysynth.dagg() %}units.w * units.w * {{ u }} * {{ u }}{% endcall %} as rsuu_{{ k }},
        {% call surveysynth.dagg() %}units.w * units.w * {{ u }} * {{ v }}{% endcall %} as rsuv_{{ k }},
        {% call surveysynth.dagg() %}units.w * units.w * {{ v }} * {{ v }}{% endcall %} as rsvv_{{ k }},
        {% endfor -%}
        {% call surveysynth.dagg() %}units.w{% endcall %} as sw_all,
        count(*) as n_units
    {% if windowed -%}
    from centred as units
    {%- else -%}
    from units
    inner join cell_means as cm
        on units.wave = cm.wave
        {% for d in dims -%}
        and units.{{ d }} = cm.{{ d }}
        {% endfor %}
    {%- endif %}
    group by units.wave, {% for d in dims %}units.{{ d }}, {% endfor %}units.stratum_id

),

{#- long: one row per wave x cell x indicator x measure; a = y, b = 1 (mean, share, total) or the
    auxiliary x (ratio), centred at ma and mb. An unpivot: moments crossed with one row per
    (indicator, measure) slot, each column picking its slot's moment. (Not a UNION ALL of one SELECT
    per slot: Spark copies the plan of `moments` into every branch and runs out of memory.) -#}
{%- set slots = [] -%}
{%- for ind in indicators -%}
    {%- set k = loop.index -%}
    {%- for measure in [ind.kind, 'total'] -%}
        {%- set a = 'case when sw_' ~ k ~ ' > 0 then sw_all / sw_' ~ k ~ ' else 1.0 end' if measure != 'total' else '1.0' -%}
        {%- do slots.append({'indicator': ind.indicator, 'measure': measure, 'n': 'n_' ~ k, 'ma': 'ma_' ~ k, 'mb': '1.0', 'a': a,
            'sw': 'sw_' ~ k, 'sww': 'sww_' ~ k, 'su': 'su_' ~ k, 'sv': '0.0', 'su2': 'su2_' ~ k, 'sv2': '0.0',
            'suu': 'suu_' ~ k, 'suv': '0.0', 'svv': '0.0'}) -%}
    {%- endfor -%}
{%- endfor -%}
{%- for r in ratio_list -%}
    {%- set k = loop.index -%}
    {%- do slots.append({'indicator': surveysynth.ident_name(r.y), 'measure': 'ratio', 'n': 'rn_' ~ k, 'ma': 'rma_' ~ k, 'mb': 'rmb_' ~ k, 'a': '1.0',
        'sw': 'rsw_' ~ k, 'sww': 'rsww_' ~ k, 'su': 'rsu_' ~ k, 'sv': 'rsv_' ~ k, 'su2': 'rsu2_' ~ k, 'sv2': 'rsv2_' ~ k,
        'suu': 'rsuu_' ~ k, 'suv': 'rsuv_' ~ k, 'svv': 'rsvv_' ~ k}) -%}
{%- endfor %}
long as (

    select
        moments.wave, {% for d in dims %}moments.{{ d }}, {% endfor %}moments.stratum_id,
        slots.indicator,
        slots.measure,
        {% for col in ['n', 'a', 'ma', 'mb', 'sw', 'sww', 'su', 'sv', 'su2', 'sv2', 'suu', 'suv', 'svv'] -%}
        case slots.slot{% for sl in slots %} when {{ loop.index }} then {{ sl[col] }}{% endfor %} end as {{ col }}{{ ',' if not loop.last }}
        {% endfor %}
    from moments
    cross join (
        {% for sl in slots -%}
        select {{ loop.index }} as slot, {{ surveysynth.sql_literal(sl.indicator) }} as indicator, '{{ sl.measure }}' as measure
        {{ 'union all' if not loop.last }}
        {% endfor %}
    ) as slots

),

{#- the long moments with their stratum's n_h and fpc, once for every domain level (joined per
    level, the optimizer can pair the strata with the domain's point estimates first, a wave-wide
    product) -#}
long_strata as (

    select
        long.*,
        strata.n_respondents as n_h,
        strata.fpc
    from long
    inner join strata
        on long.stratum_id = strata.stratum_id
        and long.wave = strata.wave
    where long.n > 0

),

indicator_list as (

    {% for ind in indicators -%}
    {%- set outer = loop -%}
    {%- for measure in [ind.kind, 'total'] -%}
    select {{ surveysynth.sql_literal(ind.indicator) }} as indicator, '{{ measure }}' as measure, cast(null as {{ dbt.type_string() }}) as auxiliary,
        {{ 'true' if nonneg[ind.indicator] else 'false' }} as nonneg
    {{ 'union all' if not (outer.last and loop.last and not ratio_list) }}
    {% endfor -%}
    {% endfor -%}
    {% for r in ratio_list -%}
    select {{ surveysynth.sql_literal(surveysynth.ident_name(r.y)) }} as indicator, 'ratio' as measure, {{ surveysynth.sql_literal(surveysynth.ident_name(r.x)) }} as auxiliary,
        {{ 'true' if nonneg.get(surveysynth.ident_name(r.y), false) else 'false' }} as nonneg
    {{ 'union all' if not loop.last }}
    {% endfor %}

),

{% if calv -%}
-- ---------------------------------------------------------------- calibration (shared by every level)
{{ surveysynth.calibrated_variance_ctes(dims, 'strata', ref('calibration_margins'), ref('calibration_convergence')) }}
{% endif -%}

{% for dom in domains -%}
{%- set L = loop.index -%}
{%- set D = dom.dims -%}
-- ---------------------------------------------------------------- domain level: {{ dom.level }}
spine_{{ L }} as (

    select
        {% for d in D -%}
        {{ d }},
        {% endfor -%}
        {% call surveysynth.dagg() %}n_population{% endcall %} as n_population
        {%- for r in ratio_list %},
        {% call surveysynth.dagg() %}{{ surveysynth.aux_total_column(r.x) }}{% endcall %} as known_{{ loop.index }}
        {%- endfor %}
    from cells
    {% if D %}group by {{ D | join(', ') }}{% endif %}

),

point_{{ L }} as (

    select
        long.wave,
        {% for d in D -%}
        long.{{ d }},
        {% endfor -%}
        long.indicator,
        long.measure,
        {% call surveysynth.dagg() %}long.n{% endcall %} as n_respondents,
        {% call surveysynth.dagg() %}long.a * long.sw{% endcall %} as sum_w,
        {% call surveysynth.dagg() %}long.a * long.a * long.sww{% endcall %} as sum_ww,
        {% call surveysynth.dagg() %}long.a * (long.su + long.ma * long.sw){% endcall %} as sum_a,
        {% call surveysynth.dagg() %}long.a * (long.sv + long.mb * long.sw){% endcall %} as sum_b,
        {% if ratio_list -%}
        case
            {% for r in ratio_list -%}
            when long.measure = 'ratio' and long.indicator = {{ surveysynth.sql_literal(surveysynth.ident_name(r.y)) }} then max(spine.known_{{ loop.index }})
            {% endfor -%}
            else 1.0
        end as scale
        {%- else -%}
        1.0 as scale
        {%- endif %}
    -- the domain's spine row, for its known auxiliary totals (the one row, for national)
    from long
    inner join spine_{{ L }} as spine
        on {% for d in D %}long.{{ d }} = spine.{{ d }} and {% endfor %}1 = 1
    group by long.wave, {% for d in D %}long.{{ d }}, {% endfor %}long.indicator, long.measure

),

{#- per domain x cell x stratum: the moments with the domain's r, delta and k, and
    zp = sum z, wz = sum w z, z_i = k w_i (u_i - R v_i + delta_c) -#}
zrows_{{ L }} as (

    select
        by_cell.*,
        k * a * (su - r * sv + delta * sw) as zp,
        k * a * (su2 - r * sv2 + delta * sww) as wz
    from (
        select
            long.*,
            case when long.measure = 'total' then 0.0 else point.sum_a / point.sum_b end as r,
            case when long.measure = 'total' then long.ma
                else long.ma - point.sum_a / point.sum_b * long.mb end as delta,
            case when long.measure = 'total' then 1.0 else point.scale / point.sum_b end as k
        from long_strata as long
        inner join point_{{ L }} as point
            on long.wave = point.wave
            and long.indicator = point.indicator
            and long.measure = point.measure
            {% for d in D -%}
            and long.{{ d }} = point.{{ d }}
            {% endfor %}
        where point.sum_b <> 0 or long.measure = 'total'
    ) as by_cell

),

variance_{{ L }} as (

    select
        wave, {% for d in D %}{{ d }}, {% endfor %}indicator, measure,
        {% call surveysynth.dagg() %}
            fpc * case
                when n_h >= 2 then cast(n_h as {{ dbl }}) / (n_h - 1) * (szz - sz * sz / n_h)
                else szz
            end
        {% endcall %} as variance,
        count(*) as n_strata
    from (
        -- per domain x stratum: sum z and sum z^2
        select
            wave, {% for d in D %}{{ d }}, {% endfor %}indicator, measure, stratum_id,
            max(n_h) as n_h,
            max(fpc) as fpc,
            {% call surveysynth.dagg() %}zp{% endcall %} as sz,
            {% call surveysynth.dagg() %}k * k * a * a * (suu - 2 * r * suv + r * r * svv + 2 * delta * (su2 - r * sv2) + delta * delta * sww){% endcall %} as szz
        from zrows_{{ L }}
        group by wave, {% for d in D %}{{ d }}, {% endfor %}indicator, measure, stratum_id
    ) as by_stratum
    group by wave, {% for d in D %}{{ d }}, {% endfor %}indicator, measure

),

{% if calv -%}
{{ surveysynth.calibrated_variance_level_ctes(L, D, dims) }}
{%- endif %}

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
        {{ surveysynth.sql_literal(dom.level) }} as domain_level,
        waves.wave,
        indicator_list.indicator,
        indicator_list.measure,
        indicator_list.auxiliary,
        indicator_list.nonneg,
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
            else sqrt(greatest(coalesce(variance.variance, 0.0){% if calv %} + coalesce(cal.correction, 0.0){% endif %}, 0.0))
        end as se,
        -- design degrees of freedom: item respondents less the strata they fall in (n - H)
        case when point.n_respondents >= 2 then greatest(point.n_respondents - variance.n_strata, 1) end as df,
        case when point.sum_ww > 0 then point.sum_w * point.sum_w / point.sum_ww end as n_kish
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
    {% if calv -%}
    left join cal_corr_{{ L }} as cal
        on waves.wave = cal.wave
        and indicator_list.indicator = cal.indicator
        and indicator_list.measure = cal.measure
        {% for d in D -%}
        and spine.{{ d }} = cal.{{ d }}
        {% endfor %}
    {%- endif %}

),

{% endfor -%}

stacked as (

    {% for dom in domains -%}
    select * from domain_{{ loop.index }}
    {{ 'union all' if not loop.last }}
    {% endfor %}

),

{#- t quantile of the design df (Hill 1970, as the estimate macro) -#}
with_t as (

    {{ surveysynth._t_quantile_select('stacked', 'df', 0.05, z975) }}

),

{#- intervals on the estimate's scale (macros/estimation/intervals.sql): Wilson with the design
    effective n (and z) for shares, log-scale t for non-negative outcomes, t otherwise -#}
{%- set wil = surveysynth.share_interval_wilson('estimate', 'se', 'n_kish', z975 ~ 'e0') -%}
{%- set mid = surveysynth.mean_interval('estimate', 'se', 'es_tq', 'nonneg') %}
measured as (

    select
        with_t.*,
        es_tq as t_quantile,
        case when measure = 'share' then {{ wil.lo }} else {{ mid.lo }} end as ci_low,
        case when measure = 'share' then {{ wil.hi }} else {{ mid.hi }} end as ci_high,
        case when measure = 'share' then {{ surveysynth.interval_label('wilson', none, none) }}
            else {{ surveysynth.interval_label('mean', 'estimate', 'nonneg') }} end as interval_method,
        case when estimate <> 0 then se / abs(estimate) end as cv
    from with_t

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
        df,
        interval_method,
        n_kish,

        -- support and quality
        cast(n_respondents as {{ dbt.type_bigint() }}) as n_respondents,
        cast(n_population as {{ dbt.type_bigint() }}) as n_population,
        grade,
        grade_reason
    from graded

)

select * from final
