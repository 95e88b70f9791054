{#- Estimates with standard errors and intervals from a multiply synthesized (augmented) relation,
    combined across implicates. For analysts' own models:

        select * from (
            {{ surveysynth.estimate(ref('augmented_microdata'), 'share', 'trading_status', level='closed',
                                    group_by=['region', 'wave']) }}
        ) as est

    Arguments
      relation     the stacked implicates: one complete dataset per implicate (augmented_microdata, or
                   any relation with the columns named below). Pass the whole relation: a domain is
                   chosen by group_by or `where`, never by filtering rows first, because the variance
                   strata need every unit of the implicate.
      measure      mean (Hajek: sum w y / sum w), share (mean of the 0/1 indicator column = level), or
                   total (sum w y); all over item respondents (units with a non-null value)
      column       the column estimated; level: the category of a share
      group_by     grouping columns (domains), e.g. ['region', 'wave']; [] for one overall estimate
      indicators   many at once instead of measure/column/level: a list of {measure, column, level}
                   (one pass over the relation for all of them)
      where        optional SQL condition defining a domain; units outside it count in the strata
                   (domain estimation) but not in the estimate
      rule         'mi' (Rubin 1987), 'partial' (Reiter 2003), 'full' (Raghunathan, Reiter & Rubin
                   2003), or 'auto': 'mi' in augment mode, 'full' in replica mode (var ss_synth_mode)
      conf_level   0.80, 0.90, 0.95 (default) or 0.99
      weight, implicate, stratum, fpc, is_synthetic: column names (defaults: augmented_microdata's)

    Returns one row per group x indicator: the group columns, indicator ('<column>' or
    '<column>=<level>'), measure, estimate, se, ci_low, ci_high, df (null = infinite: normal
    reference), df_com (the complete-data df of Barnard-Rubin), n_weighted (mean over implicates of
    the sum of weights over item respondents: the domain's size for a share's interval), m,
    between_var (b), within_var (u_bar), total_var (T), combining_rule, n_real and n_synthetic (item
    respondents per implicate, largest over implicates).

    What is computed, per implicate l: q_l (the measure) and u_l, its linearised variance for a
    stratified design with units as PSUs (STATS.md), z_i = w_i (y_i - q_l) / sum w (mean, share) or
    w_i y_i (total), zero outside the group or without an answer, and
        u_l = sum_h fpc_h n_h / (n_h - 1) sum_{i in h} (z_i - zbar_h)^2   (n_h = 1: fpc_h z_i^2),
    n_h the units of stratum h in the implicate, fpc_h = 1 - n_h / N_h. Then across implicates
    q_bar, b = sample variance of q_l, u_bar = mean u_l, and the rule:
        mi       T = u_bar + (1 + 1/m) b        df_old = (m - 1) (1 + u_bar / ((1 + 1/m) b))^2, and
                 Barnard & Rubin (1999): lambda = (1 + 1/m) b / T, nu = df_com (item respondents
                 less strata, over strata with fpc > 0; 0 = none: infinite),
                 df_obs = (nu + 1) / (nu + 3) nu (1 - lambda), df = 1 / (1 / df_old + 1 / df_obs)
                 (df_old alone when nu is infinite or u_bar = 0, a u_bar below 1e-9 T counting
                 as 0; df_obs alone when b = 0)
        partial  T = u_bar + b / m              df = (m - 1) (1 + m u_bar / b)^2
        full     T = (1 + 1/m) b - u_bar        df = (m - 1) (1 - m u_bar / ((m + 1) b))^2,
                 and where T <= 0, u_bar (Reiter 2002, n_syn = n) with a normal reference.
    Interval: q_bar +- t_{df} sqrt(T) for means and totals, t from Hill's (1970, ACM 396)
    approximation (relative error below 5e-4 for df > 2, exact at df = 1 and 2; df in (1, 2)
    interpolates ln t in 1 / df between them, at most 4% above exact; df below 1 reads as 1). A
    share's interval is built on the empirical logit of the population
    count with N = n_weighted (macros/estimation/intervals.sql, docs/estimation.md): always inside
    [0, 1], and able to reach 0 or 1 in a small domain.
    b = 0 gives df = infinity (a degenerate interval in a completed cell: see the README).

    Which rule, and why (augment mode): in augmented_microdata a completed cell holds its real
    respondents, who represent themselves, and synthetic records for its N - n non-responding units,
    so every implicate is a completed population: a census of an imputed population, within variance
    0 (fpc = 0). The synthetic values stand for data that were never collected: the missing-data
    setting of multiple imputation, so Rubin's rule applies. In a completed cell it is
    T = (1 + 1/m) b with df = m - 1; in a domain that also has observed cells, their design variance
    u_bar is added. Reiter's partial-synthesis rule (T = u_bar + b/m) is for synthetic versions of
    collected values and would understate the uncertainty here; the full-synthesis rule equals
    Rubin's where u_bar = 0 but subtracts u_bar in mixed domains. Honest only with proper synthesis
    (each implicate draws the cell parameters from their posterior), which the back-test checks. -#}
{% macro estimate(relation, measure=none, column=none, level=none, group_by=[], indicators=none,
                  where=none, rule='auto', conf_level=0.95, weight='analysis_weight',
                  implicate='implicate', stratum='variance_stratum', fpc='fpc',
                  is_synthetic='is_synthetic') %}
    {%- set g = group_by | list -%}
with es_source {{ surveysynth.cte_as() }} (

    {{ surveysynth.estimate_moments(relation, measure, column, level, g, indicators, where, weight,
                                    implicate, stratum, fpc, is_synthetic) }}

),

{{ surveysynth._estimate_ctes('es_source', g, surveysynth._estimate_indicators(measure, column, level, indicators),
                              rule, conf_level) }}
{% endmacro %}


{#- The first pass of `estimate`, on its own: per implicate x group x stratum, the weighted moments
    every estimate and variance is built from (additive, so a coarser domain is their sum over its
    groups). With estimate_from_moments, many domain levels cost one pass over the relation:

        with moments as ({{ surveysynth.estimate_moments(ref('augmented_microdata'), indicators=inds,
                                                         group_by=['region', 'sector', 'wave']) }})
        select * from ({{ surveysynth.estimate_from_moments('moments', ['region', 'wave'], indicators=inds) }}) as r

    Columns: es_imp, the group columns, es_stratum, es_fpc, es_n_units (units, answering or not) and
    per indicator k: es_sw_k (sum w over item respondents), es_swy_k (sum w y), es_sww_k (sum w^2),
    es_swwy_k (sum w^2 y), es_swwyy_k (sum w^2 y^2), es_nr_k / es_ns_k (real / synthetic item
    respondents).

    item_classes = true: item nonresponse is adjusted within each group x stratum (a weighting
    class): for a mean or share, the weights of the class's item respondents are scaled by
    a = (sum w over every unit of the class) / (sum w over its item respondents), and the moments
    are those of the scaled weights (es_sw and es_swy times a; es_sww, es_swwy, es_swwyy times
    a^2). A domain's mean is then sum_c W_c ybar_c / sum_c W_c over its classes c (W_c the class's
    weight, ybar_c its item respondents' mean) rather than the item respondents' mean, which leans
    towards the classes that answer the item more often. Within one class nothing changes (a
    cancels in the mean and its linearised variance); totals are not scaled. -#}
{% macro estimate_moments(relation, measure=none, column=none, level=none, group_by=[], indicators=none,
                          where=none, weight='analysis_weight', implicate='implicate',
                          stratum='variance_stratum', fpc='fpc', is_synthetic='is_synthetic',
                          item_classes=false) %}
    {%- set inds = surveysynth._estimate_indicators(measure, column, level, indicators) -%}
    {%- set dbl = surveysynth.type_double() -%}
    {%- set g = group_by | list -%}
{%- if item_classes %}
select
    es_imp,
    {% for c in g -%}
    {{ c }},
    {% endfor -%}
    es_stratum,
    es_fpc,
    es_n_units,
    {% for ind in inds -%}
    {%- set k = loop.index -%}
    {%- set a = '1e0' if ind.measure == 'total' else 'case when es_sw_' ~ k ~ ' > 0 then es_sw_all / es_sw_' ~ k ~ ' else 1e0 end' -%}
    {{ a }} * es_sw_{{ k }} as es_sw_{{ k }},
    {{ a }} * es_swy_{{ k }} as es_swy_{{ k }},
    {{ a }} * {{ a }} * es_sww_{{ k }} as es_sww_{{ k }},
    {{ a }} * {{ a }} * es_swwy_{{ k }} as es_swwy_{{ k }},
    {{ a }} * {{ a }} * es_swwyy_{{ k }} as es_swwyy_{{ k }},
    es_nr_{{ k }},
    es_ns_{{ k }}{{ ',' if not loop.last }}
    {% endfor %}
from (
{%- endif %}
select
    es_imp,
    {% for c in g -%}
    {{ c }},
    {% endfor -%}
    es_stratum,
    max(es_fpc) as es_fpc,
    count(*) as es_n_units,
    {% if item_classes %}{% call surveysynth.dagg() %}es_w_in{% endcall %} as es_sw_all,{% endif %}
    {% for ind in inds -%}
    {%- set k = loop.index -%}
    {% call surveysynth.dagg() %}case when es_y_{{ k }} is not null then es_w end{% endcall %} as es_sw_{{ k }},
    {% call surveysynth.dagg() %}es_w * es_y_{{ k }}{% endcall %} as es_swy_{{ k }},
    {% call surveysynth.dagg() %}case when es_y_{{ k }} is not null then es_w * es_w end{% endcall %} as es_sww_{{ k }},
    {% call surveysynth.dagg() %}es_w * es_w * es_y_{{ k }}{% endcall %} as es_swwy_{{ k }},
    {% call surveysynth.dagg() %}es_w * es_w * es_y_{{ k }} * es_y_{{ k }}{% endcall %} as es_swwyy_{{ k }},
    {% call surveysynth.dagg() %}case when es_y_{{ k }} is not null and es_syn = 0 then 1 else 0 end{% endcall %} as es_nr_{{ k }},
    {% call surveysynth.dagg() %}case when es_y_{{ k }} is not null and es_syn = 1 then 1 else 0 end{% endcall %} as es_ns_{{ k }}{{ ',' if not loop.last }}
    {% endfor %}
from (
    select
        {{ implicate }} as es_imp,
        {% for c in g -%}
        {{ c }},
        {% endfor -%}
        {{ stratum }} as es_stratum,
        cast({{ fpc }} as {{ dbl }}) as es_fpc,
        case when {{ is_synthetic }} then 1 else 0 end as es_syn,
        cast({{ weight }} as {{ dbl }}) as es_w,
        {% if item_classes -%}
        {{ 'cast(' ~ weight ~ ' as ' ~ dbl ~ ')' if where is none else 'case when (' ~ where ~ ') then cast(' ~ weight ~ ' as ' ~ dbl ~ ') end' }} as es_w_in,
        {% endif -%}
        {% for ind in inds -%}
        {%- set e = ind.expr if where is none else 'case when (' ~ where ~ ') then ' ~ ind.expr ~ ' end' -%}
        {{ e }} as es_y_{{ loop.index }}{{ ',' if not loop.last }}
        {% endfor %}
    from {{ relation }}
) as es_units
group by es_imp, {% for c in g %}{{ c }}, {% endfor %}es_stratum
{%- if item_classes %}
) as es_classes
{%- endif %}
{% endmacro %}


{#- The rest of `estimate`, from a moments relation (estimate_moments at the same or a finer
    grouping, with the same indicators). Returns a query with one row per group x indicator. -#}
{% macro estimate_from_moments(moments, group_by=[], measure=none, column=none, level=none,
                               indicators=none, rule='auto', conf_level=0.95) %}
with {{ surveysynth._estimate_ctes(moments, group_by | list,
                                   surveysynth._estimate_indicators(measure, column, level, indicators),
                                   rule, conf_level) }}
{% endmacro %}


{#- The CTEs (without the leading `with`) and the final select, from moments to combined estimates.
    Precision: the moments are raw (not centred), so the within-stratum sum of squares
    sum w^2 (y - q)^2 = sww q^2 - 2 q swwy + swwyy loses digits only where a stratum's values are
    nearly constant relative to their size (coefficient of variation below about 1e-6). -#}
{% macro _estimate_ctes(moments, g, inds, rule, conf_level) %}
    {%- set rule = surveysynth._estimate_rule(rule) -%}
    {%- set z = surveysynth._normal_quantile(conf_level) -%}
    {%- set dbl = surveysynth.type_double() -%}
{#- moments at the requested grouping (a sum over finer groups) -#}
es_m {{ surveysynth.cte_as() }} (

    select
        es_imp,
        {% for c in g -%}
        {{ c }},
        {% endfor -%}
        es_stratum,
        max(es_fpc) as es_fpc,
        {% call surveysynth.dagg() %}es_n_units{% endcall %} as es_n_units,
        {% for ind in inds -%}
        {%- set k = loop.index -%}
        {% call surveysynth.dagg() %}es_sw_{{ k }}{% endcall %} as es_sw_{{ k }},
        {% call surveysynth.dagg() %}es_swy_{{ k }}{% endcall %} as es_swy_{{ k }},
        {% call surveysynth.dagg() %}es_sww_{{ k }}{% endcall %} as es_sww_{{ k }},
        {% call surveysynth.dagg() %}es_swwy_{{ k }}{% endcall %} as es_swwy_{{ k }},
        {% call surveysynth.dagg() %}es_swwyy_{{ k }}{% endcall %} as es_swwyy_{{ k }},
        {% call surveysynth.dagg() %}es_nr_{{ k }}{% endcall %} as es_nr_{{ k }},
        {% call surveysynth.dagg() %}es_ns_{{ k }}{% endcall %} as es_ns_{{ k }}{{ ',' if not loop.last }}
        {% endfor %}
    from {{ moments }}
    group by es_imp, {% for c in g %}{{ c }}, {% endfor %}es_stratum

),

{#- n_h (every unit of the stratum in the implicate, in any group) and the fpc -#}
es_strata {{ surveysynth.cte_as() }} (

    select
        es_imp,
        es_stratum,
        {% call surveysynth.dagg() %}es_n_units{% endcall %} as es_n_h,
        max(es_fpc) as es_fpc
    from es_m
    group by es_imp, es_stratum

),

{#- per implicate x group: the point estimate q_l of every indicator -#}
es_point {{ surveysynth.cte_as() }} (

    select
        es_imp,
        {% for c in g -%}
        {{ c }},
        {% endfor -%}
        {% for ind in inds -%}
        {%- set k = loop.index -%}
        {% call surveysynth.dagg() %}es_sw_{{ k }}{% endcall %} as es_w_{{ k }},
        {% if ind.measure == 'total' -%}
        {% call surveysynth.dagg() %}es_swy_{{ k }}{% endcall %} as es_q_{{ k }},
        {%- else -%}
        {% call surveysynth.dagg() %}es_swy_{{ k }}{% endcall %} / nullif({% call surveysynth.dagg() %}es_sw_{{ k }}{% endcall %}, 0) as es_q_{{ k }},
        {%- endif %}
        {% call surveysynth.dagg() %}es_nr_{{ k }}{% endcall %} as es_nr_{{ k }},
        {% call surveysynth.dagg() %}es_ns_{{ k }}{% endcall %} as es_ns_{{ k }},
        {#- complete-data df (Barnard-Rubin): item respondents less strata, where fpc > 0 -#}
        {% call surveysynth.dagg() %}case when es_fpc > 0 then es_nr_{{ k }} + es_ns_{{ k }} else 0 end{% endcall %}
            - {% call surveysynth.dagg() %}case when es_fpc > 0 and es_nr_{{ k }} + es_ns_{{ k }} > 0 then 1 else 0 end{% endcall %} as es_dfc_{{ k }}{{ ',' if not loop.last }}
        {% endfor %}
    from es_m
    group by es_imp{% for c in g %}, {{ c }}{% endfor %}

),

{#- per implicate x group: u_l = sum_h fpc_h n_h / (n_h - 1) sum_{i in h} (z_i - zbar_h)^2, from
    sum z = (swy - q sw) / W and sum z^2 = (swwyy - 2 q swwy + q^2 sww) / W^2 (mean, share) or
    swy and swwyy (total) -#}
es_within {{ surveysynth.cte_as() }} (

    select
        es_zs.es_imp,
        {% for c in g -%}
        es_zs.{{ c }},
        {% endfor -%}
        {% for ind in inds -%}
        {%- set k = loop.index -%}
        {% call surveysynth.dagg() %}
            es_strata.es_fpc * case
                when es_strata.es_n_h >= 2
                    then cast(es_strata.es_n_h as {{ dbl }}) / (es_strata.es_n_h - 1)
                        * (es_zs.es_szz_{{ k }} - es_zs.es_sz_{{ k }} * es_zs.es_sz_{{ k }} / es_strata.es_n_h)
                else es_zs.es_szz_{{ k }}
            end
        {% endcall %} as es_u_{{ k }}{{ ',' if not loop.last }}
        {% endfor %}
    from (
        select
            es_m.es_imp,
            {% for c in g -%}
            es_m.{{ c }},
            {% endfor -%}
            es_m.es_stratum,
            {% for ind in inds -%}
            {%- set k = loop.index -%}
            {% if ind.measure == 'total' -%}
            coalesce(es_m.es_swy_{{ k }}, 0e0) as es_sz_{{ k }},
            coalesce(es_m.es_swwyy_{{ k }}, 0e0) as es_szz_{{ k }}{{ ',' if not loop.last }}
            {%- else -%}
            case when es_point.es_w_{{ k }} > 0
                then (coalesce(es_m.es_swy_{{ k }}, 0e0) - es_point.es_q_{{ k }} * coalesce(es_m.es_sw_{{ k }}, 0e0)) / es_point.es_w_{{ k }}
                else 0e0 end as es_sz_{{ k }},
            case when es_point.es_w_{{ k }} > 0
                then (coalesce(es_m.es_swwyy_{{ k }}, 0e0) - 2e0 * es_point.es_q_{{ k }} * coalesce(es_m.es_swwy_{{ k }}, 0e0)
                    + es_point.es_q_{{ k }} * es_point.es_q_{{ k }} * coalesce(es_m.es_sww_{{ k }}, 0e0))
                    / (es_point.es_w_{{ k }} * es_point.es_w_{{ k }})
                else 0e0 end as es_szz_{{ k }}{{ ',' if not loop.last }}
            {%- endif %}
            {% endfor %}
        from es_m
        inner join es_point
            on es_m.es_imp = es_point.es_imp
            {% for c in g -%}
            and es_m.{{ c }} is not distinct from es_point.{{ c }}
            {% endfor %}
    ) as es_zs
    inner join es_strata
        on es_zs.es_imp = es_strata.es_imp
        and es_zs.es_stratum = es_strata.es_stratum
    group by es_zs.es_imp{% for c in g %}, es_zs.{{ c }}{% endfor %}

),

{#- q_l and u_l side by side (one join), then long: one row per implicate x group x indicator -#}
es_qu {{ surveysynth.cte_as() }} (

    select
        es_point.*,
        {% for ind in inds -%}
        es_within.es_u_{{ loop.index }}{{ ',' if not loop.last }}
        {% endfor %}
    from es_point
    left join es_within
        on es_point.es_imp = es_within.es_imp
        {% for c in g -%}
        and es_point.{{ c }} is not distinct from es_within.{{ c }}
        {% endfor %}

),

es_k {{ surveysynth.cte_as() }} (

    {% for ind in inds -%}
    select {{ loop.index }} as es_idx, {{ surveysynth.sql_literal(ind.name) }} as indicator, '{{ ind.measure }}' as measure
    {{ 'union all' if not loop.last }}
    {% endfor %}

),

{#- unpivoted by a cross join with the indicator list (each CTE is read once) -#}
es_long {{ surveysynth.cte_as() }} (

    select
        es_qu.es_imp,
        {% for c in g -%}
        es_qu.{{ c }},
        {% endfor -%}
        es_k.indicator,
        es_k.measure,
        case es_k.es_idx {% for ind in inds %}when {{ loop.index }} then es_qu.es_q_{{ loop.index }} {% endfor %}end as es_q,
        case es_k.es_idx {% for ind in inds %}when {{ loop.index }} then es_qu.es_u_{{ loop.index }} {% endfor %}end as es_u_raw,
        case es_k.es_idx {% for ind in inds %}when {{ loop.index }} then es_qu.es_nr_{{ loop.index }} {% endfor %}end as es_nr,
        case es_k.es_idx {% for ind in inds %}when {{ loop.index }} then es_qu.es_ns_{{ loop.index }} {% endfor %}end as es_ns,
        case es_k.es_idx {% for ind in inds %}when {{ loop.index }} then es_qu.es_dfc_{{ loop.index }} {% endfor %}end as es_dfc,
        case es_k.es_idx {% for ind in inds %}when {{ loop.index }} then es_qu.es_w_{{ loop.index }} {% endfor %}end as es_wsum
    from es_qu
    cross join es_k

),

{#- across implicates: q_bar, b, u_bar. Implicates that agree but for rounding (sums taken in
    another order) give a b of about 1e-32 q_bar^2, and engines differ in it: a b below
    1e-18 q_bar^2 (an SD below 1e-9 of the estimate) is read as 0 -#}
es_pooled {{ surveysynth.cte_as() }} (

    select
        es_raw.*,
        case when es_b_raw <= 1.0e-18 * es_qbar * es_qbar then 0e0 else es_b_raw end as es_b
    from (
        select
            {% for c in g -%}
            {{ c }},
            {% endfor -%}
            indicator,
            measure,
            count(*) as m,
            {% call surveysynth.dagg('avg') %}es_q{% endcall %} as es_qbar,
            {% call surveysynth.dagg('var_samp') %}es_q{% endcall %} as es_b_raw,
            {% call surveysynth.dagg('avg') %}case when es_u_raw > 0 then es_u_raw else 0e0 end{% endcall %} as es_ubar,
            max(es_nr) as n_real,
            max(es_ns) as n_synthetic,
            max(es_dfc) as df_com,
            {% call surveysynth.dagg('avg') %}es_wsum{% endcall %} as es_wbar
        from es_long
        where es_q is not null
        group by {% for c in g %}{{ c }}, {% endfor %}indicator, measure
    ) as es_raw

),

{#- the combining rule: T and df (null df = infinite) -#}
es_rule {{ surveysynth.cte_as() }} (

    select
        es_pooled.*,
        {% if rule == 'mi' -%}
        es_ubar + (1.0e0 + 1.0e0 / m) * es_b as es_t,
        case when es_b > 0 then (m - 1) * power(1.0e0 + es_ubar / ((1.0e0 + 1.0e0 / m) * es_b), 2) end as es_df_old
        {%- elif rule == 'partial' -%}
        es_ubar + es_b / m as es_t,
        case when es_b > 0 then (m - 1) * power(1.0e0 + m * es_ubar / es_b, 2) end as es_df
        {%- else -%}
        case
            when (1.0e0 + 1.0e0 / m) * es_b - es_ubar > 0 then (1.0e0 + 1.0e0 / m) * es_b - es_ubar
            when es_b is not null then es_ubar
        end as es_t,
        case
            when (1.0e0 + 1.0e0 / m) * es_b - es_ubar > 0
                then (m - 1) * power(1.0e0 - m * es_ubar / ((m + 1.0e0) * es_b), 2)
        end as es_df
        {%- endif %}
    from es_pooled

),
{% if rule == 'mi' %}
{#- Barnard & Rubin (1999): df_obs = (nu + 1) / (nu + 3) nu (1 - lambda), lambda = (1 + 1/m) b / T,
    df = 1 / (1 / df_old + 1 / df_obs); nu = df_com, at least 1 (the direct estimate's df floor,
    max(n - H, 1): every observed respondent alone in its stratum gives 0, which read as infinite
    had given such a domain a normal interval). u_bar at most 1e-9 T is a rounding residue of a
    completed cell and counts as 0 (df_old alone), as does a part with no sampling variance to
    estimate (df_com null); else df_obs is 0 from rounding alone (a division by zero on
    PostgreSQL, df 0 on DuckDB) -#}
es_br {{ surveysynth.cte_as() }} (

    select
        es_dfo.*,
        case
            when es_df_obs is null then es_df_old
            when es_df_old is null then es_df_obs
            else 1.0e0 / (1.0e0 / es_df_old + 1.0e0 / es_df_obs)
        end as es_df
    from (
        select
            es_rule.*,
            case when df_com is not null and es_t > 0 and es_ubar > 1.0e-9 * es_t
                then (greatest(df_com, 1) + 1.0e0) / (greatest(df_com, 1) + 3.0e0) * greatest(df_com, 1)
                    * (1.0e0 - (1.0e0 + 1.0e0 / m) * coalesce(es_b, 0e0) / es_t)
            end as es_df_obs
        from es_rule
    ) as es_dfo

),
{% endif %}
es_quantile {{ surveysynth.cte_as() }} (

    {{ surveysynth._t_quantile_select('es_br' if rule == 'mi' else 'es_rule', 'es_df', 1.0 - conf_level, z) }}

),

es_final {{ surveysynth.cte_as() }} (

    select
        {% for c in g -%}
        {{ c }},
        {% endfor -%}
        indicator,
        measure,
        es_qbar as estimate,
        sqrt(es_t) as se,
        {%- set sh = surveysynth.share_interval_elogit('es_qbar', 'sqrt(es_t)', 'es_tq', 'es_wbar') %}
        {#- a share of 0 or 1 with no variance from n real answers in a domain of more units is not
            exact: Wilson's interval with those n answers, as the direct estimate's would be -#}
        {%- set wil = surveysynth.share_interval_wilson('es_qbar', '0e0', 'n_real', 'es_tq') %}
        {%- set flat = "(measure = 'share' and es_t = 0 and es_qbar in (0, 1) and n_real > 0 and es_wbar > n_real + 0.5e0)" %}
        case when {{ flat }} then {{ wil.lo }} when measure = 'share' then {{ sh.lo }} else es_qbar - es_tq * sqrt(es_t) end as ci_low,
        case when {{ flat }} then {{ wil.hi }} when measure = 'share' then {{ sh.hi }} else es_qbar + es_tq * sqrt(es_t) end as ci_high,
        es_df as df,
        df_com,
        es_wbar as n_weighted,
        m,
        es_b as between_var,
        es_ubar as within_var,
        es_t as total_var,
        '{{ rule }}' as combining_rule,
        n_real,
        n_synthetic
    from es_quantile

)

select * from es_final
{% endmacro %}


{#- [{name, measure, column, level, expr}] from the single-measure or the list form. -#}
{% macro _estimate_indicators(measure, column, level, indicators) %}
    {%- set raw = indicators if indicators is not none else [{'measure': measure, 'column': column, 'level': level}] -%}
    {%- set out = [] -%}
    {%- for i in raw -%}
        {%- set ms = i.get('measure') -%}
        {%- set col = i.get('column') -%}
        {%- if ms not in ('mean', 'share', 'total') -%}
            {{ exceptions.raise_compiler_error("surveysynth.estimate: measure '" ~ ms ~ "' unknown; use mean, share or total") }}
        {%- endif -%}
        {%- if col is none -%}
            {{ exceptions.raise_compiler_error("surveysynth.estimate: give the column to estimate (column=...)") }}
        {%- endif -%}
        {%- set col = surveysynth.ident(col) -%}
        {%- if ms == 'share' -%}
            {%- if i.get('level') is none -%}
                {{ exceptions.raise_compiler_error("surveysynth.estimate: a share of '" ~ col ~ "' needs level=<category>") }}
            {%- endif -%}
            {%- do out.append({'name': surveysynth.ident_name(col) ~ '=' ~ i.get('level'), 'measure': ms,
                               'expr': 'case when ' ~ col ~ ' is null then null when ' ~ col ~ ' = ' ~ surveysynth.sql_literal(i.get('level')) ~ ' then 1.0 else 0.0 end'}) -%}
        {%- else -%}
            {%- do out.append({'name': surveysynth.ident_name(col), 'measure': ms, 'expr': 'cast(' ~ col ~ ' as ' ~ surveysynth.type_double() ~ ')'}) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- if out | length == 0 -%}
        {{ exceptions.raise_compiler_error("surveysynth.estimate: no indicator given") }}
    {%- endif -%}
    {{ return(out) }}
{% endmacro %}


{#- 'auto' -> 'mi' in augment mode (completed populations), 'full' in replica mode. -#}
{% macro _estimate_rule(rule) %}
    {%- if rule == 'auto' -%}
        {{ return('full' if var('ss_synth_mode', 'augment') == 'replica' else 'mi') }}
    {%- endif -%}
    {%- if rule not in ('mi', 'partial', 'full') -%}
        {{ exceptions.raise_compiler_error("surveysynth.estimate: rule '" ~ rule ~ "' unknown; use auto, mi, partial or full") }}
    {%- endif -%}
    {{ return(rule) }}
{% endmacro %}


{#- Upper normal quantile z_{1 - alpha/2} for the supported confidence levels. -#}
{% macro _normal_quantile(conf_level) %}
    {%- set table = {0.8: 1.2815515655446004, 0.9: 1.6448536269514722, 0.95: 1.959963984540054, 0.99: 2.5758293035489004} -%}
    {%- set key = (conf_level | float) -%}
    {%- for k, v in table.items() -%}
        {%- if (k - key) | abs < 1e-9 -%}{{ return(v) }}{%- endif -%}
    {%- endfor -%}
    {{ exceptions.raise_compiler_error("surveysynth.estimate: conf_level " ~ conf_level ~ " not supported; use 0.8, 0.9, 0.95 or 0.99") }}
{% endmacro %}


{#- All columns of `source` plus es_tq, the two-sided t quantile of the df column (two-sided level p,
    normal quantile z for null df). Hill (1970), Algorithm 396, in successive projections; exact at
    df = 1 and 2, and between them geometric interpolation in 1 / df, ln t = ln t_2 + (ln t_1 -
    ln t_2) (2 / df - 1), at most 4% above the exact quantile (conservative, and no jump at 2); df
    below 1 reads as 1. -#}
{% macro _t_quantile_select(source, df_col, p, z) %}
    {%- set x = -z -%}
    {%- set pi = 3.141592653589793e0 -%}
    {%- set cot = surveysynth._cot_half_pi(p) -%}
    {%- set t2 = (2.0 / (p * (2.0 - p)) - 2.0) ** 0.5 -%}
select
    tq4.*,
    case
        when tq4.tq_n is null then {{ z }}e0
        when tq4.{{ df_col }} > 1 and tq4.{{ df_col }} < 2
            then {{ t2 }}e0 * power({{ cot / t2 }}e0, 2.0e0 / tq4.{{ df_col }} - 1.0e0)
        when tq4.tq_n = 1 then {{ cot }}e0
        when tq4.tq_n = 2 then {{ t2 }}e0
        when tq4.tq_y0 > 0.05e0 + tq4.tq_a then sqrt(tq4.tq_n * (case when tq4.tq_y2 > 0.002e0 then exp(tq4.tq_y2) - 1.0e0 else 0.5e0 * tq4.tq_y2 * tq4.tq_y2 + tq4.tq_y2 end))
        else sqrt(tq4.tq_n * (((1.0e0 / (((tq4.tq_n + 6.0e0) / (tq4.tq_n * tq4.tq_y0) - 0.089e0 * tq4.tq_d - 0.822e0) * (tq4.tq_n + 2.0e0) * 3.0e0)
                + 0.5e0 / (tq4.tq_n + 4.0e0)) * tq4.tq_y0 - 1.0e0) * (tq4.tq_n + 1.0e0) / (tq4.tq_n + 2.0e0) + 1.0e0 / tq4.tq_y0))
    end as es_tq
from (
    select
        tq3.*,
        tq3.tq_a * power(((((0.4e0 * {{ x * x }}e0 + 6.3e0) * {{ x * x }}e0 + 36.0e0) * {{ x * x }}e0 + 94.5e0) / tq3.tq_c2 - {{ x * x }}e0 - 3.0e0) / tq3.tq_b + 1.0e0, 2) * {{ x * x }}e0 as tq_y2
    from (
        select
            tq2.*,
            (((0.05e0 * tq2.tq_d * {{ x }}e0 - 5.0e0) * {{ x }}e0 - 7.0e0) * {{ x }}e0 - 2.0e0) * {{ x }}e0 + tq2.tq_b + tq2.tq_c
                + case when tq2.tq_n < 5 then 0.3e0 * (tq2.tq_n - 4.5e0) * ({{ x }}e0 + 0.6e0) else 0.0e0 end as tq_c2,
            power(tq2.tq_d * {{ p }}e0, 2.0e0 / tq2.tq_n) as tq_y0
        from (
            select
                tq1.*,
                ((94.5e0 / (tq1.tq_b + tq1.tq_c) - 3.0e0) / tq1.tq_b + 1.0e0) * sqrt(tq1.tq_a * {{ pi / 2 }}e0) * tq1.tq_n as tq_d
            from (
                select
                    tq0.*,
                    48.0e0 / (tq0.tq_a * tq0.tq_a) as tq_b,
                    ((20700.0e0 * tq0.tq_a / (48.0e0 / (tq0.tq_a * tq0.tq_a)) - 98.0e0) * tq0.tq_a - 16.0e0) * tq0.tq_a + 96.36e0 as tq_c
                from (
                    select
                        tq_src.*,
                        case when tq_src.{{ df_col }} is null then null
                            when tq_src.{{ df_col }} < 2 then 1.0e0
                            else tq_src.{{ df_col }} end as tq_n,
                        case when tq_src.{{ df_col }} is null or tq_src.{{ df_col }} < 2 then 0.6667e0
                            else 1.0e0 / (tq_src.{{ df_col }} - 0.5e0) end as tq_a
                    from {{ source }} as tq_src
                ) as tq0
            ) as tq1
        ) as tq2
    ) as tq3
) as tq4
{% endmacro %}


{#- cot(p pi / 2): the t quantile with 1 df at two-sided level p (supported levels only). -#}
{% macro _cot_half_pi(p) %}
    {%- set table = {0.2: 3.077683537175254, 0.1: 6.313751514675041, 0.05: 12.706204736174694, 0.01: 63.65674116287364} -%}
    {%- for k, v in table.items() -%}
        {%- if (k - p) | abs < 1e-9 -%}{{ return(v) }}{%- endif -%}
    {%- endfor -%}
    {{ return(none) }}
{% endmacro %}
