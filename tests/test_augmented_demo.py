"""End to end on the demo world: augmented microdata calibrated per implicate, domain estimates with
honest uncertainty, and the back-test gate, which a planted broken synthesizer must fail.

What must hold on the demo, against demo_truth, over sparse cells x waves x indicators: the
augmented RMSE at most 0.6 x the direct RMSE, and empirical coverage of the nominal 95% augmented
intervals between 90% and 98%."""

from __future__ import annotations

import shutil

import duckdb
import numpy as np
import pandas as pd
import pytest
from harness import run_dbt

from surveysynth.estimation.combining import combine_arrays, implicate_estimates
from surveysynth.estimation.evaluate import score, sparse_rows

DIMS = ["region", "sector", "size_band"]
#: the item nonresponse classes of domain_estimates' augmented moments (cells x wave)
CLASSES = ["cell_id", "wave"]


@pytest.fixture(scope="module")
def demo(demo_made):
    """The session's `make demo` build (tests/demo_builds.py); tests that rebuild copy it first."""
    b = demo_made
    return b.work, b.vars, b.res, pd.read_parquet(b.data / "demo_truth.parquet")


def test_demo_builds_and_every_gate_passes(demo):
    _, _, res, _ = demo
    assert res.ok, res.output[-5000:]
    st = res.statuses()
    bad = {k: v for k, v in st.items() if v not in ("success", "pass")}
    assert not bad
    for gate in (
        "augmented_weights_meet_margins",
        "augmented_calibration_converged",
        "backtest_gate",
        "one_recommended_estimate_per_domain_wave_indicator",
    ):
        assert st[gate] == "pass"


def test_implicates_are_completed_populations_calibrated_to_the_margins(demo):
    _, _, res, _ = demo
    cells = res.query("""
        select a.implicate, a.cell_id, a.wave, sum(a.analysis_weight) as w, count(*) as n_records,
               sum(case when a.is_synthetic then 0 else 1 end) as n_real, max(s.n_population) as n_population,
               max(s.n_respondents) as n_respondents
        from augmented_microdata a join cell_support s using (cell_id, wave)
        where a.cell_role = 'completed'
        group by a.implicate, a.cell_id, a.wave""")
    np.testing.assert_allclose(cells["w"], cells["n_population"], rtol=1e-6)
    assert (cells["n_real"] == cells["n_respondents"]).all()
    m = res.query("select count(distinct implicate) as m from augmented_microdata").m[0]
    assert m == 5
    # every sparse or empty cell with non-responding units is completed in every implicate
    thin = res.query(
        "select count(*) as n from cell_support where support_class in ('sparse', 'empty') "
        "and n_population > n_respondents"
    ).n[0]
    per_imp = cells[cells.n_population > cells.n_respondents].groupby("implicate").size()
    assert (per_imp == thin).all()
    # real records are the staged responses, once per implicate; synthetic ones say so
    counts = res.query(
        "select implicate, sum(case when is_synthetic then 0 else 1 end) as n_real, "
        "count(distinct synth_run_id) as runs from augmented_microdata group by implicate"
    )
    n_resp = res.query("select count(*) as n from stg_responses").n[0]
    assert (counts.n_real == n_resp).all() and (counts.runs == 1).all()
    # the trusted margins are met by every implicate (the gate's model, read here)
    chk = res.query("select * from augmented_margin_check")
    assert (chk.status == "ok").all() and chk.implicate.nunique() == 5
    assert {"region", "sector", "size_band", "completion"} <= set(chk.margin_id)


