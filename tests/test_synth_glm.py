"""The slopes' prior by empirical Bayes (glm, ``groups``): a source that predicts the answer
keeps the weak ridge, a source that does not is shrunk; and each implicate's drawn logit keeps
the fitted rate up to the draw of its level (fit._rate_preserving). Both so that the
implicates' posterior draws of a rare event's slopes no longer raise its rate."""

from __future__ import annotations

import numpy as np
from scipy.special import expit

from surveysynth.synthesis import fit, glm

N, P = 3000, 60


def _noise(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((N, P))


def _rate_of_draws(f: glm.GLMFit, X: np.ndarray, draws: int = 200) -> float:
    """The event rate of the rows averaged over posterior draws of the coefficients."""
    A = np.column_stack([np.ones(len(X)), X])
    L = np.linalg.cholesky(f.cov + 1e-12 * np.eye(len(f.coef)))
    rng = np.random.default_rng(5)
    return float(
        np.mean(
            [
                expit(A @ (f.coef + L @ rng.standard_normal(len(f.coef)))).mean()
                for _ in range(draws)
            ]
        )
    )


def _two_rounds(X, y, groups) -> glm.GLMFit:
    """As the fit runs it: a second round goes on from the first's penalties."""
    w, off = np.ones(N), np.zeros(N)
    f = glm.fit_logit(X, y, w, off, groups=groups)
    return glm.fit_logit(X, y, w, off, f.coef, groups=groups, penalty=f.penalty)


def test_draws_of_a_rare_event_keep_its_rate():
    """A 2.5% event that none of 60 features predicts (20 sources of 3): with one weak prior
    on every slope the draws put the rate at 0.036 (+42%); with the sources' priors by
    empirical Bayes within 15% of the observed rate."""
    X = _noise(1)
    y = (np.random.default_rng(2).random(N) < 0.025).astype(float)
    groups = np.repeat(np.arange(20), 3)
    plain = glm.fit_logit(X, y, np.ones(N), np.zeros(N))
    assert _rate_of_draws(plain, X) > 1.3 * y.mean()
    eb = _two_rounds(X, y, groups)
    assert abs(_rate_of_draws(eb, X) / y.mean() - 1) < 0.15
    assert np.min(eb.penalty) > 10 * glm.RIDGE


def test_a_source_that_predicts_keeps_the_weak_prior():
    """The first source (2 features) drives the answer: its penalty stays at the ridge and
    its slopes within 3% of the plain ridge fit's; the 29 noise sources are shrunk."""
    X = _noise(3)
    y = (np.random.default_rng(4).random(N) < expit(-1 + 1.5 * X[:, 0] + X[:, 1])).astype(float)
    groups = np.r_[[0, 0], np.repeat(np.arange(1, 30), 2)]
    eb = _two_rounds(X, y, groups)
    plain = glm.fit_logit(X, y, np.ones(N), np.zeros(N))
    assert np.all(eb.penalty[:2] == glm.RIDGE)
    assert np.allclose(eb.coef[1:3], plain.coef[1:3], rtol=0.03)
    assert np.median(eb.penalty[2:]) > 10 * glm.RIDGE


def test_a_gaussian_fit_shrinks_a_noise_source_only():
    """Least squares: y = 2 x0 + noise, the other 59 features noise. The slope of x0 stays
    within 1% of the plain fit's; the noise sources' penalties grow past 10."""
    X = _noise(5)
    y = 2 * X[:, 0] + np.random.default_rng(6).standard_normal(N)
    groups = np.arange(P)
    w, off = np.ones(N), np.zeros(N)
    f = glm.fit_gauss(X, y, w, off, groups=groups)
    f = glm.fit_gauss(X, y, w, off, groups=groups, penalty=f.penalty)
    plain = glm.fit_gauss(X, y, w, off)
    assert abs(f.coef[1] / plain.coef[1] - 1) < 0.01
    assert f.penalty[0] == glm.RIDGE
    assert np.median(f.penalty[1:]) > 10 * glm.RIDGE
    # the prior is in residual-sd units: the penalties do not depend on the answer's scale
    for scale in (100.0, 0.01):
        g = glm.fit_gauss(X, scale * y, w, off, groups=groups)
        g = glm.fit_gauss(X, scale * y, w, off, groups=groups, penalty=g.penalty)
        assert np.allclose(g.penalty, f.penalty, rtol=1e-6)


def test_the_rate_shift_solves_hard_cases():
    """fit._intercept_for_rate finds the shift where capped Newton steps cannot: two
    clusters 400 logits apart (a shift of about 195 logits) and a target rate of 1e-13."""
    eta = np.r_[np.full(50, -200.0), np.full(50, 200.0)]
    w = np.ones(100)
    for target in (25.0, 1e-13 * 100):
        c = fit._intercept_for_rate(eta, w, target)
        got = float(np.sum(w * expit(eta + c)))
        assert abs(got / target - 1) < 1e-6, (target, c, got)


def test_a_drawn_rare_event_keeps_its_rate_and_its_uncertainty():
    """fit._rate_preserving: a 0.6% event, 60 noise features under the plain ridge. Unshifted,
    the posterior draws put the rate at 3.1 times the fitted one; shifted, the mean over 400
    draws is 1.10 times it (the logit-normal draw of the level itself) and the median 1.05,
    and the draws still differ (the level's own uncertainty: their spread is at least the
    rate's binomial standard error)."""
    X = _noise(7)
    y = (np.random.default_rng(8).random(N) < 0.01).astype(float)
    w, off = np.ones(N), np.zeros(N)
    f = glm.fit_logit(X, y, w, off)
    A = np.column_stack([np.ones(N), X])
    L = np.linalg.cholesky(f.cov + 1e-12 * np.eye(P + 1))
    rng = np.random.default_rng(9)
    fitted = expit(A @ f.coef).mean()
    raw, shifted = [], []
    for _ in range(400):
        d = f.coef + L @ rng.standard_normal(P + 1)
        raw.append(expit(A @ d).mean())
        d[0] += fit._rate_preserving(f.coef, d, X, off, w)
        shifted.append(expit(A @ d).mean())
    assert np.mean(raw) > 2 * fitted
    assert abs(np.mean(shifted) / fitted - 1) < 0.15
    assert abs(np.median(shifted) / fitted - 1) < 0.08
    assert np.std(shifted) > np.sqrt(fitted * (1 - fitted) / N)
