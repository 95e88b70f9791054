{{ surveysynth.validate_config() }}
{#- What the back-test measured about the model part of the augmented estimates, per indicator x
    thinned size (the respondents a completed cell kept): the allowance for model bias that
    domain_estimates adds to Rubin's variance when it chooses a method by estimated MSE
    (docs/estimation.md, "Method by estimated error").

    Per back-test row r (a supported cell thinned to n_r respondents, completed by the synthesizer):
    s_r = (N_r - n_r) / N_r, the share of the cell the synthetic records stand for; e_r the error of
    the augmented estimate against the reference (the truth where every row has one, else the
    full-sample estimate, whose variance v_ref is then subtracted); T_r = augmented_se^2. Errors
    are absolute for shares and relative to |augmented estimate| for means (scale), so that cells of
    different size pool. The scale is the augmented estimate's, as domain_estimates applies the
    allowance (times |augmented estimate|), and because a full-sample reference of 2 or 3 units is
    noisy: E[(a - f) / |f|] > 0 for an unbiased a when f is noisy (1/f is convex), so scaling by
    the reference read its noise as bias (EU-SILC income: a "bias" of 4-8% of the mean, against
    0.2% measured against the truth). Then, over the rows of an indicator x size:
      bias_mean    mean(e_r / s_r), shrunk for its own noise: sign(b) sqrt(max(0, b^2 - var(e/s) / n)),
                   b the raw mean (bias_raw): the systematic error of the model part per unit of
                   model share (b^2 alone overstates the squared bias by var / n, much over the
                   few rows of a survey with few supported cells)
      excess_ms    max(0, mean((e_r^2 - T_r - v_ref) / s_r^2)): the squared error of the model
                   part beyond what Rubin's variance already counts, per unit of model share^2
      excess_var   max(0, excess_ms - bias_mean^2): the part of it that varies between cells
      error_corr   correlation of the augmented and the direct errors (the two share the cell's
                   respondents), clipped to [0, 0.95]
    n_cells counts the distinct cells behind a row: domain_estimates uses an indicator x size
    measured on 5 cells or more only (the back-test gate's least), since the rows of one cell share
    its error and a single cell's error is not an allowance (EU-SILC: one supported cell gave a
    "bias" of 25% of the mean).
    With ss_backtest_enabled false there is nothing measured: the model has no rows and
    domain_estimates says so in its reason column. -#}
{%- set enabled = var('ss_backtest_enabled', true) %}

{% if enabled -%}
with results as (

    select * from {{ ref('backtest_results') }}
    where augmented_estimate is not null
        and augmented_se is not null
        and n_population > n_thinned

),

flags as (

    select count(*) as n_all, count(true_value) as n_truth from results

),

scored as (

    select
        results.indicator,
        results.measure,
        results.cell_id,
        cast(results.n_thinned as {{ dbt.type_bigint() }}) as n_thinned,
        cast(results.n_population - results.n_thinned as {{ surveysynth.type_double() }}) / results.n_population as s,
        case when flags.n_truth = flags.n_all then results.true_value else results.full_sample_value end as ref_value,
        case when flags.n_truth = flags.n_all then 0e0 else coalesce(results.full_sample_se, 0e0) end as ref_se,
        results.augmented_estimate,
        results.augmented_se,
        results.direct_estimate
    from results
    cross join flags

),

scaled as (

    select
        indicator,
        measure,
        cell_id,
        n_thinned,
        s,
        case when measure = 'share' then 1e0 else abs(augmented_estimate) end as scale,
        augmented_estimate - ref_value as ea,
        direct_estimate - ref_value as ed,
        augmented_se * augmented_se as t_var,
        ref_se * ref_se as ref_var
    from scored
    where ref_value is not null
        and s > 0

),

rows_ as (

    select
        indicator,
        measure,
        cell_id,
        n_thinned,
        s,
        ea / scale as e,
        ed / scale as d,
        t_var / (scale * scale) as t_var,
        ref_var / (scale * scale) as ref_var
    from scaled
    where scale > 0

),

moments as (

    select
        indicator,
        max(measure) as measure,
        n_thinned,
        count(*) as n_rows,
        count(distinct cell_id) as n_cells,
        avg(s) as mean_model_share,
        avg(e / s) as bias_raw,
        coalesce(var_samp(e / s), 0e0) / count(*) as bias_raw_var,
        greatest(avg((e * e - t_var - ref_var) / (s * s)), 0e0) as excess_ms,
        least(greatest(coalesce(corr(e, d), 0e0), 0e0), 0.95e0) as error_corr,
        sqrt(avg(e * e)) as rmse_augmented,
        sqrt(avg(d * d)) as rmse_direct
    from rows_
    group by indicator, n_thinned

),

{#- the squared mean error over a few rows overstates the squared bias by its own variance
    (E mean^2 = mu^2 + var / n): the bias is shrunk to sign(mean) sqrt(max(0, mean^2 - var / n)) -#}
debiased as (

    select
        moments.*,
        sign(bias_raw) * sqrt(greatest(bias_raw * bias_raw - bias_raw_var, 0e0)) as bias_mean
    from moments

),

final as (

    select
        indicator,
        measure,
        n_thinned,
        case when measure = 'share' then 'absolute' else 'relative' end as error_scale,
        n_rows,
        n_cells,
        mean_model_share,
        bias_mean,
        bias_raw,
        excess_ms,
        greatest(excess_ms - bias_mean * bias_mean, 0e0) as excess_var,
        error_corr,
        rmse_augmented,
        rmse_direct
    from debiased

)

select * from final
{%- else -%}
select
    cast(null as {{ dbt.type_string() }}) as indicator,
    cast(null as {{ dbt.type_string() }}) as measure,
    cast(null as {{ dbt.type_bigint() }}) as n_thinned,
    cast(null as {{ dbt.type_string() }}) as error_scale,
    cast(null as {{ dbt.type_bigint() }}) as n_rows,
    cast(null as {{ dbt.type_bigint() }}) as n_cells,
    cast(null as {{ surveysynth.type_double() }}) as mean_model_share,
    cast(null as {{ surveysynth.type_double() }}) as bias_mean,
    cast(null as {{ surveysynth.type_double() }}) as bias_raw,
    cast(null as {{ surveysynth.type_double() }}) as excess_ms,
    cast(null as {{ surveysynth.type_double() }}) as excess_var,
    cast(null as {{ surveysynth.type_double() }}) as error_corr,
    cast(null as {{ surveysynth.type_double() }}) as rmse_augmented,
    cast(null as {{ surveysynth.type_double() }}) as rmse_direct
where 1 = 0
{%- endif %}