def test_sparse_cells_augmented_beats_direct_and_intervals_cover(demo):
    """The must-show numbers: RMSE ratio <= 0.6 and coverage in [0.90, 0.98] against demo_truth."""
    _, _, res, truth = demo
    rows = sparse_rows(res.query("select * from domain_estimates"), truth, DIMS)
    assert len(rows) > 5000
    table = score(
        rows,
        {
            "augmented": ("augmented_estimate", "augmented_ci_low", "augmented_ci_high"),
            "direct": ("direct_estimate", "direct_ci_low", "direct_ci_high"),
        },
    ).set_index("method")
    ratio = table.loc["augmented", "rmse_scaled"] / table.loc["direct", "rmse_scaled"]
    coverage = table.loc["augmented", "coverage_95"]
    print(f"sparse cells: RMSE ratio {ratio:.3f}, coverage {coverage:.3f}, rows {len(rows)}")
    assert ratio <= 0.6
    assert 0.90 <= coverage <= 0.98
    # Rubin's rule in completed cells: no within variance, df = m - 1
    assert (rows["within_var"].abs() < 1e-12).all()
    assert set(rows["augmented_df"].dropna().round(6)) == {4.0}


def test_domain_estimates_equal_python_combining_on_the_demo(demo):
    """The macro path of domain_estimates (moments, roll-up, Rubin) against the Python reference on
    the augmented microdata, for a mixed domain level (region) and some cells."""
    _, _, res, _ = demo
    aug = res.query(
        "select implicate, region, cell_id, wave, trading_status, turnover, analysis_weight, "
        "variance_stratum, fpc from augmented_microdata where region = 'scotland' and wave = 2"
    )
    de = res.query(
        "select * from domain_estimates where region = 'scotland' and wave = 2 "
        "and indicator in ('trading_status=paused', 'turnover')"
    )
    for indicator, (col, measure, level) in {
        "trading_status=paused": ("trading_status", "share", "paused"),
        "turnover": ("turnover", "mean", None),
    }.items():
        q = implicate_estimates(aug, col, measure, ["region"], level=level, classes=CLASSES)
        ref = combine_arrays(q["q"].to_numpy(), q["u"].to_numpy(), "mi")
        got = de[(de.domain_level == "region") & (de.indicator == indicator)].iloc[0]
        assert got.augmented_estimate == pytest.approx(ref["estimate"], rel=1e-9)
        assert got.augmented_se == pytest.approx(ref["se"], rel=1e-6)
        assert got.within_var > 0  # the region mixes observed and completed cells
        qc = implicate_estimates(aug, col, measure, ["cell_id"], level=level, classes=CLASSES)
        cells = de[(de.domain_level == "cell") & (de.indicator == indicator)].set_index("cell_id")
        for cell, g in list(qc.groupby("cell_id"))[:6]:
            r = combine_arrays(g["q"].to_numpy(), g["u"].to_numpy(), "mi")
            assert cells.loc[cell, "augmented_estimate"] == pytest.approx(r["estimate"], rel=1e-9)
            assert cells.loc[cell, "augmented_se"] == pytest.approx(r["se"], rel=1e-6, abs=1e-12)


