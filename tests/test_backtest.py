"""The back-test library (surveysynth.checks.backtest) on a planted survey, without dbt: thinning, cell
choice, the planted failures, the metrics, and that the gate separates a proper synthesizer from a
broken one. The dbt gate itself is tested end to end in test_augmented_demo.py."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from surveysynth.checks.backtest import (
    BacktestConfig,
    BacktestConfigError,
    choose_cells,
    run_backtest,
    sabotage,
    summarize,
    thin,
)
from surveysynth.contract.inputs import make_cell_id
from surveysynth.estimation.fay_herriot import design_matrix, fit
from surveysynth.synthesis.planted import planted_survey

THRESHOLDS = {
    "ss_backtest_max_rmse_ratio": 0.8,
    "ss_backtest_min_coverage": 0.90,
    "ss_backtest_max_coverage": 0.99,
    "ss_backtest_max_abs_bias": 0.15,
    "ss_backtest_max_width_ratio": 1.0,
}


@pytest.fixture(scope="module")
def world():
    w = planted_survey(n_regions=6, n_sectors=4, waves=2, n_per_cell=20, N_per_cell=150, seed=3)
    r = w["responses"].copy()
    r["cell_id"] = make_cell_id(r, list(w["config"].cell_dims))
    return {**w, "responses": r}


def test_config_from_vars_and_errors():
    bt = BacktestConfig.from_vars(
        {
            "ss_backtest_cells": 5,
            "ss_backtest_sizes": [2, 4],
            "ss_seed": 9,
            "ss_backtest_sabotage": "identical_implicates",
        }
    )
    assert (bt.n_cells, bt.sizes, bt.seed, bt.sabotage) == (5, (2, 4), 9, "identical_implicates")
    with pytest.raises(BacktestConfigError, match="ss_backtest_sabotage"):
        BacktestConfig(sabotage="wrong")
    with pytest.raises(BacktestConfigError, match="ss_backtest_sizes"):
        BacktestConfig(sizes=(0,))
    with pytest.raises(BacktestConfigError, match="ss_backtest_sizes"):
        BacktestConfig(sizes=(-1, 2))
    assert BacktestConfig.from_vars({"ss_backtest_sizes": [0, 2]}).sizes == (0, 2)


def test_choose_cells_only_supported_everywhere(world):
    s = world["support"].copy()
    cfg = world["config"]
    first = s["cell_id"].iloc[0]
    s.loc[(s["cell_id"] == first) & (s[cfg.wave] == 1), "support_class"] = "sparse"
    chosen = choose_cells(s, cfg, BacktestConfig(n_cells=100))
    thinned = chosen[~chosen["fallback"]]
    assert first not in set(thinned["cell_id"])
    assert len(thinned) == s["cell_id"].nunique() - 1
    # too few supported cells for n_cells, but one sparse cell is too few to empty (< 5 cells)
    assert not chosen["fallback"].any()
    again = choose_cells(s, cfg, BacktestConfig(n_cells=10))
    assert not again["fallback"].any()
    assert list(again["cell_id"]) == list(
        chosen["cell_id"].head(10)
    )  # a seeded order, then a prefix
    six = s["cell_id"].drop_duplicates().iloc[:6]
    s.loc[s["cell_id"].isin(six) & (s[cfg.wave] == 1), "support_class"] = "sparse"
    filled = choose_cells(s, cfg, BacktestConfig(n_cells=100))
    assert set(filled.loc[filled["fallback"], "cell_id"]) == set(six)  # emptied only


def test_fallback_cells_are_emptied_a_group_at_a_time(world):
    """A survey with no supported cell: sparse cells with 2+ respondents in every wave are only
    ever emptied, each replicate holding out at most about a tenth of the respondents, every such
    cell in one replicate of each cycle; the back-test then measures the allowance of size 0."""
    s = world["support"].copy()
    cfg, r = world["config"], world["responses"]
    s["support_class"] = "sparse"
    one = s["cell_id"].iloc[0]
    s.loc[(s["cell_id"] == one) & (s[cfg.wave] == 1), "n_respondents"] = 1  # not 2 in every wave
    bt = BacktestConfig(n_cells=20, sizes=(2, 3, 5), repeats=2, max_records=40, seed=4)
    chosen = choose_cells(s, cfg, bt)
    assert chosen["fallback"].all() and len(chosen) == 20 and one not in set(chosen["cell_id"])
    n_groups = int(chosen["n_groups"].iloc[0])
    assert n_groups >= 3 and sorted(chosen["group"].unique()) == list(range(n_groups))
    seen, times = set(), pd.Series(0, index=chosen["cell_id"])
    for rep in range(n_groups):
        out, plan = thin(r, chosen, cfg, bt, replicate=rep)
        times[plan["cell_id"].unique()] += 1
        assert (plan["n_thinned"] == 0).all() and not out["cell_id"].isin(plan["cell_id"]).any()
        largest = plan.groupby("cell_id")["n_full"].sum().max()
        assert len(r) - len(out) <= 0.1 * len(r) + largest  # dealt in turn: one cell over at most
        seen |= set(plan["cell_id"])
    assert seen == set(chosen["cell_id"]) and (times == 1).all()  # each emptied once per cycle
    # fewer cells than the repeats: still one replicate per group and each cell emptied once
    few = choose_cells(s, cfg, replace(bt, n_cells=6, repeats=9))
    assert few["fallback"].all() and int(few["n_groups"].iloc[0]) == 9
    emptied = [thin(r, few, cfg, bt, replicate=k)[1]["cell_id"].nunique() for k in range(9)]
    assert sum(emptied) == 6
    res = run_backtest(r, world["frame"], s, cfg, bt)
    assert res["replicate"].nunique() == n_groups and (res["n_thinned"] == 0).all()
    assert res["augmented_estimate"].notna().all() and res["direct_estimate"].isna().all()
    assert res["full_sample_se"].notna().mean() > 0.9


def test_thin_keeps_n_per_cell_wave_and_scales_weights(world):
    cfg, r = world["config"], world["responses"]
    bt = BacktestConfig(n_cells=6, sizes=(2, 3, 5), seed=1)
    chosen = choose_cells(world["support"], cfg, bt)
    out, plan = thin(r, chosen, cfg, bt, replicate=0)
    kept = out[out["cell_id"].isin(chosen["cell_id"])].groupby(["cell_id", cfg.wave]).size()
    want = plan.set_index(["cell_id", cfg.wave])["n_thinned"]
    assert (kept.sort_index() == want.sort_index()).all()
    assert set(plan["n_thinned"]) <= {2, 3, 5}
    others = r[~r["cell_id"].isin(chosen["cell_id"])]
    assert len(out) == len(others) + int(want.sum())
    # kept respondents represent the cell's full sample weight
    w_full = (
        r[r["cell_id"].isin(chosen["cell_id"])].groupby(["cell_id", cfg.wave])[cfg.weight].sum()
    )
    w_thin = (
        out[out["cell_id"].isin(chosen["cell_id"])].groupby(["cell_id", cfg.wave])[cfg.weight].sum()
    )
    np.testing.assert_allclose(w_thin.sort_index(), w_full.sort_index())
    # seeded: same replicate same rows, another replicate other rows
    again, _ = thin(r, chosen, cfg, bt, replicate=0)
    other, _ = thin(r, chosen, cfg, bt, replicate=1)
    assert again[cfg.unit_id].tolist() == out[cfg.unit_id].tolist()
    assert set(other[cfg.unit_id]) != set(out[cfg.unit_id])


def test_size_zero_empties_a_cell_in_every_wave(world):
    """A cell whose turn is 0 loses every respondent in every wave (else the synthesizer would
    borrow the cell's own answers of the other waves); the others cycle over the sizes >= 1."""
    cfg, r = world["config"], world["responses"]
    bt = BacktestConfig(n_cells=8, sizes=(0, 2, 3), seed=1)
    chosen = choose_cells(world["support"], cfg, bt)
    for rep in (0, 1):
        out, plan = thin(r, chosen, cfg, bt, replicate=rep)
        per_cell = plan.groupby("cell_id")["n_thinned"]
        emptied = per_cell.max()[per_cell.max() == 0].index
        turn = (chosen["cell_index"] + rep) % 3 == 0  # size 0's turn: every third cell
        assert set(emptied) == set(chosen.loc[turn, "cell_id"])
        assert (per_cell.min()[per_cell.min() == 0].index == emptied).all()  # empty in every wave
        assert not out["cell_id"].isin(emptied).any()
        assert set(plan.loc[~plan["cell_id"].isin(emptied), "n_thinned"]) <= {2, 3}
    first, _ = thin(r, chosen, cfg, bt, replicate=0)
    second, _ = thin(r, chosen, cfg, bt, replicate=1)
    assert set(chosen["cell_id"]) - set(first["cell_id"]) != set(chosen["cell_id"]) - set(
        second["cell_id"]
    )  # the emptied cells take turns over replicates


def test_emptied_cells_are_synthesized_and_have_no_direct_estimate(world):
    cfg = world["config"]
    bt = BacktestConfig(n_cells=8, sizes=(0, 3), repeats=1, max_records=60, seed=2)
    res = run_backtest(world["responses"], world["frame"], world["support"], cfg, bt)
    empty = res[res["n_thinned"] == 0]
    assert len(empty) and empty["cell_id"].nunique() == 4  # every second cell of 8
    assert empty["direct_estimate"].isna().all() and empty["direct_se"].isna().all()
    assert empty["augmented_estimate"].notna().all() and (empty["n_synthetic"] > 0).all()
    assert (empty["augmented_se"] > 0).mean() > 0.9  # the implicates differ: Rubin's B > 0
    rest = res[res["n_thinned"] == 3]
    assert rest["direct_estimate"].notna().mean() > 0.9
    # the gate compares with the direct estimate only where there is one
    s = summarize(res, THRESHOLDS).set_index(["metric", "direction"])
    assert np.isfinite(s.loc[("augmented_rmse_ratio", "<="), "value"])


def test_sabotage_perturbations(world):
    cfg, r = world["config"], world["responses"]
    syn = pd.concat(
        [r.head(30).assign(implicate=i, synth_weight=1.0) for i in (1, 2, 3)], ignore_index=True
    )
    syn.loc[syn.implicate == 2, "sales"] = syn.loc[syn.implicate == 2, "sales"] + 1.0
    same = sabotage(syn, r, cfg, "identical_implicates", seed=1)
    for i in (2, 3):
        a = same[same.implicate == i]["sales"].to_numpy()
        b = same[same.implicate == 1]["sales"].to_numpy()
        np.testing.assert_array_equal(np.nan_to_num(a, nan=-1), np.nan_to_num(b, nan=-1))
    blind = sabotage(syn, r, cfg, "ignore_cells", seed=1)
    assert len(blind) == len(syn) and (blind["cell_id"] == syn["cell_id"]).all()
    # answers now come from respondents of any cell of the wave
    pool = set(r["status"].dropna())
    assert set(blind["status"].dropna()) <= pool
    assert sabotage(syn, r, cfg, "none", seed=1) is syn


def test_summarize_on_planted_results():
    rng = np.random.default_rng(0)
    n = 400
    truth = rng.normal(0, 1, n)
    res = pd.DataFrame(
        {
            "cell_id": (np.arange(n) // 2 % 50).astype(str),
            "wave": np.arange(n) // 100,
            "indicator": np.where(np.arange(n) % 2 == 0, "a", "b"),
            "true_value": truth,
            "full_sample_value": truth + rng.normal(0, 0.1, n),
            "full_sample_se": 0.1,
            "direct_estimate": truth + rng.normal(0, 1.0, n),
            "augmented_estimate": truth + rng.normal(0, 0.3, n),
        }
    )
    res["direct_ci_low"], res["direct_ci_high"] = (
        res.direct_estimate - 1.96,
        res.direct_estimate + 1.96,
    )
    res["augmented_ci_low"] = res.augmented_estimate - 1.96 * 0.3
    res["augmented_ci_high"] = res.augmented_estimate + 1.96 * 0.3
    s = summarize(res, THRESHOLDS).set_index(["metric", "direction"])
    assert s.loc[("augmented_rmse_ratio", "<="), "value"] == pytest.approx(0.3, abs=0.06)
    assert 0.9 < s.loc[("augmented_coverage", ">="), "value"] < 0.99
    assert s["passed"].dropna().all()
    assert (s["reference"] == "truth").all()
    # no truth: the full-sample value, its own SE widening the comparison
    s2 = summarize(res.assign(true_value=np.nan), THRESHOLDS)
    assert (s2["reference"] == "full_sample").all()
    # intervals of width 0 fail the coverage gate
    bad = res.assign(
        augmented_ci_low=res.augmented_estimate, augmented_ci_high=res.augmented_estimate
    )
    b = summarize(bad, THRESHOLDS).set_index(["metric", "direction"])
    assert not b.loc[("augmented_coverage", ">="), "passed"]
    # too few cells to judge: not_assessable, blocking only when asked
    few = res[res.cell_id.isin(["0", "1", "2"])]
    f = summarize(few, THRESHOLDS).set_index(["metric", "direction"])
    assert f.loc[("augmented_coverage", ">="), "status"] == "not_assessable"
    assert f.loc[("augmented_coverage", ">="), "passed"]
    f2 = summarize(few, THRESHOLDS, not_assessable_blocks=True)
    assert not f2["passed"].dropna().any()


def test_noisy_full_sample_reference_judges_like_the_truth():
    """Scored against the full-sample estimate, whose own variance is taken out, the back-test
    reads the same RMSE ratio and coverage as against the truth (real users have no truth)."""
    rng = np.random.default_rng(4)
    n, s_f, s_d, s_a = 3000, 0.5, 1.0, 0.45
    truth = rng.normal(0, 2, n)
    full = truth + rng.normal(0, s_f, n)
    # the thinned respondents are a subset of the full sample: d - f is independent of f - truth
    direct = full + rng.normal(0, np.sqrt(s_d**2 - s_f**2), n)
    aug = truth + rng.normal(0, s_a, n)
    res = pd.DataFrame(
        {
            "cell_id": (np.arange(n) % 150).astype(str),
            "wave": np.arange(n) % 4,
            "indicator": "a",
            "true_value": truth,
            "full_sample_value": full,
            "full_sample_se": s_f,
            "direct_estimate": direct,
            "direct_ci_low": direct - 1.96 * s_d,
            "direct_ci_high": direct + 1.96 * s_d,
            "augmented_estimate": aug,
            "augmented_ci_low": aug - 1.96 * s_a,
            "augmented_ci_high": aug + 1.96 * s_a,
        }
    )
    by_truth = summarize(res, THRESHOLDS).set_index(["metric", "direction"])
    by_full = summarize(res.assign(true_value=np.nan), THRESHOLDS).set_index(
        ["metric", "direction"]
    )
    assert by_full.loc[("n_rows", None), "value"] == n
    r_t = by_truth.loc[("augmented_rmse_ratio", "<="), "value"]
    r_f = by_full.loc[("augmented_rmse_ratio", "<="), "value"]
    assert r_t == pytest.approx(s_a / s_d, abs=0.03)
    assert r_f == pytest.approx(r_t, abs=0.05)
    # uncorrected, the full-sample reference inflates the ratio: (s_a^2 + s_f^2) / (s_d^2 - s_f^2)
    raw = (
        by_full.loc[("augmented_rmse_vs_reference", None), "value"]
        / by_full.loc[("direct_rmse_vs_reference", None), "value"]
    )
    assert raw > r_t + 0.2
    cov_t = by_truth.loc[("augmented_coverage", ">="), "value"]
    assert by_full.loc[("augmented_coverage", ">="), "value"] == pytest.approx(cov_t, abs=0.03)
    assert by_full["passed"].dropna().all() and by_truth["passed"].dropna().all()


@pytest.mark.parametrize("how", ["none", "identical_implicates", "ignore_cells"])
def test_gate_passes_proper_and_fails_broken_synthesizers(world, how):
    cfg = world["config"]
    bt = BacktestConfig(
        n_cells=24, sizes=(2, 3, 5), repeats=1, max_records=60, sabotage=how, seed=5
    )
    out = run_backtest(world["responses"], world["frame"], world["support"], cfg, bt)
    assert len(out) > 0 and set(out["sabotage"]) == {how}
    assert out["true_value"].isna().all()
    s = summarize(out, THRESHOLDS)
    failed = s[(s["passed"] == False)]
    if how == "none":
        assert failed.empty, s
    else:
        assert "augmented_coverage" in set(failed["metric"]), s


def test_fay_herriot_reml_matches_direct_maximisation():
    """REML by Fisher scoring equals a numerical maximum of the REML log-likelihood."""
    from scipy.optimize import minimize_scalar

    rng = np.random.default_rng(11)
    m = 150
    df = pd.DataFrame({"a": rng.choice(["x", "y", "z"], m), "b": rng.choice(["p", "q"], m)})
    X = design_matrix(df, ["a", "b"])
    psi = rng.uniform(0.3, 2.0, m)
    theta = (
        X @ np.array([1.0, 0.5, -0.5, 0.3]) + rng.normal(0, 1.0, m) + rng.normal(0, np.sqrt(psi))
    )

    def neg_reml(s2):
        v = s2 + psi
        Vi = np.diag(1 / v)
        XtViX = X.T @ Vi @ X
        P = Vi - Vi @ X @ np.linalg.inv(XtViX) @ X.T @ Vi
        return 0.5 * (np.sum(np.log(v)) + np.linalg.slogdet(XtViX)[1] + theta @ P @ theta)

    best = minimize_scalar(
        neg_reml, bounds=(0.0, 10.0), method="bounded", options={"xatol": 1e-10}
    ).x
    f = fit(theta, psi, X)
    assert f.converged and f.sigma_v2 == pytest.approx(best, rel=1e-4)
    # a world with no area effect: REML at (or very near) 0
    flat = X @ np.array([1.0, 0.5, -0.5, 0.3]) + rng.normal(0, np.sqrt(psi))
    assert fit(flat, psi, X).sigma_v2 < 0.2


def test_emptied_cells_of_a_ratio_outcome_take_the_ratio_estimators_reference(world):
    """For an outcome with a ratio auxiliary (ss_ratio_estimators) an emptied cell's reference is
    the ratio estimator's mean from its full sample, (sum w y / sum w x) X_bar, X_bar the cell's
    population mean of x from the frame; cells thinned to n >= 1 keep the Hajek mean (the gate's
    nested comparison), as does every other outcome."""
    cfg, r, frame = world["config"], world["responses"], world["frame"]
    bt = BacktestConfig(
        n_cells=6, sizes=(0, 3), repeats=1, max_records=40, seed=2, ratio=(("sales", "reg_sales"),)
    )
    res = run_backtest(r, frame, world["support"], cfg, bt)
    plain = run_backtest(r, frame, world["support"], cfg, replace(bt, ratio=()))
    fr = frame.assign(cell_id=make_cell_id(frame, list(cfg.cell_dims)))
    x_bar = fr.groupby("cell_id")["reg_sales"].mean()
    emptied = res[(res.n_thinned == 0) & (res.indicator == "sales")]
    assert len(emptied) >= 4
    r = r.merge(frame[[cfg.unit_id, "reg_sales"]], on=cfg.unit_id, how="left")
    for row in emptied.itertuples():
        g = r[(r.cell_id == row.cell_id) & (r[cfg.wave] == getattr(row, cfg.wave))]
        g = g[g.sales.notna()]
        want = (g.weight * g.sales).sum() / (g.weight * g.reg_sales).sum() * x_bar[row.cell_id]
        assert row.full_sample_value == pytest.approx(want, rel=1e-10)
        assert row.full_sample_se > 0
    same = (res.n_thinned > 0) | (res.indicator != "sales")
    pd.testing.assert_series_equal(
        res.loc[same, "full_sample_value"], plain.loc[same, "full_sample_value"]
    )
    assert not np.allclose(
        res.loc[~same, "full_sample_value"], plain.loc[~same, "full_sample_value"]
    )
