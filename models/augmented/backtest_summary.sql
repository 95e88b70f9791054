{{ surveysynth.validate_config() }}
{{ config(enabled=var('ss_backtest_enabled', true)) }}
{#- The back-test gate, one row per metric: value, threshold (a var), the one-sided confidence bound
    that is judged, status and passed. Over the rows of backtest_results where both estimates exist;
    the reference is the true value when every row has one (ss_backtest_truth), else the full-sample
    direct estimate. Errors are divided by the standard deviation of the reference over the back-test
    rows of their indicator (the same divisor for both methods).

    A full-sample reference is an estimate too, and real users have no truth table, so its variance
    v = se_ref^2 is taken out of the errors:
      direct     the thinned respondents are a random subset of the full sample, so
                 E(d - f)^2 = MSE(d) - v, and MSE(d) = mean((d - f)^2) + mean(v);
      augmented  made from the thinned respondents and the model, nearly independent of the rest of
                 the full sample, so E(a - f)^2 = MSE(a) + v - 2 cov(a, f) <= MSE(a) + v, and
                 mean((a - f)^2) - mean(v) is a lower bound of MSE(a) (lenient: cov >= 0);
      coverage   a row is covered when |a - ref| <= sqrt(h^2 + (1.96 se_ref)^2), h the interval's
                 half-width: the interval of the difference of two independent estimates.

    Each metric is an average over rows that share cells (one synthesizer draw per cell), so its
    standard error is the cluster (cell) linearisation, and the gate fails only when the metric is
    beyond its threshold by more than chance: the one-sided bound at ss_gate_alpha / 5 (normal) lies
    beyond it. With fewer than ss_gate_min_rows cell x wave rows or 5 cells the gate reports
    not_assessable (blocking only with ss_not_assessable_blocks).

      augmented_rmse_ratio   RMSE(augmented) / RMSE(direct)      lower bound  <= ss_backtest_max_rmse_ratio
      augmented_coverage     share of rows whose reference the   upper bound  >= ss_backtest_min_coverage
                             augmented 95% interval covers       lower bound  <= ss_backtest_max_coverage
      augmented_abs_bias     |mean scaled error|                 lower bound  <= ss_backtest_max_abs_bias
      interval_width_ratio   mean augmented / direct width       lower bound  <= ss_backtest_max_width_ratio
    plus information rows without a threshold. The data test backtest_thresholds_met fails the
    build on any metric row not passed. -#}
{%- set z975 = 1.959963984540054 -%}
{%- set alpha = surveysynth.gate_alpha() -%}
{%- set z = surveysynth.normal_quantile(1 - alpha / 5) -%}
{%- set min_rows = var('ss_gate_min_rows', 20) -%}
{%- set blocks = var('ss_not_assessable_blocks', false) -%}

with results as (

    select * from {{ ref('backtest_results') }}
    where direct_estimate is not null
        and augmented_estimate is not null

),

flags as (

    select
        count(*) as n_all,
        count(true_value) as n_truth,
        max(sabotage) as sabotage
    from results

),

referenced as (

    select
        results.*,
        case when flags.n_truth = flags.n_all then results.true_value else results.full_sample_value end as ref_value,
        case when flags.n_truth = flags.n_all then 0e0 else coalesce(results.full_sample_se, 0e0) end as ref_se
    from results
    cross join flags

),

scales as (

    select indicator, {% call surveysynth.dagg('stddev_samp') %}ref_value{% endcall %} as sd
    from referenced
    where ref_value is not null
    group by indicator

),

scored as (

    select
        referenced.cell_id,
        referenced.wave,
        (referenced.augmented_estimate - referenced.ref_value) / scales.sd as ea,
        (referenced.direct_estimate - referenced.ref_value) / scales.sd as ed,
        power(referenced.ref_se / scales.sd, 2) as vref,
        case
            when abs(referenced.augmented_estimate - referenced.ref_value)
                <= sqrt(power(coalesce(referenced.augmented_ci_high - referenced.augmented_ci_low, 0e0) / 2e0, 2)
                    + power({{ z975 }}e0 * referenced.ref_se, 2)) + 1e-12 then 1e0
            else 0e0
        end as covered_a,
        case
            when referenced.direct_ci_high is not null
                and abs(referenced.direct_estimate - referenced.ref_value)
                <= sqrt(power((referenced.direct_ci_high - referenced.direct_ci_low) / 2e0, 2)
                    + power({{ z975 }}e0 * referenced.ref_se, 2)) + 1e-12 then 1e0
            else 0e0
        end as covered_d,
        (referenced.augmented_ci_high - referenced.augmented_ci_low) / scales.sd as width_a,
        coalesce((referenced.direct_ci_high - referenced.direct_ci_low) / scales.sd, 0e0) as width_d
    from referenced
    inner join scales
        on referenced.indicator = scales.indicator
    where referenced.ref_value is not null
        and scales.sd > 0

),

{#- per cell (the cluster): sums of each metric's numerator and denominator -#}
clusters as (

    select
        cell_id,
        count(*) as n,
        {% call surveysynth.dagg() %}ea * ea - vref{% endcall %} as a2,
        {% call surveysynth.dagg() %}ed * ed + vref{% endcall %} as d2,
        {% call surveysynth.dagg() %}ea * ea{% endcall %} as a2_raw,
        {% call surveysynth.dagg() %}ed * ed{% endcall %} as d2_raw,
        {% call surveysynth.dagg() %}ea{% endcall %} as s_ea,
        {% call surveysynth.dagg() %}covered_a{% endcall %} as s_cov,
        {% call surveysynth.dagg() %}covered_d{% endcall %} as s_covd,
        {% call surveysynth.dagg() %}width_a{% endcall %} as s_wa,
        {% call surveysynth.dagg() %}width_d{% endcall %} as s_wd
    from scored
    group by cell_id

),

agg as (

    select
        count(*) as n_clusters,
        {% call surveysynth.dagg() %}n{% endcall %} as n_rows,
        {% call surveysynth.dagg() %}a2{% endcall %} / {% call surveysynth.dagg() %}n{% endcall %} as mse_a,
        {% call surveysynth.dagg() %}d2{% endcall %} / {% call surveysynth.dagg() %}n{% endcall %} as mse_d,
        sqrt({% call surveysynth.dagg() %}a2_raw{% endcall %} / {% call surveysynth.dagg() %}n{% endcall %}) as rmse_a_raw,
        sqrt({% call surveysynth.dagg() %}d2_raw{% endcall %} / {% call surveysynth.dagg() %}n{% endcall %}) as rmse_d_raw,
        {% call surveysynth.dagg() %}s_ea{% endcall %} / {% call surveysynth.dagg() %}n{% endcall %} as bias,
        {% call surveysynth.dagg() %}s_cov{% endcall %} / {% call surveysynth.dagg() %}n{% endcall %} as coverage_a,
        {% call surveysynth.dagg() %}s_covd{% endcall %} / {% call surveysynth.dagg() %}n{% endcall %} as coverage_d,
        {% call surveysynth.dagg() %}s_wa{% endcall %} / {% call surveysynth.dagg() %}n{% endcall %} as width_a,
        {% call surveysynth.dagg() %}s_wd{% endcall %} / {% call surveysynth.dagg() %}n{% endcall %} as width_d
    from clusters

),

cell_waves as (

    select count(*) as n_cell_waves
    from (select distinct cell_id, wave from scored) as cw

),

{#- cluster linearisation: var(sum_c x_c / sum_c n_c) = C / (C - 1) sum_c (x_c - mean n_c)^2 / N^2,
    and for a ratio of two such means the same with x_c - ratio y_c -#}
variances as (

    select
        agg.n_clusters * 1e0 / nullif(agg.n_clusters - 1, 0)
            * {% call surveysynth.dagg() %}power(clusters.a2 - (agg.mse_a / nullif(agg.mse_d, 0)) * clusters.d2, 2){% endcall %}
            / power(agg.mse_d * agg.n_rows, 2) as var_r2,
        agg.n_clusters * 1e0 / nullif(agg.n_clusters - 1, 0)
            * {% call surveysynth.dagg() %}power(clusters.s_cov - agg.coverage_a * clusters.n, 2){% endcall %} / power(agg.n_rows, 2) as var_cov,
        agg.n_clusters * 1e0 / nullif(agg.n_clusters - 1, 0)
            * {% call surveysynth.dagg() %}power(clusters.s_ea - agg.bias * clusters.n, 2){% endcall %} / power(agg.n_rows, 2) as var_bias,
        agg.n_clusters * 1e0 / nullif(agg.n_clusters - 1, 0)
            * {% call surveysynth.dagg() %}power(clusters.s_wa - (agg.width_a / nullif(agg.width_d, 0)) * clusters.s_wd, 2){% endcall %}
            / power(agg.width_d * agg.n_rows, 2) as var_wr
    from agg
    left join clusters
        on 1 = 1
    group by agg.n_clusters, agg.n_rows, agg.mse_a, agg.mse_d, agg.coverage_a, agg.bias, agg.width_a, agg.width_d

),

stats as (

    select
        agg.*,
        cell_waves.n_cell_waves,
        case when agg.mse_d > 0 then sqrt(greatest(agg.mse_a, 0e0) / agg.mse_d) end as rmse_ratio,
        case when agg.mse_a > 0 and agg.mse_d > 0
            then sqrt(variances.var_r2) / (2e0 * sqrt(agg.mse_a / agg.mse_d)) else 0e0 end as se_rmse_ratio,
        sqrt(variances.var_cov) as se_cov,
        sqrt(variances.var_bias) as se_bias,
        case when agg.width_d > 0 then agg.width_a / agg.width_d end as width_ratio,
        sqrt(variances.var_wr) as se_wr,
        case
            when coalesce(cell_waves.n_cell_waves, 0) < {{ min_rows }} or coalesce(agg.n_clusters, 0) < 5 then 1
            else 0
        end as not_assessable
    from agg
    cross join cell_waves
    cross join variances

),

metrics as (

    select 1 as ord, 'augmented_rmse_ratio' as metric, '<=' as direction, rmse_ratio as value,
        rmse_ratio - {{ z }} * se_rmse_ratio as bound,
        {{ var('ss_backtest_max_rmse_ratio') }}e0 as threshold, 'ss_backtest_max_rmse_ratio' as threshold_var
    from stats
    union all
    select 2, 'augmented_coverage', '>=', coverage_a, coverage_a + {{ z }} * se_cov,
        {{ var('ss_backtest_min_coverage') }}e0, 'ss_backtest_min_coverage' from stats
    union all
    select 3, 'augmented_coverage', '<=', coverage_a, coverage_a - {{ z }} * se_cov,
        {{ var('ss_backtest_max_coverage') }}e0, 'ss_backtest_max_coverage' from stats
    union all
    select 4, 'augmented_abs_bias', '<=', abs(bias), abs(bias) - {{ z }} * se_bias,
        {{ var('ss_backtest_max_abs_bias') }}e0, 'ss_backtest_max_abs_bias' from stats
    union all
    select 5, 'interval_width_ratio', '<=', width_ratio, width_ratio - {{ z }} * se_wr,
        {{ var('ss_backtest_max_width_ratio') }}e0, 'ss_backtest_max_width_ratio' from stats
    union all
    select 6, 'n_rows', cast(null as {{ dbt.type_string() }}), cast(n_rows as {{ surveysynth.type_double() }}),
        cast(null as {{ surveysynth.type_double() }}), cast(null as {{ surveysynth.type_double() }}),
        cast(null as {{ dbt.type_string() }}) from stats
    union all
    select 7, 'n_cells', null, cast(n_clusters as {{ surveysynth.type_double() }}), null, null, null from stats
    union all
    select 8, 'augmented_rmse', null, sqrt(greatest(mse_a, 0e0)), null, null, null from stats
    union all
    select 9, 'direct_rmse', null, sqrt(mse_d), null, null, null from stats
    union all
    select 10, 'augmented_rmse_vs_reference', null, rmse_a_raw, null, null, null from stats
    union all
    select 11, 'direct_rmse_vs_reference', null, rmse_d_raw, null, null, null from stats
    union all
    select 12, 'direct_coverage', null, coverage_d, null, null, null from stats
    union all
    select 13, 'augmented_mean_width', null, width_a, null, null, null from stats
    union all
    select 14, 'direct_mean_width', null, width_d, null, null, null from stats

),

judged as (

    select
        metrics.*,
        stats.not_assessable,
        stats.n_cell_waves,
        stats.n_clusters,
        case
            when metrics.threshold is null then 'report'
            when stats.not_assessable = 1 then 'not_assessable'
            when metrics.value is null or metrics.bound is null then 'fail'
            when metrics.direction = '<=' and metrics.bound > metrics.threshold then 'fail'
            when metrics.direction = '>=' and metrics.bound < metrics.threshold then 'fail'
            else 'pass'
        end as status
    from metrics
    cross join stats

),

final as (

    select
        judged.ord,
        judged.metric,
        judged.direction,
        judged.value,
        judged.bound,
        judged.threshold,
        judged.threshold_var,
        judged.status,
        case
            when judged.status = 'fail' then true
            when judged.status = 'not_assessable' then {{ 'true' if blocks else 'false' }}
            else false
        end as blocks_release,
        case
            when judged.status = 'report' then null
            when judged.status = 'fail' then false
            when judged.status = 'not_assessable' then {{ 'false' if blocks else 'true' }}
            else true
        end as passed,
        case when flags.n_truth = flags.n_all and flags.n_all > 0 then 'truth' else 'full_sample' end as reference,
        flags.sabotage,
        case
            when judged.status = 'report' then 'information'
            when judged.status = 'not_assessable' then {{ dbt.concat(["'back-test metric '", "judged.metric",
                "' not assessable: '", surveysynth.as_text('coalesce(judged.n_cell_waves, 0)'), "' thinned cell x wave rows in '",
                surveysynth.as_text('coalesce(judged.n_clusters, 0)'), "' cells, fewer than ss_gate_min_rows = " ~ min_rows
                ~ " rows or 5 cells (the back-test thins cells supported in every wave with more respondents than the largest of ss_backtest_sizes; "
                ~ "a survey this small has too few)'"]) }}
            else {{ dbt.concat(["'back-test metric '", "judged.metric", "' = '", surveysynth.number_as_text('judged.value', 4),
                "', one-sided bound '", surveysynth.number_as_text('judged.bound', 4), "' at ss_gate_alpha / 5, must be '",
                "judged.direction", "' '", surveysynth.number_as_text('judged.threshold', 4),
                "' (var '", "judged.threshold_var", "', reference '",
                "case when flags.n_truth = flags.n_all and flags.n_all > 0 then 'truth' else 'full_sample' end",
                "', sabotage '", "coalesce(flags.sabotage, 'none')", "')'"]) }}
        end as message
    from judged
    cross join flags

)

select * from final
