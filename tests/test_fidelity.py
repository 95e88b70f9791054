"""Fidelity metrics: each gate passes on faithful data and fails on the damage it is meant to see.

Real data: CPS1988 (see test_risk.load_cps1988), split into halves.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sdmetrics.single_column import KSComplement, TVComplement
from test_risk import CPS_SPEC, load_cps1988, metric

from surveysynth.checks.fidelity import (
    DEFAULT_FIDELITY_THRESHOLDS,
    _combine,
    _weighted_ks,
    ci_overlap,
    fidelity_metrics,
    pmse,
)
from surveysynth.checks.risk import METRIC_COLUMNS

REGRESSION = {"y": "wage", "x": ["education", "experience", "ethnicity"], "log_y": True}


@pytest.fixture(scope="module")
def halves() -> tuple[pd.DataFrame, pd.DataFrame]:
    df = load_cps1988()
    perm = np.random.default_rng(7).permutation(len(df))
    return (
        df.iloc[perm[:4000]].reset_index(drop=True),
        df.iloc[perm[4000:8000]].reset_index(drop=True),
    )


def shuffled(df: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Every column permuted on its own: marginals exact, every dependence destroyed."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame({c: df[c].to_numpy()[rng.permutation(len(df))] for c in df.columns})


def test_report_shape(halves):
    real, other = halves
    rep = fidelity_metrics(real, other, CPS_SPEC, region_col="region", regression=REGRESSION)
    assert list(rep.columns) == list(METRIC_COLUMNS)
    assert set(rep["comparison"]) <= {"<=", ">="}
    assert rep["passed"].dtype == bool
    assert set(rep.loc[rep["metric"] == "marginal_distance", "column"]) == set(CPS_SPEC)
    for name in (
        "dependence_correlation",
        "dependence_contingency",
        "pmse",
        "s_pmse",
        "ci_overlap_mean",
        "ci_overlap_worst",
        "regression_ci_overlap",
        "region_marginal_worst",
        "rare_category_survival",
    ):
        assert name in set(rep["metric"]), name
    # the worst region is named, not only an average
    assert "worst region region = " in metric(rep, "region_marginal_worst")["detail"]
    assert "worst domain region = " in metric(rep, "ci_overlap_worst", "wage by region")["detail"]


def test_independent_sample_passes_distribution_gates(halves):
    real, other = halves
    rep = fidelity_metrics(real, other, CPS_SPEC, region_col="region")
    for name in ("marginal_distance", "dependence_correlation", "dependence_contingency", "s_pmse"):
        rows = rep[rep["metric"] == name]
        assert rows["passed"].all(), rows.to_dict("records")
    assert metric(rep, "s_pmse")["value"] < 3
    assert metric(rep, "region_marginal_worst")["passed"]


def test_shuffled_columns_fail_dependence_and_spmse_but_pass_marginals(halves):
    real, _ = halves
    rep = fidelity_metrics(real, shuffled(real, 1), CPS_SPEC, regression=REGRESSION)
    marg = rep[rep["metric"] == "marginal_distance"]
    assert marg["passed"].all() and (marg["value"] < 1e-9).all()
    assert not metric(rep, "dependence_correlation")["passed"]
    assert metric(rep, "dependence_correlation")["value"] > 0.2
    assert not metric(rep, "s_pmse")["passed"]
    # well beyond the limit, at the library's default pMSE rows (S_pMSE grows with the rows for a
    # fixed imperfection: about 20 at 6,000 rows here, higher at more)
    assert metric(rep, "s_pmse")["value"] > 1.5 * DEFAULT_FIDELITY_THRESHOLDS["s_pmse_max"]
    # the regression's slopes vanish: their intervals no longer overlap
    assert not metric(rep, "regression_ci_overlap", "wage ~ education")["passed"]


def test_shuffling_within_pairs_of_categoricals_fails_contingency():
    rng = np.random.default_rng(3)
    n = 3000
    a = rng.choice(["p", "q", "r"], n)
    b = np.where(rng.random(n) < 0.9, np.char.upper(a.astype(str)), rng.choice(["P", "Q", "R"], n))
    real = pd.DataFrame({"a": a, "b": b})
    spec = {"a": "categorical", "b": "categorical"}
    rep = fidelity_metrics(real, shuffled(real, 2), spec)
    assert not metric(rep, "dependence_contingency")["passed"]
    assert metric(rep, "dependence_contingency")["column"] == "a x b"
    assert rep.loc[rep["metric"] == "marginal_distance", "passed"].all()


def test_cart_pmse_with_permutation_null(halves):
    real, other = halves
    spec = {k: CPS_SPEC[k] for k in ("wage", "education", "experience", "region")}
    good = pmse(real, other, spec, model="cart", n_permutations=3)
    bad = pmse(real, shuffled(real, 4), spec, model="cart", n_permutations=3)
    assert good["s_pmse"] < DEFAULT_FIDELITY_THRESHOLDS["s_pmse_cart_max"] < bad["s_pmse"]


def test_spmse_null_matches_formula():
    """Two samples of one distribution: S_pMSE averages about 1 (pMSE at its null expectation)."""

    def sample(rng: np.random.Generator, n: int) -> pd.DataFrame:
        return pd.DataFrame({"x": rng.normal(size=n), "g": rng.choice(list("abc"), n)})

    spec = {"x": "continuous", "g": "categorical"}
    for n_real, n_syn in ((600, 600), (900, 300)):  # c = 1/2 and c = 1/4
        vals = []
        for seed in range(30):
            rng = np.random.default_rng(seed)
            vals.append(pmse(sample(rng, n_real), sample(rng, n_syn), spec)["s_pmse"])
        assert 0.8 < np.mean(vals) < 1.25, (n_real, n_syn, np.mean(vals))


def test_marginals_use_sdmetrics_and_weighted_versions_agree(halves):
    real, other = halves
    rep = fidelity_metrics(real, other, CPS_SPEC)
    ks = 1 - KSComplement.compute(real["wage"], other["wage"])
    tv = 1 - TVComplement.compute(real["region"], other["region"])
    assert metric(rep, "marginal_distance", "wage")["value"] == pytest.approx(ks)
    assert metric(rep, "marginal_distance", "region")["value"] == pytest.approx(tv)
    w = np.ones(len(real))
    assert _weighted_ks(
        real["wage"].to_numpy(), w, other["wage"].to_numpy(), np.ones(len(other))
    ) == (pytest.approx(ks, abs=1e-9))
    # weights matter: real rows of one region count double, synthetic has them twice instead
    real_w = real.assign(w=np.where(real["region"] == "south", 2.0, 1.0))
    syn = pd.concat([real, real[real["region"] == "south"]], ignore_index=True)
    rep_w = fidelity_metrics(real_w, syn, CPS_SPEC, weights="w")
    assert metric(rep_w, "marginal_distance", "region")["value"] == pytest.approx(0.0, abs=1e-12)
    assert metric(rep_w, "marginal_distance", "wage")["value"] == pytest.approx(0.0, abs=1e-12)
    rep_u = fidelity_metrics(real, syn, CPS_SPEC)
    assert metric(rep_u, "marginal_distance", "region")["value"] > 0.05


def test_ci_overlap_formula():
    assert ci_overlap(0, 1, 0, 1) == 1.0
    assert ci_overlap(0, 2, 1, 3) == pytest.approx(0.5)  # half of each
    assert ci_overlap(0, 1, 0.5, 3.0) == pytest.approx(0.5 * (0.5 / 1 + 0.5 / 2.5))
    assert ci_overlap(0, 1, 2, 3) <= 0
    assert ci_overlap(0, 1, 50, 51) == -1.0  # clipped


def test_ci_overlap_of_domains_names_the_worst_region(halves):
    real, _ = halves
    syn = real.copy()
    south = syn["region"] == "south"
    syn.loc[south, "wage"] = syn.loc[south, "wage"] * 1.6
    rep = fidelity_metrics(real, syn, CPS_SPEC, region_col="region", ci_outcomes=["wage"])
    worst = metric(rep, "ci_overlap_worst", "wage by region")
    assert not worst["passed"] and "= south" in worst["detail"]
    reg = metric(rep, "region_marginal_worst")
    assert not reg["passed"] and "= south" in reg["detail"]
    # identical data: every overlap is 1
    same = fidelity_metrics(real, real.copy(), CPS_SPEC, region_col="region", regression=REGRESSION)
    ov = same[same["metric"].str.contains("overlap")]
    assert np.allclose(ov["value"], 1.0) and ov["passed"].all()


def test_implicates_combine_with_reiter_rules(halves):
    real, _ = halves
    imps = pd.concat([real.assign(imp=i) for i in range(3)], ignore_index=True)
    rep = fidelity_metrics(
        real, imps, CPS_SPEC, region_col="region", implicate_col="imp", regression=REGRESSION
    )
    ov = rep[rep["metric"].str.contains("overlap")]
    # b = 0 across identical implicates, so T = u-bar and the intervals coincide (up to the
    # normal vs t critical value: the combined df is infinite)
    assert np.allclose(ov["value"], 1.0, atol=1e-3)
    # the combining rules themselves (STATS.md)
    q, u = np.array([1.0, 2.0, 3.0]), np.array([1.0, 1.0, 1.0])
    est, t, df = _combine(q, u, "partial")  # T_p = u + b/m, df = (m-1)(1 + m u / b)^2
    assert (est, t, df) == (2.0, pytest.approx(1 + 1 / 3), pytest.approx(2 * 16))
    est, t, df = _combine(q, u, "full")  # T_f = (1 + 1/m) b - u
    assert t == pytest.approx(4 / 3 - 1) and df == pytest.approx(2 * (1 - 3 / 4) ** 2)
    est, t, df = _combine(q, np.array([5.0, 5.0, 5.0]), "full")  # T_f < 0: fall back to u-bar
    assert t == 5.0


def test_rare_categories_and_combinations_survival(halves):
    real, _ = halves
    spec = {"region": "categorical", "ethnicity": "categorical", "smsa": "categorical"}
    rare_eth = real["ethnicity"].value_counts(normalize=True).idxmin()
    assert real["ethnicity"].value_counts(normalize=True).min() < 0.1
    syn = real[real["ethnicity"] != rare_eth]
    rep = fidelity_metrics(
        real, syn, spec, thresholds={"rare_share": 0.1}, rare_combinations=["region", "smsa"]
    )
    row = metric(rep, "rare_category_survival", "ethnicity")
    assert row["value"] == 0.0 and not row["passed"] and rare_eth in row["detail"]
    assert metric(rep, "rare_category_survival", "region")["passed"]
    ok = fidelity_metrics(real, real, spec, rare_combinations=["region", "ethnicity", "smsa"])
    assert metric(ok, "rare_combination_survival", "region x ethnicity x smsa")["value"] == 1.0
    thin = real[~((real["region"] == "west") & (real["ethnicity"] == "afam"))]
    bad = fidelity_metrics(real, thin, spec, rare_combinations=["region", "ethnicity"])
    assert not metric(bad, "rare_combination_survival", "region x ethnicity")["passed"]


def test_thresholds_and_errors(halves):
    real, other = halves
    rep = fidelity_metrics(real, other, CPS_SPEC, thresholds={"s_pmse_max": None})
    assert metric(rep, "s_pmse")["passed"] and np.isnan(metric(rep, "s_pmse")["threshold"])
    # the noise floor can be switched off, which tightens every distance threshold
    strict = fidelity_metrics(real, other, CPS_SPEC, thresholds={"noise_allowance": 0})
    assert metric(strict, "marginal_distance", "wage")["threshold"] == pytest.approx(0.10)
    with pytest.raises(KeyError, match="unknown threshold"):
        fidelity_metrics(real, other, CPS_SPEC, thresholds={"s_pmse": 3})
    with pytest.raises(KeyError, match="weight column 'w'"):
        fidelity_metrics(real, other, CPS_SPEC, weights="w")
    with pytest.raises(ValueError, match="negative"):
        fidelity_metrics(real.assign(w=-1.0), other, CPS_SPEC, weights="w")
    with pytest.raises(ValueError, match="needs 'y'"):
        fidelity_metrics(real, other, CPS_SPEC, regression={"x": ["education"]})
