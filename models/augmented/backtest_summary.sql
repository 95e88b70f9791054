{{ surveysynth.validate_config() }}
{{ config(enabled=var('ss_backtest_enabled', true)) }}
{#- The back-test gate, one row per metric: value, threshold (a var), passed. Over the rows of
    backtest_results where both estimates exist; the reference is the true value when every row has
    one (ss_backtest_truth), else the full-sample direct estimate. Errors are divided by the standard
    deviation of the reference over the back-test rows of their indicator (the same divisor for both
    methods). A full-sample reference is an estimate too: a row is covered when
    |estimate - reference| <= sqrt(h^2 + (1.96 se_ref)^2), h the interval's half-width.

      augmented_rmse_ratio   RMSE(augmented) / RMSE(direct)                <= ss_backtest_max_rmse_ratio
      augmented_coverage     share of rows whose reference the augmented   >= ss_backtest_min_coverage
                             95% interval covers                           <= ss_backtest_max_coverage
      augmented_abs_bias     |mean scaled error| of the augmented          <= ss_backtest_max_abs_bias
      interval_width_ratio   mean augmented / mean direct interval width   <= ss_backtest_max_width_ratio
    plus information rows without a threshold. The data test backtest_thresholds_met fails the
    build on any metric that misses its threshold or could not be computed. -#}
{%- set z975 = 1.959963984540054 -%}
{%- set t = surveysynth.as_text -%}

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

    select indicator, stddev_samp(ref_value) as sd
    from referenced
    where ref_value is not null
    group by indicator

),

scored as (

    select
        (referenced.augmented_estimate - referenced.ref_value) / scales.sd as ea,
        (referenced.direct_estimate - referenced.ref_value) / scales.sd as ed,
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
        (referenced.direct_ci_high - referenced.direct_ci_low) / scales.sd as width_d
    from referenced
    inner join scales
        on referenced.indicator = scales.indicator
    where referenced.ref_value is not null
        and scales.sd > 0

),

agg as (

    select
        count(*) as n_rows,
        sqrt(avg(ea * ea)) as rmse_a,
        sqrt(avg(ed * ed)) as rmse_d,
        avg(covered_a) as coverage_a,
        avg(covered_d) as coverage_d,
        abs(avg(ea)) as abs_bias,
        avg(width_a) as width_a,
        avg(width_d) as width_d
    from scored

),

metrics as (

    select 1 as ord, 'augmented_rmse_ratio' as metric, '<=' as direction,
        case when rmse_d > 0 then rmse_a / rmse_d end as value,
        {{ var('ss_backtest_max_rmse_ratio') }}e0 as threshold, 'ss_backtest_max_rmse_ratio' as threshold_var
    from agg
    union all
    select 2, 'augmented_coverage', '>=', coverage_a, {{ var('ss_backtest_min_coverage') }}e0, 'ss_backtest_min_coverage' from agg
    union all
    select 3, 'augmented_coverage', '<=', coverage_a, {{ var('ss_backtest_max_coverage') }}e0, 'ss_backtest_max_coverage' from agg
    union all
    select 4, 'augmented_abs_bias', '<=', abs_bias, {{ var('ss_backtest_max_abs_bias') }}e0, 'ss_backtest_max_abs_bias' from agg
    union all
    select 5, 'interval_width_ratio', '<=', case when width_d > 0 then width_a / width_d end,
        {{ var('ss_backtest_max_width_ratio') }}e0, 'ss_backtest_max_width_ratio' from agg
    union all
    select 6, 'n_rows', cast(null as {{ dbt.type_string() }}), cast(n_rows as {{ surveysynth.type_double() }}),
        cast(null as {{ surveysynth.type_double() }}), cast(null as {{ dbt.type_string() }}) from agg
    union all
    select 7, 'augmented_rmse', null, rmse_a, null, null from agg
    union all
    select 8, 'direct_rmse', null, rmse_d, null, null from agg
    union all
    select 9, 'direct_coverage', null, coverage_d, null, null from agg
    union all
    select 10, 'augmented_mean_width', null, width_a, null, null from agg
    union all
    select 11, 'direct_mean_width', null, width_d, null, null from agg

),

final as (

    select
        metrics.ord,
        metrics.metric,
        metrics.direction,
        metrics.value,
        metrics.threshold,
        metrics.threshold_var,
        case
            when metrics.threshold is null then null
            when metrics.value is null then false
            when metrics.direction = '<=' then metrics.value <= metrics.threshold
            else metrics.value >= metrics.threshold
        end as passed,
        case when flags.n_truth = flags.n_all and flags.n_all > 0 then 'truth' else 'full_sample' end as reference,
        flags.sabotage,
        case
            when metrics.threshold is null then 'information'
            when metrics.value is null then {{ dbt.concat(["'back-test metric '", "metrics.metric",
                "' could not be computed: no back-test rows with both estimates (no cell supported in every wave with more respondents than the largest of ss_backtest_sizes?). Lower ss_backtest_sizes or set ss_backtest_enabled: false'"]) }}
            else {{ dbt.concat(["'back-test metric '", "metrics.metric", "' = '", surveysynth.number_as_text('metrics.value', 4),
                "', must be '", "metrics.direction", "' '", surveysynth.number_as_text('metrics.threshold', 4),
                "' (var '", "metrics.threshold_var", "', reference '",
                "case when flags.n_truth = flags.n_all and flags.n_all > 0 then 'truth' else 'full_sample' end",
                "', sabotage '", "coalesce(flags.sabotage, 'none')", "')'"]) }}
        end as message
    from metrics
    cross join flags

)

select * from final