def test_one_recommended_estimate_and_the_method_policy(demo):
    """The method rule of docs/estimation.md on the demo: one row per domain x wave x indicator of
    direct_estimates; each method's estimate is what it says; the composite only in cells with a
    model part; model_share and basis follow the method; shares inside [0, 1]."""
    _, _, res, _ = demo
    de = res.query("select * from domain_estimates")
    keys = ["domain_level", *DIMS, "wave", "indicator"]
    assert not de.duplicated(keys).any()
    direct = res.query(
        "select count(*) as n from direct_estimates where measure in ('mean', 'share')"
    ).n[0]
    assert len(de) == direct
    assert {"region_x_size_band", "region_x_sector", "sector_x_size_band"} <= set(de.domain_level)
    d = de[de.method == "direct"]
    assert (d.estimate == d.direct_estimate).all() and (d.phi == 1).all()
    assert (d.model_share == 0).all() and (d.basis == "design_based").all()
    a = de[de.method == "augmented"]
    assert (a.estimate == a.augmented_estimate).all() and (a.phi == 0).all()
    assert np.allclose(a.model_share, a.model_share_augmented)
    c = de[de.method == "composite"]
    assert len(c) > 0 and (c.domain_level == "cell").all() and c.phi.between(0, 1).all()
    mix = c.phi * c.direct_estimate + (1 - c.phi) * c.augmented_estimate
    assert np.allclose(c.estimate, mix, rtol=1e-9)
    pub = de[de.method != "suppressed"]
    assert pub.grade.isin(["good", "caution"]).all() and pub.se.notna().all()
    assert (pub.n_respondents == 0).sum() > 0
    assert (pub[pub.n_respondents == 0].basis == "model_based").all()
    sh = pub[pub.measure == "share"]
    assert ((sh.ci_low >= 0) & (sh.ci_high <= 1)).all()
    assert ((pub.ci_low <= pub.estimate + 1e-9) & (pub.estimate <= pub.ci_high + 1e-9)).all()
    # a share that rests partly on the model is never stated exactly (implicates that agree,
    # with no bias allowance, once gave margins zero-width intervals)
    modelled = sh[sh.model_share > 0]
    assert len(modelled) and (modelled.ci_high > modelled.ci_low).all()
    s = de[de.method == "suppressed"]
    assert s.estimate.isna().all() and (s.grade == "not_published").all() and s.reason.notna().all()
    # sparse cells are published mostly through the model (augmented or composite)
    sparse = de[(de.domain_level == "cell") & (de.support_class == "sparse")]
    assert sparse.method.isin(["augmented", "composite"]).mean() > 0.3


def test_backtest_passes_against_the_truth(demo):
    _, _, res, _ = demo
    s = res.query("select * from backtest_summary order by ord")
    gated = s[s.threshold.notna()]
    assert gated.passed.all(), s
    assert (s.reference == "truth").all() and (s.sabotage == "none").all()
    r = res.query("select * from backtest_results")
    assert set(r.n_thinned) == {2, 3, 5} and r.replicate.nunique() == 2
    assert r.true_value.notna().all()


@pytest.mark.parametrize("how", ["ignore_cells", "identical_implicates"])
def test_planted_broken_synthesizer_fails_the_backtest_gate(demo, tmp_path, how):
    _work, vars_, res, _ = demo
    shutil.copy(res.db_path, tmp_path / "warehouse.duckdb")  # the demo's tables, left untouched
    broken = run_dbt(
        tmp_path, vars={**vars_, "ss_backtest_sabotage": how}, select="backtest_results+"
    )
    assert not broken.ok
    assert broken.statuses()["backtest_gate"] == "fail"
    assert "surveysynth gate backtest_thresholds_met FAILED" in broken.output
    s = broken.query("select * from backtest_summary")
    assert (s.sabotage == how).all()
    assert not s[(s.metric == "augmented_coverage") & (s.direction == ">=")].passed.iloc[0]


def test_size_zero_gives_empty_cells_an_allowance_measured_on_emptied_cells(demo, tmp_path):
    """With 0 in ss_backtest_sizes the back-test empties some cells in every wave; a cell without
    respondents then takes the allowance of size 0 (B^2 = scale^2 max(beta^2, mu^2) for a single
    cell), a cell with respondents that of the largest size >= 1 at or below its count."""
    _work, vars_, res, _ = demo
    shutil.copy(res.db_path, tmp_path / "warehouse.duckdb")
    run = run_dbt(
        tmp_path, vars={**vars_, "ss_backtest_sizes": [0, 2, 3, 5]}, select="backtest_results+"
    )
    assert run.ok, run.output[-5000:]
    bt = run.query("select * from backtest_results")
    emptied = bt[bt.n_thinned == 0]
    assert len(emptied) and emptied.direct_estimate.isna().all()
    assert (emptied.groupby("cell_id").wave.nunique() == bt.wave.nunique()).all()
    allow = run.query("select * from augmented_error_allowance").set_index(
        ["indicator", "n_thinned"]
    )
    de = run.query(
        "select d.*, s.n_respondents as support_n from domain_estimates d join cell_support s"
        " using (region, sector, size_band, wave) where d.domain_level = 'cell'"
        " and d.n_synthetic > 0 and d.augmented_estimate is not null"
    )
    checked = 0
    for n_resp, size in ((0, 0), (1, 2), (4, 3)):
        rows = de[de.support_n == n_resp]
        assert len(rows), n_resp
        for r in rows.itertuples():
            a = allow.loc[(r.indicator, size)]
            scale = 1.0 if "=" in r.indicator else abs(r.augmented_estimate)
            s = r.model_share_augmented
            want = s * scale * np.sqrt(a.bias_mean**2 + a.excess_var)
            assert r.augmented_bias_allowance == pytest.approx(want, rel=1e-6, abs=1e-12)
            checked += 1
    assert checked > 100


