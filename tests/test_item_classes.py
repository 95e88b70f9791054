"""Item nonresponse adjusted within classes (estimate_moments(item_classes=true), direct_estimates,
implicate_estimates(classes=...)): a domain's mean is sum_c W_c ybar_c / sum_c W_c over its cells,
not the item respondents' mean, which leans towards the cells that answer the item more often. The
SQL against this reference on the demo: test_design_estimates, test_augmented_demo."""

from __future__ import annotations

import numpy as np
import pandas as pd
from calibrated_reference import item_class_factor, linearised_z

from surveysynth.estimation.combining import implicate_estimates


def _survey(rng: np.random.Generator, miss: dict[str, float]) -> pd.DataFrame:
    """Two cells of one region, equal weights; y much larger in 'big', whose units answer more."""
    rows = []
    for cell, (n, mu) in {"small": (400, 2.0), "big": (100, 50.0)}.items():
        y = rng.gamma(2.0, mu / 2.0, n)
        y[rng.random(n) < miss[cell]] = np.nan
        rows.append(pd.DataFrame({"cell_id": cell, "y": y, "w": 10.0}))
    d = pd.concat(rows, ignore_index=True)
    return d.assign(implicate=1, region="r", stratum=d.cell_id, fpc=0.5)


def _mean(d: pd.DataFrame, by: str, classes) -> pd.DataFrame:
    return implicate_estimates(
        d, "y", "mean", [by], weight="w", stratum="stratum", classes=classes
    ).set_index(by)


def test_margin_mean_is_the_weighted_mean_of_cell_means_and_cells_are_unchanged():
    d = _survey(np.random.default_rng(1), {"small": 0.3, "big": 0.0})
    obs = d[d.y.notna()]
    ybar = obs.groupby("cell_id").y.mean()
    W = d.groupby("cell_id").w.sum()
    got = _mean(d, "region", ["cell_id"]).loc["r", "q"]
    assert np.isclose(got, (W * ybar).sum() / W.sum(), rtol=1e-12)
    # the item respondents' mean (the old estimate) is another number here
    assert not np.isclose(_mean(d, "region", None).loc["r", "q"], got, rtol=1e-3)
    # within one class the scale cancels: cell means and variances as before
    a, b = _mean(d, "cell_id", None), _mean(d, "cell_id", ["cell_id"])
    assert np.allclose(a.q, b.q, rtol=1e-12) and np.allclose(a.u, b.u, rtol=1e-12)
    # the numpy reference of direct_estimates agrees
    y, w = d.y.to_numpy(), d.w.to_numpy()
    est, _, _ = linearised_z(y, w, np.ones(len(d), bool), "mean", classes=d.cell_id.to_numpy())
    assert np.isclose(est, got, rtol=1e-12)
    assert np.allclose(item_class_factor(np.zeros(len(d)), w, d.cell_id.to_numpy()), 1.0)


def test_adjusted_margin_mean_is_unbiased_where_the_item_respondents_mean_is_not():
    """MCAR within cells at different rates: over 300 surveys the adjusted mean's error averages
    to about 0 (within 3 standard errors of the average); the item respondents' mean is biased up."""
    rng = np.random.default_rng(7)
    old, new = [], []
    for _ in range(300):
        d = _survey(rng, {"small": 0.4, "big": 0.02})
        truth = (400 * 2.0 + 100 * 50.0) / 500  # the superpopulation mean the cells are drawn from
        old.append(_mean(d, "region", None).loc["r", "q"] - truth)
        new.append(_mean(d, "region", ["cell_id"]).loc["r", "q"] - truth)
    old, new = np.array(old), np.array(new)
    assert abs(new.mean()) < 3 * new.std(ddof=1) / np.sqrt(len(new))
    assert old.mean() > 10 * old.std(ddof=1) / np.sqrt(len(old))
