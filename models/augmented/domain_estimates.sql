{{ surveysynth.validate_config() }}
{#- The published estimate of every domain x wave x indicator: the method with the smallest
    estimated error, its interval on the estimate's scale, a grade for its precision and, apart from
    it, how much of it rests on the model. The rule and its formulas: docs/estimation.md.

    Domains and indicators are those of direct_estimates (each cell, each cell dimension, each pair
    of cell dimensions, ss_estimation_domains, national; means of numeric outcomes and shares of
    every level). For each row:
      direct      the direct estimate (direct_estimates), variance v_d = se_d^2; the mean of an
                  outcome with a ratio auxiliary (ss_ratio_estimators) is the ratio estimator's,
                  (sum w y / sum w x) X_d / N_d, which uses the register's known total X_d;
      augmented   the estimate macro over augmented_microdata (Rubin's rule, Barnard-Rubin df), with
                  MSE_a = T + B^2, B^2 the bias allowance the back-test measured for the model part
                  (augmented_error_allowance, by indicator and the respondents a completed cell has),
                  scaled by the domain's model share;
      composite   (cells with a model part and a direct estimate) phi d + (1 - phi) a, with
                  phi = (M_a - C) / (M_a + V_d - 2 C) clipped to [0, 1], C = rho sqrt(V_d M_a), rho
                  the back-test's correlation of the two errors, at least (1 - s) sqrt(V_d / M_a)
                  (the respondents both estimates count; macro composite_corr).
    V_d and M_a are df-penalised, (t_df / z)^2 times the variance, so that a method is not chosen for
    a variance estimate that happened to come out small from few degrees of freedom. The smallest of
    V_d, M_a and the composite's M_c is published; with the interval's width too wide for
    ss_grade_* the row is suppressed (estimate and interval null, reason given). -#}
{{ surveysynth.validate_design_config() }}
{%- set dims = surveysynth.cell_dims() -%}
{%- set outs = surveysynth.outcomes() -%}
{%- set domains = surveysynth.estimation_domains() -%}
{%- set good = var('ss_grade_cv_good') -%}
{%- set caution = var('ss_grade_cv_caution') -%}
{%- set share_good = var('ss_grade_share_se_good', 0.05) -%}
{%- set share_caution = var('ss_grade_share_se_caution', 0.10) -%}
{%- set z = 1.959963984540054 -%}
{%- set t = surveysynth.as_text -%}
{%- set dbl = surveysynth.type_double() -%}
{#- the outcomes whose direct mean is the ratio estimator's, as an SQL list of their indicators -#}
{%- set ratio_ys = [] -%}
{%- for y in surveysynth.ratio_estimators().keys() %}{% do ratio_ys.append(surveysynth.sql_literal(surveysynth.ident_name(y))) %}{% endfor -%}
{%- set ratio_inds = '(' ~ ratio_ys | join(', ') ~ ')' -%}
{#- the cells whose relvariance is pooled for the direct SE of a cell mean: the dimensions of
    ss_direct_se_pool_by that are cell dimensions (the rest ignored, so that the demo's default
    does not bind other surveys) -#}
{%- set pool_by = [] -%}
{%- for d in (var('ss_direct_se_pool_by', none) or []) -%}{%- if d in dims %}{% do pool_by.append(d) %}{% endif -%}{%- endfor -%}

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

{#- the direct mean of an outcome with a ratio auxiliary is the ratio estimate of its total over
    the domain's population count: a linear rescaling of the ratio row, so its SE, interval (t on
    the log scale), df and cv carry over. On the demo's turnover it cuts the direct RMSE of supported
    cells about six-fold: the register's turnover tells of the large businesses the sample missed. -#}
{%- set direct_cols = dims + ['cell_id', 'domain_level', 'wave', 'indicator', 'auxiliary', 'cv', 'df', 'interval_method', 'n_kish', 'n_respondents', 'n_population', 'grade', 'grade_reason'] %}

with direct {{ surveysynth.cte_as() }} (

    select {% for c in direct_cols %}{{ c }}, {% endfor %}measure, estimate, se, ci_low, ci_high
    from {{ ref('direct_estimates') }}
    where measure = 'share'
        or (measure = 'mean'{% if ratio_ys %} and indicator not in {{ ratio_inds }}{% endif %})
    {% if ratio_ys -%}
    union all
    select {% for c in direct_cols %}{{ c }}, {% endfor %}'mean' as measure,
        estimate / nullif(n_population, 0) as estimate,
        se / nullif(n_population, 0) as se,
        ci_low / nullif(n_population, 0) as ci_low,
        ci_high / nullif(n_population, 0) as ci_high
    from {{ ref('direct_estimates') }}
    where measure = 'ratio'
    {%- endif %}

),

support {{ surveysynth.cte_as() }} (

    select * from {{ ref('cell_support') }}

),

{#- the back-test's allowance per indicator x size, where it was measured on 5 cells or more (the
    back-test gate's least): the rows of one cell share its error, and one cell's error is not an
    allowance -#}
allowance {{ surveysynth.cte_as() }} (

    select * from {{ ref('augmented_error_allowance') }}
    where n_cells >= 5

),

{#- a generalized variance function for the direct means of cells: the unit relvariance
    rv = se^2 n / (1 - n/N) / est^2, pooled over the cells of a wave x indicator (x the
    ss_direct_se_pool_by dimensions) with weights n - 1. A skewed outcome's SE from a few
    respondents is too often small (the sample missed the tail); the published SE of a cell mean
    is the larger of its own and rv_pool est^2 (1 - n/N) / n. -#}
relvariance {{ surveysynth.cte_as() }} (

    select
        {% for d in pool_by -%}
        {{ d }},
        {% endfor -%}
        wave,
        indicator,
        {{ surveysynth.pooled_relvariance('se', 'estimate') }} as rv_pool
    from direct
    where domain_level = 'cell'
        and measure = 'mean'
        and se is not null
        and estimate > 0
        and n_respondents >= 2
        and n_respondents < n_population
    group by {% for d in pool_by %}{{ d }}, {% endfor %}wave, indicator

),

{#- one pass over augmented_microdata: moments per implicate x cell x wave x stratum; every domain
    level below is a roll-up of them -#}
moments {{ surveysynth.cte_as() }} (

    {{ surveysynth.estimate_moments(ref('augmented_microdata'), indicators=inds, group_by=dims + ['wave'], item_classes=true) }}

),

{% for dom in domains -%}
augmented_{{ loop.index }} {{ surveysynth.cte_as() }} (

    select
        {% for d in dims -%}
        {% if d in dom.dims %}est.{{ d }}{% else %}cast(null as {{ dbt.type_string() }}){% endif %} as {{ d }},
        {% endfor -%}
        {{ surveysynth.sql_literal(dom.level) }} as domain_level,
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

augmented {{ surveysynth.cte_as() }} (

    {% for dom in domains -%}
    select * from augmented_{{ loop.index }}
    {{ 'union all' if not loop.last }}
    {% endfor %}

),

{#- per cell x wave x implicate: the weight of the synthetic records and of all records, and per
    indicator the weighted sums that give the completed cell's unit variance S^2 -#}
{%- set einds = surveysynth._estimate_indicators(none, none, none, inds) %}
cell_implicates {{ surveysynth.cte_as() }} (

    select
        cell_id,
        wave,
        implicate,
        {% call surveysynth.dagg() %}case when is_synthetic then analysis_weight else 0e0 end{% endcall %} as w_syn,
        {% call surveysynth.dagg() %}analysis_weight{% endcall %} as w_all,
        {% for ind in einds -%}
        {%- set k = loop.index -%}
        {% call surveysynth.dagg() %}case when ({{ ind.expr }}) is not null then analysis_weight end{% endcall %} as sw_{{ k }},
        {% call surveysynth.dagg() %}analysis_weight * ({{ ind.expr }}){% endcall %} as swy_{{ k }},
        {% call surveysynth.dagg() %}analysis_weight * ({{ ind.expr }}) * ({{ ind.expr }}){% endcall %} as swyy_{{ k }}{{ ',' if not loop.last }}
        {% endfor %}
    from {{ ref('augmented_microdata') }}
    group by cell_id, wave, implicate

),

{#- means over implicates: model share weights and S^2 = sum w (y - ybar)^2 / sum w (a completed
    cell's population variance; in an observed cell the respondents' weighted variance) -#}
cell_weights {{ surveysynth.cte_as() }} (

    select
        cell_id,
        wave,
        {% call surveysynth.dagg('avg') %}w_syn{% endcall %} as w_syn,
        {% call surveysynth.dagg('avg') %}w_all{% endcall %} as w_all,
        {% for ind in einds -%}
        {%- set k = loop.index -%}
        {% call surveysynth.dagg('avg') %}case when sw_{{ k }} > 0 then greatest(swyy_{{ k }} - swy_{{ k }} * swy_{{ k }} / sw_{{ k }}, 0e0) / sw_{{ k }} end{% endcall %} as s2_{{ k }}{{ ',' if not loop.last }}
        {% endfor %}
    from cell_implicates
    group by cell_id, wave

),

cell_unit_variance {{ surveysynth.cte_as() }} (

    select
        cell_weights.cell_id,
        cell_weights.wave,
        slots.indicator,
        case slots.k {% for ind in einds %}when {{ loop.index }} then cell_weights.s2_{{ loop.index }} {% endfor %}end as s2
    from cell_weights
    cross join (
        {% for ind in einds -%}
        select {{ loop.index }} as k, {{ surveysynth.sql_literal(ind.name) }} as indicator
        {{ 'union all' if not loop.last }}
        {% endfor %}
    ) as slots

),

indicator_list {{ surveysynth.cte_as() }} (

    {% for ind in inds -%}
    select {{ surveysynth.sql_literal(surveysynth.ident_name(ind.column) ~ ('=' ~ ind.level if ind.measure == 'share' else '')) }} as indicator
    {{ 'union all' if not loop.last }}
    {% endfor %}

),

{#- per cell x wave x indicator: the measured size whose allowance the cell takes. A cell with
    respondents: the largest measured size >= 1 at or below its respondents, else the smallest
    measured size >= 1, else size 0 (a back-test that could only empty sparse cells: the empty
    cell's allowance bounds the allowance of a cell with respondents). A cell without respondents:
    size 0 where measured, else the smallest measured size. -#}
allowance_size {{ surveysynth.cte_as() }} (

    select
        support.cell_id,
        support.wave,
        allowance.indicator,
        case
            when support.n_respondents = 0
                then case when max(case when allowance.n_thinned = 0 then 1 else 0 end) = 1 then 0
                    else min(case when allowance.n_thinned > 0 then allowance.n_thinned end) end
            else coalesce(
                max(case when allowance.n_thinned > 0 and allowance.n_thinned <= support.n_respondents
                    then allowance.n_thinned end),
                min(case when allowance.n_thinned > 0 then allowance.n_thinned end),
                min(allowance.n_thinned)
            )
        end as n_thinned
    from support
    cross join allowance
    group by support.cell_id, support.wave, support.n_respondents, allowance.indicator

),

{#- per cell x wave x indicator: the back-test's allowance for the cell's size (allowance_size),
    and the scale it is measured on: 1 for a share, for a mean |the cell's augmented estimate| (the
    back-test's errors of means are relative to it). A domain of several cells sums the cells'
    errors on their own scale: a margin's error from a completed 250+ cell is its relative error
    times the cell's mean (about 1,000 employees), not times the margin's (about 15) -#}
cell_allowance {{ surveysynth.cte_as() }} (

    select
        {% for d in dims -%}
        support.{{ d }},
        {% endfor -%}
        support.wave,
        indicator_list.indicator,
        coalesce(cw.w_syn, 0e0) as w_syn,
        coalesce(cw.w_all, 0e0) as w_all,
        coalesce(allowance.bias_mean, 0e0) as bias_mean,
        coalesce(allowance.excess_var, 0e0) as excess_var,
        coalesce(allowance.error_corr, 0e0) as error_corr,
        case when allowance.indicator is not null then 1 else 0 end as measured,
        case when allowance.measure = 'share' then 1e0 else coalesce(abs(acell.estimate), 0e0) end as scale
    from support
    cross join indicator_list
    left join augmented as acell
        on acell.domain_level = 'cell'
        and acell.wave = support.wave
        and acell.indicator = indicator_list.indicator
        {% for d in dims -%}
        and acell.{{ d }} = support.{{ d }}
        {% endfor %}
    left join cell_weights as cw
        on support.cell_id = cw.cell_id
        and support.wave = cw.wave
    left join allowance_size as size_
        on support.cell_id = size_.cell_id
        and support.wave = size_.wave
        and indicator_list.indicator = size_.indicator
    left join allowance
        on allowance.indicator = size_.indicator
        and allowance.n_thinned = size_.n_thinned

),

{% for dom in domains -%}
allowance_{{ loop.index }} {{ surveysynth.cte_as() }} (

    select
        {% for d in dims -%}
        {% if d in dom.dims %}{{ d }}{% else %}cast(null as {{ dbt.type_string() }}){% endif %} as {{ d }},
        {% endfor -%}
        {{ surveysynth.sql_literal(dom.level) }} as domain_level,
        wave,
        indicator,
        {% call surveysynth.dagg() %}w_syn{% endcall %} as w_syn,
        {% call surveysynth.dagg() %}w_all{% endcall %} as w_all,
        {% call surveysynth.dagg() %}w_syn * bias_mean * scale{% endcall %} as w_bias,
        {% call surveysynth.dagg() %}w_syn * w_syn * excess_var * scale * scale{% endcall %} as ww_var,
        {% call surveysynth.dagg() %}w_syn * error_corr{% endcall %} as w_corr,
        {% call surveysynth.dagg() %}case when w_syn > 0 then 1 - measured else 0 end{% endcall %} as n_unmeasured
    from cell_allowance
    group by {% for d in dom.dims %}{{ d }}, {% endfor %}wave, indicator

),

{% endfor -%}

domain_allowance {{ surveysynth.cte_as() }} (

    {% for dom in domains -%}
    select * from allowance_{{ loop.index }}
    {{ 'union all' if not loop.last }}
    {% endfor %}

),

joined {{ surveysynth.cte_as() }} (

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
        direct.n_respondents,

        direct.estimate as direct_estimate,
        direct.se as direct_se,
        direct.ci_low as direct_ci_low,
        direct.ci_high as direct_ci_high,
        direct.df as direct_df,
        direct.interval_method as direct_interval_method,
        direct.cv as direct_cv,
        direct.grade as direct_grade,

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
        coalesce(augmented.n_synthetic, 0) as n_synthetic,

        -- the model part: share of the domain's weight on synthetic records, and its bias allowance
        case when da.w_all > 0 then da.w_syn / da.w_all else 0e0 end as model_share_augmented,
        case
            when da.w_all > 0 and da.w_syn > 0
                then (da.w_bias * da.w_bias + da.ww_var) / (da.w_all * da.w_all)
            else 0e0
        end as bias_allowance_var,
        case when da.w_syn > 0 then da.w_corr / da.w_syn else 0e0 end as error_corr,
        coalesce(da.n_unmeasured, 0) as n_unmeasured,
        -- the direct variance the completed cell's unit variance implies, S^2 N / (N - 1) (1 - n/N) / n
        -- (the Hajek mean's: not for a ratio outcome, whose variance is the residuals' y - R x,
        -- floored by the pooled relvariance of its own rows above)
        case when direct.n_respondents >= 1 and direct.n_population > direct.n_respondents
            {%- if ratio_ys %} and direct.indicator not in {{ ratio_inds }}{% endif %}
            then cuv.s2 * direct.n_population / (direct.n_population - 1e0)
                * (1e0 - cast(direct.n_respondents as {{ dbl }}) / direct.n_population) / direct.n_respondents
        end as v_direct_model,
        case when direct.domain_level = 'cell' and direct.measure = 'mean' and direct.se is not null
            and direct.n_respondents < direct.n_population
            then rv.rv_pool * direct.estimate * direct.estimate
                * (1e0 - cast(direct.n_respondents as {{ dbl }}) / direct.n_population) / direct.n_respondents
        end as v_direct_gvf,
        -- the same generalized variance for a cell mean of one respondent (no SE of its own): what
        -- the cell adds to the variance of a margin below (direct_cells_var)
        case when direct.domain_level = 'cell' and direct.measure = 'mean' and direct.estimate is not null
            and direct.n_respondents >= 1 and direct.n_respondents < direct.n_population
            then rv.rv_pool * direct.estimate * direct.estimate
                * (1e0 - cast(direct.n_respondents as {{ dbl }}) / direct.n_population) / direct.n_respondents
        end as v_direct_gvf_any,
        -- a share of a domain with a model part: the predictive variance of its records' part,
        -- s^2 q~ (1 - q~) / (N - n), q~ = (N q + 1/2) / (N + 1), a floor under Rubin's T, which m
        -- implicates leave at 0 whenever they happen to agree (often, in a small cell or a rare
        -- level). Over several cells it takes one q for all, which bounds the sum over the cells
        -- of their binomial variances from above
        case when direct.measure = 'share' and da.w_syn > 0 and da.w_all > 0
            and direct.n_population > direct.n_respondents
            then power(da.w_syn / da.w_all, 2) / (direct.n_population - direct.n_respondents)
                * (direct.n_population * augmented.estimate + 0.5e0) / (direct.n_population + 1e0)
                * (1e0 - (direct.n_population * augmented.estimate + 0.5e0) / (direct.n_population + 1e0))
        end as v_augmented_floor
    from direct
    left join augmented
        on direct.domain_level = augmented.domain_level
        and direct.wave = augmented.wave
        and direct.indicator = augmented.indicator
        {% for d in dims -%}
        and direct.{{ d }} is not distinct from augmented.{{ d }}
        {% endfor %}
    left join domain_allowance as da
        on direct.domain_level = da.domain_level
        and direct.wave = da.wave
        and direct.indicator = da.indicator
        {% for d in dims -%}
        and direct.{{ d }} is not distinct from da.{{ d }}
        {% endfor %}
    left join support
        on direct.cell_id = support.cell_id
        and direct.wave = support.wave
    left join cell_unit_variance as cuv
        on direct.cell_id = cuv.cell_id
        and direct.wave = cuv.wave
        and direct.indicator = cuv.indicator
    left join relvariance as rv
        on direct.wave = rv.wave
        and direct.indicator = rv.indicator
        {% for d in pool_by -%}
        and direct.{{ d }} = rv.{{ d }}
        {% endfor %}

),

{#- The direct variance of a margin mean from its cells: a domain of several cells is a sum over
    strata (the cells), sum_c (N_c / N_D) y_c, whose variance is sum_c (N_c / N_D)^2 V_c; with V_c
    the cell's own direct variance as the rule takes it (its se^2, raised by the generalized
    variance function and the completed cell's unit variance) this is the margin's variance with
    the cells' heavy tails counted, which a margin's own linearised SE, from the same respondents,
    cannot see (a 250+ cell whose largest units did not answer: docs/estimation.md). It is a floor
    under the margin's SE, as the GVF is under a cell's. Cells without respondents add nothing (no
    direct estimate of their own). -#}
{#- The same for the augmented estimate of a margin mean: sum_c (N_c / N_D)^2 M_c over its cells,
    M_c the cell's Rubin's T, and in a cell without a model part (the augmented estimate is then
    the respondents' Hajek mean, design based) at least the Hajek mean's generalized variance,
    rv_a q^2 (1 - n/N) / n, rv_a its unit relvariance T n / (1 - n/N) / q^2 pooled over such cells
    of the wave x indicator (x ss_direct_se_pool_by) with weights n - 1, as for the direct means.
    Without it a margin's augmented MSE kept the respondents' own SE of the Hajek mean where the
    direct one took the cells' (a 250+ cell's Hajek mean of its 20 small respondents, 1,127
    employees against a truth of 7,046 and a ratio estimate of 7,380), and the rule took the
    augmented estimate for it -#}
relvariance_augmented {{ surveysynth.cte_as() }} (

    select
        {% for d in pool_by -%}
        {{ d }},
        {% endfor -%}
        wave,
        indicator,
        {{ surveysynth.pooled_relvariance('augmented_se', 'augmented_estimate') }} as rv_pool
    from joined
    where domain_level = 'cell'
        and measure = 'mean'
        and model_share_augmented = 0
        and augmented_se is not null
        and augmented_estimate > 0
        and n_respondents >= 2
        and n_respondents < n_population
    group by {% for d in pool_by %}{{ d }}, {% endfor %}wave, indicator

),

cell_direct_var {{ surveysynth.cte_as() }} (

    select
        {% for d in dims -%}
        joined.{{ d }},
        {% endfor -%}
        joined.wave,
        joined.indicator,
        n_population,
        case when direct_estimate is not null and (direct_se is not null or v_direct_gvf_any is not null)
            then greatest(coalesce(direct_se * direct_se, 0e0), coalesce(v_direct_gvf_any, 0e0),
                coalesce(v_direct_model, 0e0))
        end as v_cell,
        case when augmented_se is not null then greatest(augmented_se * augmented_se,
            case when model_share_augmented = 0 and n_respondents >= 1 and n_respondents < n_population
                then coalesce(rva.rv_pool * augmented_estimate * augmented_estimate
                    * (1e0 - cast(n_respondents as {{ dbl }}) / n_population) / n_respondents, 0e0)
                else 0e0 end)
        end as v_cell_augmented
    from joined
    left join relvariance_augmented as rva
        on joined.wave = rva.wave
        and joined.indicator = rva.indicator
        {% for d in pool_by -%}
        and joined.{{ d }} = rva.{{ d }}
        {% endfor %}
    where domain_level = 'cell'
        and measure = 'mean'

),

{% for dom in domains if dom.level != 'cell' -%}
cells_var_{{ loop.index }} {{ surveysynth.cte_as() }} (

    select
        {% for d in dims -%}
        {% if d in dom.dims %}{{ d }}{% else %}cast(null as {{ dbt.type_string() }}){% endif %} as {{ d }},
        {% endfor -%}
        {{ surveysynth.sql_literal(dom.level) }} as domain_level,
        wave,
        indicator,
        {% call surveysynth.dagg() %}n_population * n_population * v_cell{% endcall %} as nnv,
        {% call surveysynth.dagg() %}n_population * n_population * v_cell_augmented{% endcall %} as nnv_augmented
    from cell_direct_var
    group by {% for d in dom.dims %}{{ d }}, {% endfor %}wave, indicator

),

{% endfor -%}

direct_cells_var {{ surveysynth.cte_as() }} (

    {% for dom in domains if dom.level != 'cell' -%}
    select * from cells_var_{{ loop.index }}
    {{ 'union all' if not loop.last }}
    {% endfor %}

),

{#- t quantiles of every df in use (null df: the normal quantile) -#}
dfs {{ surveysynth.cte_as() }} (

    select distinct direct_df as df from joined
    union
    select distinct augmented_df as df from joined

),

t_table {{ surveysynth.cte_as() }} (

    select df, es_tq as tq from ({{ surveysynth._t_quantile_select('dfs', 'df', 0.05, z) }}) as tq

),

{#- the direct variance used to choose: the largest of its estimate se^2, the variance the
    completed cell's unit variance implies (cells), and for a share the variance its Wilson interval
    implies ((hi - lo) / 2z)^2 (so that p = 0 or 1 with se = 0 is not taken as exact) -#}
with_t {{ surveysynth.cte_as() }} (

    select
        joined.*,
        td.tq as t_direct,
        ta.tq as t_augmented,
        case
            when v_direct_gvf > direct_se * direct_se then sqrt(v_direct_gvf)
            when dcv.nnv / (joined.n_population * joined.n_population) > direct_se * direct_se
                then sqrt(dcv.nnv / (joined.n_population * joined.n_population))
            else direct_se
        end as direct_se_pub,
        dcv.nnv_augmented
    from joined
    left join direct_cells_var as dcv
        on joined.domain_level <> 'cell'
        and joined.measure = 'mean'
        and joined.domain_level = dcv.domain_level
        and joined.wave = dcv.wave
        and joined.indicator = dcv.indicator
        {% for d in dims -%}
        and joined.{{ d }} is not distinct from dcv.{{ d }}
        {% endfor -%}
    left join t_table as td
        on joined.direct_df is not distinct from td.df
    left join t_table as ta
        on joined.augmented_df is not distinct from ta.df

),

floored {{ surveysynth.cte_as() }} (

    select
        with_t.*,
        -- the direct interval with the published SE (recomputed where the GVF raised it)
        case
            when direct_se_pub = direct_se or direct_se is null then direct_ci_low
            when direct_interval_method = 'log_t' then direct_estimate * exp(-least(t_direct * direct_se_pub / direct_estimate, 700e0))
            else direct_estimate - t_direct * direct_se_pub
        end as direct_lo_pub,
        case
            when direct_se_pub = direct_se or direct_se is null then direct_ci_high
            when direct_interval_method = 'log_t' then direct_estimate * exp(least(t_direct * direct_se_pub / direct_estimate, 700e0))
            else direct_estimate + t_direct * direct_se_pub
        end as direct_hi_pub,
        case when direct_se is not null then greatest(
            direct_se_pub * direct_se_pub,
            coalesce(case when domain_level = 'cell' then v_direct_model end, 0e0),
            case when measure = 'share' then power((direct_ci_high - direct_ci_low) / (2e0 * {{ z }}e0), 2) else 0e0 end
        ) end as v_direct,
        -- no stated error without Rubin's T (m = 1 has no between-implicate variance): greatest()
        -- skips a null, and the allowance alone would have read as the whole error
        case when augmented_se is not null then
            greatest(augmented_se * augmented_se, coalesce(v_augmented_floor, 0e0),
                coalesce(nnv_augmented / (n_population * n_population), 0e0)) + bias_allowance_var
        end as mse_augmented_model
    from with_t

),

{#- A margin's augmented MSE is at least what its distance from the direct estimate implies:
    E (a - d)^2 = MSE_a + V_d - 2 cov(e_a, e_d), and the two errors do not correlate negatively (they
    count the same respondents), so MSE_a >= E (a - d)^2 - V_d, estimated by (a - d)^2 - v_d (the
    synthetic estimator's MSE estimate of Gonzalez and Waksberg, Rao & Molina 2015, 3.2.5, as a
    floor). In a margin the direct estimate is design consistent and its variance (with the cells'
    above) is honest, and it carries what the model part cannot see: on the demo the augmented mean
    of a supported cell is the Hajek mean of its respondents, without the register's total that the
    direct ratio estimate uses (sector admin_support x 250+: 973 employees against 2,871 and a
    truth of 2,469, stated SE 66). Cells keep their rule (their direct estimate is too noisy for
    it; the composite weighs the two) -#}
floored_margins {{ surveysynth.cte_as() }} (

    select
        floored.*,
        case
            when domain_level <> 'cell' and measure = 'mean' and mse_augmented_model is not null
                and direct_estimate is not null and v_direct is not null
                then greatest(mse_augmented_model,
                    (augmented_estimate - direct_estimate) * (augmented_estimate - direct_estimate) - v_direct)
            else mse_augmented_model
        end as mse_augmented
    from floored

),

{#- df-penalised error variances: (t_df / z)^2 v -#}
penalised {{ surveysynth.cte_as() }} (

    select
        floored_margins.*,
        power(t_direct / {{ z }}e0, 2) * v_direct as v_direct_pen,
        power(t_augmented / {{ z }}e0, 2) * mse_augmented as mse_augmented_pen,
        {{ surveysynth.composite_corr('error_corr', 'model_share_augmented', 'v_direct', 'mse_augmented') }} as corr_composite
    from floored_margins

),

{#- the composite's weight on the direct estimate (cells with a model part and both estimates), and
    the method (macros/estimation/method_rule.sql) -#}
weighted {{ surveysynth.cte_as() }} (

    select
        penalised.*,
        {{ surveysynth.composite_phi('v_direct_pen', 'mse_augmented_pen', 'corr_composite',
            "domain_level = 'cell' and model_share_augmented > 0") }} as phi_opt
    from penalised

),

decided {{ surveysynth.cte_as() }} (

    select
        weighted.*,
        {{ surveysynth.method_choice(
            'case when direct_estimate is not null then v_direct_pen end',
            'case when augmented_estimate is not null then mse_augmented_pen end',
            'phi_opt', 'model_share_augmented') }} as chosen
    from weighted

),

published {{ surveysynth.cte_as() }} (

    select
        decided.*,
        case chosen when 'direct' then 1e0 when 'augmented' then 0e0 when 'composite' then phi_opt end as phi,
        case chosen
            when 'direct' then direct_estimate
            when 'augmented' then augmented_estimate
            when 'composite' then phi_opt * direct_estimate + (1e0 - phi_opt) * augmented_estimate
        end as est,
        -- root estimated MSE (not penalised) ...
        case chosen
            when 'direct' then sqrt(v_direct)
            when 'augmented' then sqrt(mse_augmented)
            when 'composite' then sqrt(greatest(
                {{ surveysynth.composite_mse('phi_opt', 'v_direct', 'mse_augmented', 'corr_composite') }}, 0e0))
        end as rmse,
        -- ... and the penalised one the composite's interval uses with z
        case when chosen = 'composite' then sqrt(greatest(
            {{ surveysynth.composite_mse('phi_opt', 'v_direct_pen', 'mse_augmented_pen', 'corr_composite') }}, 0e0))
        end as rmse_pen
    from decided

),

{#- no half step: with it these intervals, whose MSE carries the back-test's allowance, over-covered
    on three real populations (docs/estimation.md, "The half step") -#}
{%- set aug_sh = surveysynth.share_interval_elogit('est', 'rmse', 't_augmented', 'n_population', half_step=false) -%}
{%- set com_sh = surveysynth.share_interval_elogit('est', 'rmse_pen', z ~ 'e0', 'n_population', half_step=false) %}
intervals {{ surveysynth.cte_as() }} (

    select
        published.*,
        case chosen
            when 'direct' then direct_lo_pub
            when 'augmented' then case when measure = 'share' then {{ aug_sh.lo }} else est - t_augmented * rmse end
            when 'composite' then case when measure = 'share' then {{ com_sh.lo }} else est - {{ z }}e0 * rmse_pen end
        end as lo,
        case chosen
            when 'direct' then direct_hi_pub
            when 'augmented' then case when measure = 'share' then {{ aug_sh.hi }} else est + t_augmented * rmse end
            when 'composite' then case when measure = 'share' then {{ com_sh.hi }} else est + {{ z }}e0 * rmse_pen end
        end as hi,
        case chosen
            when 'direct' then direct_interval_method || case when direct_se_pub > direct_se then '_gvf' else '' end
            when 'augmented' then case when measure = 'share' then 'logit_t' else 't' end
            when 'composite' then case when measure = 'share' then 'logit_z_penalised' else 'z_penalised' end
        end as interval_method_
    from published

),

{#- precision: the interval's half-width in SE units, relative to |estimate| for means, absolute
    for shares, against ss_grade_cv_* and ss_grade_share_se_* -#}
graded {{ surveysynth.cte_as() }} (

    select
        intervals.*,
        case
            when measure = 'share' then (hi - lo) / (2e0 * {{ z }}e0)
            when est <> 0 then (hi - lo) / (2e0 * {{ z }}e0 * abs(est))
        end as precision_value,
        case
            when chosen = 'none' or hi is null then 'not_published'
            when measure = 'share' and (hi - lo) / (2e0 * {{ z }}e0) < {{ share_good }} then 'good'
            when measure = 'share' and (hi - lo) / (2e0 * {{ z }}e0) < {{ share_caution }} then 'caution'
            when measure = 'share' then 'not_published'
            when est = 0 then 'not_published'
            when (hi - lo) / (2e0 * {{ z }}e0 * abs(est)) < {{ good }} then 'good'
            when (hi - lo) / (2e0 * {{ z }}e0 * abs(est)) < {{ caution }} then 'caution'
            else 'not_published'
        end as grade_
    from intervals

),

labelled {{ surveysynth.cte_as() }} (

    select
        graded.*,
        case when grade_ = 'not_published' then 'suppressed' else chosen end as method_,
        case chosen
            when 'direct' then 0e0
            when 'augmented' then model_share_augmented
            when 'composite' then (1e0 - phi_opt) * model_share_augmented
        end as model_share_
    from graded

),

final {{ surveysynth.cte_as() }} (

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

        -- the published estimate
        method_ as method,
        case when method_ <> 'suppressed' then est end as estimate,
        case when method_ <> 'suppressed' then rmse end as se,
        case when method_ <> 'suppressed' then lo end as ci_low,
        case when method_ <> 'suppressed' then hi end as ci_high,
        case when method_ <> 'suppressed' then interval_method_ end as interval_method,
        case when method_ <> 'suppressed' then phi end as phi,
        grade_ as grade,
        precision_value,

        -- how much rests on the model
        case when method_ <> 'suppressed' then model_share_ end as model_share,
        case
            when n_respondents = 0 then 'model_based'
            when method_ = 'suppressed' then null
            when model_share_ = 0 then 'design_based'
            -- a share of exactly one half (4 of 8 units) is a sum of weights over another, which
            -- engines round differently: compared with a tolerance, it is model based on every one
            when model_share_ >= 0.5e0 - 1e-9 then 'model_based'
            else 'model_assisted'
        end as basis,
        case
            when chosen = 'none' then {{ dbt.concat(["'no estimate: '",
                "case when n_respondents < 2 then 'fewer than 2 item respondents and ' else '' end",
                "case when n_synthetic = 0 then 'no synthetic records' else 'no augmented variance' end"]) }}
            else {{ dbt.concat([
                "case chosen when 'direct' then 'direct' when 'augmented' then 'augmented' else 'composite (phi = ' || " ~ surveysynth.number_as_text('phi_opt', 3) ~ " || ')' end",
                "' has the smallest estimated error: RMSE direct '", "coalesce(" ~ surveysynth.number_as_text('sqrt(v_direct_pen)', 4) ~ ", 'n/a')",
                "', augmented '", "coalesce(" ~ surveysynth.number_as_text('sqrt(mse_augmented_pen)', 4) ~ ", 'n/a')",
                "' (df-penalised; augmented bias allowance '", "coalesce(" ~ surveysynth.number_as_text('sqrt(bias_allowance_var)', 4) ~ ", '0')",
                "case when n_unmeasured > 0 then ', not measured by the back-test' else '' end",
                "'); '",
                "case grade_ when 'not_published' then 'interval too wide to publish (ss_grade_*)' else 'grade ' || grade_ end"]) }}
        end as reason,
        cast(n_respondents as {{ dbt.type_bigint() }}) as n_respondents,
        cast(n_synthetic as {{ dbt.type_bigint() }}) as n_synthetic,
        n_population,

        -- direct estimate alongside
        direct_estimate,
        direct_se,
        direct_ci_low,
        direct_ci_high,
        direct_df,
        direct_grade,

        -- augmented estimate alongside (Rubin's rule over m implicates, Barnard-Rubin df)
        augmented_estimate,
        augmented_se,
        augmented_ci_low,
        augmented_ci_high,
        augmented_df,
        augmented_cv,
        m,
        between_var,
        within_var,
        combining_rule,
        model_share_augmented,
        sqrt(bias_allowance_var) as augmented_bias_allowance,
        sqrt(mse_augmented) as augmented_rmse
    from labelled

)

select * from final
