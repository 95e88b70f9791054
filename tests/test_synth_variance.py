"""Posterior draws of a component's between-cell variance (surveysynth.synthesis.variance): the
data decide where the cells carry information, the weakly informative prior where they do not."""

from __future__ import annotations

import numpy as np
from scipy import stats

from surveysynth.synthesis.variance import draw_sigma2, prior_scale

U = (np.arange(1000) + 0.5) / 1000


def test_informative_cells_put_the_draws_at_the_truth():
    rng = np.random.default_rng(1)
    psi = np.full(400, 0.01)
    hat = rng.normal(0.0, np.sqrt(0.09 + psi))
    draws = draw_sigma2(hat, psi, np.zeros(400), 0.5, U, hint=0.2)
    assert 0.07 < np.median(draws) < 0.11
    assert np.quantile(draws, 0.975) < 0.13 and np.quantile(draws, 0.025) > 0.06


def test_uninformative_cells_draw_from_the_prior_not_from_a_flat_tail():
    """Four cells with a sampling variance of 1.2 each (a log scale from two respondents): the
    likelihood barely moves, and the draws follow the half-normal prior on sigma_v."""
    rng = np.random.default_rng(2)
    psi = np.full(4, 1.234)
    hat = rng.normal(0.0, np.sqrt(psi))
    draws = draw_sigma2(hat, psi, np.zeros(4), 0.5, U, hint=0.9)
    prior_q99 = stats.halfnorm.ppf(0.99, scale=0.5) ** 2
    assert np.quantile(draws, 0.99) <= prior_q99 * 1.05
    assert np.median(draws) < 0.25


def test_no_observed_cell_draws_zero_and_draws_are_deterministic():
    nan = np.full(3, np.nan)
    assert (draw_sigma2(nan, nan, nan, 0.5, U[:5], hint=1.0) == 0).all()
    hat, psi = np.array([0.3, -0.2, 0.5]), np.array([0.1, 0.2, 0.1])
    a = draw_sigma2(hat, psi, np.zeros(3), 0.5, U[:5], hint=0.5)
    b = draw_sigma2(hat, psi, np.zeros(3), 0.5, U[:5], hint=0.5)
    assert np.array_equal(a, b) and (np.diff(a) >= 0).all()


def test_prior_scales():
    assert prior_scale("logit", None) == 0.5 and prior_scale("scale", None) == 0.5
    assert np.isclose(prior_scale("gauss", 0.36), 0.3)