def test_allowance_bias_is_freed_of_its_own_noise(demo, tmp_path):
    """augmented_error_allowance's bias is sign(b) sqrt(max(0, b^2 - var(e/s) / n)), b the mean of
    e / s over an indicator x size's rows: planted errors with no systematic part (mean 0, large
    noise) give a bias near 0 although their raw mean is not 0; a planted shift survives."""
    _work, vars_, res, _ = demo
    shutil.copy(res.db_path, tmp_path / "warehouse.duckdb")
    rng = np.random.default_rng(11)
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as con:
        bt = con.sql("select * from backtest_results").df()
        shift = np.where(bt.indicator == "employees", 0.3, 0.0)  # relative error, employees only
        noise = rng.normal(0.0, 0.2, len(bt))
        # relative to the augmented estimate, as the allowance scales means: (a - t) / a = x
        x = shift + noise
        share = bt.measure == "share"
        bt["augmented_estimate"] = np.where(share, bt.true_value + x, bt.true_value / (1.0 - x))
        con.register("planted", bt)
        con.sql("create or replace table backtest_results as select * from planted")
    run = run_dbt(tmp_path, vars=vars_, select="augmented_error_allowance", command="run")
    assert run.ok, run.output[-5000:]
    got = run.query("select * from augmented_error_allowance").set_index(["indicator", "n_thinned"])
    ok = bt.augmented_se.notna() & (bt.n_population > bt.n_thinned)
    d = bt[ok].assign(s=lambda x: (x.n_population - x.n_thinned) / x.n_population)
    d["r"] = (
        (d.augmented_estimate - d.true_value)
        / np.where(d.measure == "share", 1.0, d.augmented_estimate.abs())
        / d.s
    )
    for (ind, n), g in d.groupby(["indicator", "n_thinned"]):
        b, v = g.r.mean(), g.r.var(ddof=1) / len(g)
        want = np.sign(b) * np.sqrt(max(b * b - v, 0.0))
        row = got.loc[(ind, n)]
        assert row.bias_raw == pytest.approx(b, rel=1e-9, abs=1e-12)
        assert row.bias_mean == pytest.approx(want, rel=1e-9, abs=1e-12)
        assert row.excess_var == pytest.approx(max(row.excess_ms - want**2, 0.0), abs=1e-12)
        if ind == "employees":
            assert row.bias_mean > 0.2  # a real shift is kept
        else:
            assert abs(row.bias_mean) < abs(b) + 1e-12 and abs(row.bias_mean) < 0.1


