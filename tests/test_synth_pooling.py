"""Empirical-Bayes partial pooling (Fay-Herriot form with a hierarchical prior)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from surveysynth.synthesis.pooling import fit_pooled, hajek_share, logit_direct, pooling_terms
from surveysynth.synthesis.variance import draw_sigma2


def _grid(seed: int = 0):
    rng = np.random.default_rng(seed)
    t = pd.MultiIndex.from_product(
        [
            [f"r{i}" for i in range(8)],
            [f"s{i}" for i in range(6)],
            ["micro", "small", "large"],
            [1, 2],
        ],
        names=["region", "sector", "size", "wave"],
    ).to_frame(index=False)
    r = t["region"].str[1:].astype(int).to_numpy()
    s = t["sector"].str[1:].astype(int).to_numpy()
    z = t["size"].map({"micro": 0, "small": 1, "large": 2}).to_numpy()
    truth = (
        rng.normal(0, 0.5, 8)[r]
        + rng.normal(0, 0.5, 6)[s]
        + np.array([0.5, 0.0, -0.5])[z]
        + rng.normal(0, 0.15, len(t))
    )
    truth = truth + np.where((r == 0) & (z == 0), 1.5, 0.0)  # region x size interaction
    return t, truth, rng


def test_shrinkage_weight_grows_with_cell_information():
    t, truth, rng = _grid()
    n = rng.choice([2, 20, 200], size=len(t))
    psi = 1.0 / n
    theta = truth + rng.normal(0, np.sqrt(psi))
    res = fit_pooled(theta, psi, pooling_terms(t, ["region", "sector", "size"], "wave"), ["x"])
    g = pd.Series(res.gamma[:, 0]).groupby(n).mean()
    sd = pd.Series(res.post_sd[:, 0]).groupby(n).mean()
    assert g.loc[2] < g.loc[20] < g.loc[200]
    assert sd.loc[2] > sd.loc[20] > sd.loc[200] > 0
    err_post = np.sqrt(np.mean((res.post_mean[:, 0] - truth) ** 2))
    err_direct = np.sqrt(np.mean((theta - truth) ** 2))
    assert err_post < 0.6 * err_direct


def test_pooled_interaction_predicts_empty_cells():
    """Cells of region r0 x micro are empty in half the sectors: the pooled region x size
    interaction learned from the other sectors carries the non-additive effect there; a
    main-effects prior misses it."""
    t, truth, rng = _grid(1)
    psi = np.full(len(t), 0.05)
    theta = truth + rng.normal(0, np.sqrt(psi))
    empty = (t["region"] == "r0") & (t["size"] == "micro") & t["sector"].isin(["s0", "s1", "s2"])
    theta[empty.to_numpy()] = np.nan
    with_int = fit_pooled(theta, psi, pooling_terms(t, ["region", "sector", "size"], "wave", True))
    main = fit_pooled(theta, psi, pooling_terms(t, ["region", "sector", "size"], "wave", False))
    e = empty.to_numpy()
    err_int = np.sqrt(np.mean((with_int.post_mean[e, 0] - truth[e]) ** 2))
    err_main = np.sqrt(np.mean((main.post_mean[e, 0] - truth[e]) ** 2))
    assert err_int < 0.5 * err_main
    assert err_int < 0.4
    # empty cells keep honest spread: sigma_v2 plus the prior's own uncertainty
    assert (with_int.post_sd[e, 0] > 0).all()
    assert (with_int.gamma[e, 0] == 0).all()


def test_share_direct_estimates_handle_zero_and_one():
    g = np.array([0, 0, 1, 1, 2])
    w = np.array([1.0, 3.0, 2.0, 2.0, 1.0])
    y = np.array([0.0, 0.0, 1.0, 1.0, 1.0])
    p, _n, n_eff = hajek_share(g, w, y, np.ones(5, bool), 4)
    assert p[0] == 0 and p[1] == 1 and np.isnan(p[3])
    assert np.isclose(n_eff[0], 16 / 10)
    theta, psi = logit_direct(p, n_eff)
    assert np.isfinite(theta[:3]).all() and np.isfinite(psi[:3]).all()
    assert theta[0] < 0 < theta[1] and np.isnan(theta[3])


def test_duplicate_partitions_are_dropped():
    t = pd.DataFrame({"a": ["x", "x", "y", "y"], "b": ["k", "k", "k", "k"], "wave": [1, 2, 1, 2]})
    terms = pooling_terms(t, ["a", "b"], "wave")
    assert set(terms) == {"a", "wave"}  # b has one level; a x b duplicates a; a x wave is v_c


def test_pooling_does_not_diverge_on_belgian_communes():
    """Real data (r-cran-sampling's Belgian communes, installed by the benchmark's loader): on
    sample 13 of scripts/eval/eval_real_sae.py the pooled prior of log income once diverged
    (an unguarded SQUAREM step set a term variance of 36 on a scale whose cells vary by 0.01):
    unsampled districts got prior effects of 2 to 8.6, i.e. 7 to 5,000 times their income.
    Every cell's prior must stay within the observed cells' direct effects, widened by three
    times their spread."""
    import sys

    from harness import ROOT

    sys.path.insert(0, str(ROOT / "scripts" / "eval"))
    import eval_real_sae as sae

    from surveysynth.synthesis.api import fit_model

    pop = sae.belgian()
    seed = sae.rep_seed(20260101, 13)
    params = fit_model(*sae.synth_arguments(pop, sae.draw(pop, seed), 5, seed)).params
    hat = params["p__avg_income__loc__hat"].dropna()
    prior = params["p__avg_income__loc__prior"]
    lo, hi = hat.min() - 3 * hat.std(), hat.max() + 3 * hat.std()
    assert prior.between(lo, hi).all(), prior[~prior.between(lo, hi)]


def _crossed(seed: int, sigma_v2: float = 0.3):
    """120 cells of two crossed factors (30 x 4 levels), a cell effect of variance sigma_v2
    beyond them, 70% of the cells observed with sampling variances 0.2-1."""
    rng = np.random.default_rng(seed)
    a, b = np.repeat(np.arange(30), 4), np.tile(np.arange(4), 30)
    theta = rng.normal(0, 0.7, 30)[a] + rng.normal(0, 0.5, 4)[b]
    theta = theta + rng.normal(0, np.sqrt(sigma_v2), a.size)
    psi = rng.choice([0.2, 0.5, 1.0], a.size)
    hat = theta + rng.normal(0, np.sqrt(psi))
    seen = rng.random(a.size) >= 0.3
    return np.where(seen, hat, np.nan), np.where(seen, psi, np.nan), {"a": a, "b": b}


def test_cell_variance_is_not_absorbed_by_the_terms():
    """The prior mean is fitted with the cell in it: the sigma_v2 update counts each cell's
    leverage on it (E[v_c^2] includes the prior mean's posterior variance). Without that the
    terms' 34 levels absorbed the cell effects: over 20 worlds the mean estimate was 0.057
    for a true 0.3 (0.276 with it)."""
    est = [float(fit_pooled(*_crossed(seed)).sigma_v2[0]) for seed in range(20)]
    assert 0.2 < np.mean(est) < 0.4


def test_sigma_draws_read_leave_one_out_residuals():
    """The draws of sigma_v2 (synthesis.variance) read leave-one-out residuals given the prior
    mean's posterior variance. Over 20 crossed worlds with a true sigma_v2 of 0.3 the median
    draw averages 0.2-0.4 with them, and under 0.15 with the fitted residuals read as if the
    prior mean were known."""
    u = (np.arange(200) + 0.5) / 200
    loo, plain = [], []
    for seed in range(20):
        hat, psi, terms = _crossed(seed)
        r = fit_pooled(hat, psi, terms)
        s, prior, a = float(r.sigma_v2[0]), r.prior_mean[:, 0], r.prior_var[:, 0]
        loo.append(np.median(draw_sigma2(hat, psi, prior, 0.5, u, 1.0, a, s)))
        plain.append(np.median(draw_sigma2(hat, psi, prior, 0.5, u, 1.0)))
    assert 0.2 < np.mean(loo) < 0.4
    assert np.mean(plain) < 0.15