def test_direct_mean_of_a_ratio_outcome_is_the_ratio_estimate(demo):
    """The demo declares ss_ratio_estimators {turnover: register_turnover, employees:
    register_employment}: domain_estimates' direct mean of each is direct_estimates' ratio
    estimate of the total over the domain's N (SE and interval too), at every domain level (the
    Hajek mean of an outcome without one is checked on EU-SILC in tests/test_eval_real_sae.py).
    Against the truth, the ratio mean's RMSE over the cells with respondents
    is well below the Hajek mean's (the register tells of the large businesses a cell's sample
    missed)."""
    _, _, res, truth = demo
    keys = ["domain_level", "cell_id", "region", "sector", "size_band", "wave"]
    de = res.query(
        "select * from domain_estimates where indicator in ('turnover', 'employees') "
        "and direct_estimate is not null"
    )
    di = res.query(
        "select * from direct_estimates where indicator in ('turnover', 'employees') "
        "and measure in ('mean', 'ratio') and estimate is not null"
    )
    assert set(de.loc[de.indicator == "turnover", "domain_level"]) > {"cell", "region", "national"}
    for indicator in ("turnover", "employees"):
        d = de[de.indicator == indicator]
        s = di[(di.indicator == indicator) & (di.measure == "ratio")]
        both = d.merge(s, on=keys, suffixes=("", "_src"), validate="1:1")
        assert len(both) == len(d)
        n = both["n_population"].astype(float)
        for a, b in (("direct_estimate", "estimate_src"), ("direct_ci_low", "ci_low_src"),
                     ("direct_ci_high", "ci_high_src")):  # fmt: skip
            np.testing.assert_allclose(both[a], both[b] / n, rtol=1e-9)
    for indicator in ("turnover", "employees"):
        cells = di[(di.domain_level == "cell") & (di.indicator == indicator)]
        per_unit = np.where(cells.measure == "ratio", cells.n_population.astype(float), 1.0)
        cell_keys = ["region", "sector", "size_band", "wave"]
        wide = (
            cells.assign(value=cells.estimate / per_unit)
            .pivot_table(index=cell_keys, columns="measure", values="value")
            .reset_index()
        )
        t = truth[truth.indicator == indicator].merge(wide, on=cell_keys)
        rmse = {m: np.sqrt(((t[m] - t["true_value"]) ** 2).mean()) for m in ("mean", "ratio")}
        print(f"{indicator} cells: RMSE Hajek {rmse['mean']:.1f}, ratio {rmse['ratio']:.1f}")
        assert rmse["ratio"] < 0.5 * rmse["mean"], (indicator, rmse)


def test_published_se_is_the_root_mse_of_the_published_method(demo):
    """A published direct row's se is sqrt(v_d), v_d at least the variance its Wilson interval
    implies: a share of 0 from a few respondents has an interval of some width and so an SE
    (it was the linearised 0, on 1,658 demo rows)."""
    _, _, res, _ = demo
    de = res.query("select * from domain_estimates where method = 'direct' and measure = 'share'")
    z = 1.959963984540054
    implied = (de.ci_high - de.ci_low) / (2 * z)
    assert len(de) > 1000
    assert (de.se >= implied * (1 - 1e-9)).all(), de[de.se < implied * (1 - 1e-9)].head()
    edge = de[de.estimate.isin([0.0, 1.0]) & (de.ci_high > de.ci_low)]
    assert len(edge) > 100 and (edge.se > 0).all()


def test_one_implicate_states_no_augmented_error(demo, tmp_path):
    """With ss_synth_m = 1 there is no between-implicate variance, so no Rubin T and no stated
    augmented error: the rule publishes the direct estimate (none where there is none). SQL's
    greatest() had skipped the missing T and read the bias allowance alone as the whole error:
    thousands of rows were published as augmented with an SE of 0."""
    _work, vars_, res, _ = demo
    shutil.copy(res.db_path, tmp_path / "warehouse.duckdb")
    run = run_dbt(
        tmp_path,
        vars={**vars_, "ss_synth_m": 1},
        select="synthetic_microdata+,+domain_estimates",
        command="run",
    )
    assert run.ok, run.output[-5000:]
    de = run.query("select * from domain_estimates")
    assert (de.m == 1).all() and de.augmented_se.isna().all()
    assert de.augmented_rmse.isna().all()
    assert set(de.method) <= {"direct", "suppressed"}, de.method.value_counts()
    empty = de[(de.n_respondents == 0) & (de.domain_level == "cell")]
    assert len(empty) and (empty.method == "suppressed").all() and empty.estimate.isna().all()
