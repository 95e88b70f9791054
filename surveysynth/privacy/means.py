"""The DP fit of a numeric outcome's cell means of v = log(1 + x - lo) above the lower bound, with
the uncertainty of its variance components carried into the implicates' draws.

Model, per cell c of pooling group g (n_c noisy answers above the lower bound):

* v_ci = theta_c + e_ci, e_ci ~ N(0, sigma_g^2): the within-cell spread (x log-normal);
* theta_c = prior_c + u_c, u_c ~ N(0, A_g): prior_c the main effects from the noisy margins that
  the residuals were centred on (measure.main_effects), A_g the cells' spread around it, the
  prior's own error included;
* y_c, the noisy mean of v, = theta_c + an error of variance D_c = sigma_g^2 / n_c + N_c, with
  N_c the DP noise's (delta method on the ratio of the noisy sum and count).

Two kinds of noisy statistic inform the variance components:

* the residual sums (``resid``): per answer, in expectation T_g = sigma_g^2 + w_g A_g, w_g the
  share of the group's answers whose residuals were taken about the main effects (the rest about
  their cell's own precise noisy mean, whose noise is subtracted). T_g is shrunk toward the
  pooled value (Fay-Herriot across groups, its known error the DP noise's plus the chi-square
  sampling variance 2 T^2 / dof). The total is well determined; its split is not, at low
  epsilon;
* the direct estimates y_c give the likelihood of the split.

The split is one fraction f in (0, 1) for all groups: A_g = f T_g, sigma_g^2 = (1 - w_g f) T_g
(the cells' spread in proportion to their group's residual variance), f with a flat prior and
its posterior on a grid. Each implicate draws f, then T_g from its normal posterior, hence A_g
and sigma_g^2, then theta_c from its Fay-Herriot posterior (gamma = A / (A + D); mean
prior + gamma (y - prior), variance gamma D; a cell without a direct estimate: prior, A). Without
direct estimates (low epsilon) f's posterior is its prior, and the implicates spread over every
split of the total: the raw-scale mean of a cell, exp(theta + sigma^2 / 2) on average, depends
on the total, which stays fixed, while how far one cell may sit from the prior is as uncertain
as the data leave it.

The residuals were clamped to +-RESID_CLAMP before summing: their mean square is turned back
into a variance as if the residuals were normal (:func:`unclamp`); at low epsilon, where the
prior is far off, the clamp binds and this matters.

Approximations: T_g's shrinkage and f's posterior are computed apart (f given the shrunk T); the
noisy counts n_c are taken as known; the residuals are taken as normal for the unclamping.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import norm

from surveysynth.privacy.measure import RESID_CLAMP, NoisyStats
from surveysynth.privacy.shrink import MIN_LEVELS_A, fh_posterior

#: floor of a within-cell variance of v (sd 0.1)
MIN_S2 = 0.01
#: points of A's posterior grid
A_GRID = 64
#: a pooling group's residual variance is estimated from this many noisy answers
MIN_GROUP_N = 30.0
#: the largest residual variance per answer the clamped residuals are read as
MAX_T = 4 * RESID_CLAMP**2


@dataclass
class MeanFit:
    y: np.ndarray  # K, direct estimate of theta (v scale)
    noise: np.ndarray  # K, DP-noise part of its error variance
    n: np.ndarray  # K, noisy answers above the lower bound, >= 1
    has: np.ndarray  # K, has a direct estimate
    prior: np.ndarray  # K
    group: np.ndarray  # K -> pooling group
    T: np.ndarray  # G, shrunk residual variance per answer
    T_var: np.ndarray  # G, its posterior variance
    w: np.ndarray  # G, share of answers centred on main effects
    grid: np.ndarray | None = None  # A_GRID values of f
    weights: np.ndarray | None = None  # their posterior probabilities

    def components(self, f: float, T: np.ndarray | None = None):
        """Per cell: A and sigma^2 given the split f (and the groups' totals T)."""
        T = np.clip(self.T if T is None else T, MIN_S2, MAX_T)
        s2 = np.maximum((1 - self.w * f) * T, MIN_S2)
        return (f * T)[self.group], s2[self.group]

    def posterior(self, f: float, T: np.ndarray | None = None):
        """Posterior mean and variance of every theta_c, and sigma^2 per cell, given f."""
        A, s2 = self.components(f, T)
        D = s2 / self.n + self.noise
        gamma = np.where(self.has, A / (A + D), 0.0)
        mean = self.prior + gamma * np.where(self.has, self.y - self.prior, 0.0)
        return mean, np.where(self.has, gamma * D, A), s2

    def f_mean(self) -> float:
        return float(self.weights @ self.grid)

    def point(self):
        """The posterior at f's posterior mean (diagnostics and the model's summary)."""
        return self.posterior(self.f_mean())

    def draw(self, rng) -> tuple[np.ndarray, np.ndarray]:
        """One implicate: f from its grid posterior, T from its posterior, then every theta_c;
        returns theta and sigma per cell."""
        f = float(rng.choice(self.grid, p=self.weights))
        T = self.T + np.sqrt(self.T_var) * rng.standard_normal(len(self.T))
        mean, var, s2 = self.posterior(f, T)
        return mean + np.sqrt(var) * rng.standard_normal(len(mean)), np.sqrt(s2)


def group_count(stats: NoisyStats, name: str, codes) -> np.ndarray:
    """Noisy answers of outcome ``name`` with the given codes per pooling group x wave: from the
    margin of the pooling dimension (or the wave's total) when the groups are one dimension's
    levels (one noise draw per group), else the sum of the cells' noisy counts, unclipped. A
    sum of cell counts clipped at 0 would add up the positive noise of thousands of empty
    cells."""
    dims = list(stats.cells.columns[1 : 1 + len(stats.margins)])
    codes = list(codes)
    if len(stats.pool_by) <= 1:
        i = dims.index(stats.pool_by[0]) if stats.pool_by else 0
        lv = stats.mcounts[name][i][:, codes].sum(axis=1)
        if not stats.pool_by:
            lv = np.bincount(stats.margin_wave[0], lv)
            return lv[stats.margin_wave[0][stats.margins[0]]][_first_rows(stats)]
        return lv[stats.margins[i]][_first_rows(stats)]
    return np.bincount(stats.group, stats.counts[name][:, codes].sum(axis=1), stats.n_groups)


def _first_rows(stats: NoisyStats) -> np.ndarray:
    """A cell row of every pooling group (groups are numbered 0..G-1)."""
    first = np.full(stats.n_groups, -1)
    first[stats.group[::-1]] = np.arange(len(stats.group))[::-1]
    return first


def residual_totals(stats: NoisyStats, name: str, diag: list):
    """Per pooling group: the shrunk residual variance per answer T, its posterior variance and
    the share w of answers centred on their main effects."""
    half = stats.ranges[name][1] / 2
    n = np.maximum(stats.counts[name][:, -1], 0.0)
    nn = np.maximum(n, 1.0)
    own = stats.centre_own[name]
    yc = np.clip(stats.logsum[name] / nn, -half, half)
    s2n, s2l = stats.noise_var[f"counts:{name}"], stats.noise_var[f"logsum:{name}"]
    g, G = stats.group, stats.n_groups
    n_own = np.bincount(g, np.where(own, n, 0.0), G)
    total = np.maximum(group_count(stats, name, [stats.counts[name].shape[1] - 1]), n_own)
    dof = np.maximum(total - np.bincount(g, own.astype(float), G), 1.0)
    own_noise = np.bincount(g, np.where(own, (s2l + yc**2 * s2n) / nn, 0.0), G)
    raw = stats.resid[name] - own_noise
    w = np.clip((total - n_own) / dof, 0.0, 1.0)
    m = np.clip(raw / dof, MIN_S2, 0.99 * RESID_CLAMP**2)
    Tg = unclamp(m)
    pooled = float(unclamp(np.clip(raw.sum() / dof.sum(), MIN_S2, 0.99 * RESID_CLAMP**2)))
    # error of the clamped mean square (DP noise, and its sampling variance as if chi-square),
    # carried through the unclamping by the delta method
    d_m = (stats.noise_var[f"resid:{name}"] + 2 * np.maximum(m, MIN_S2) ** 2 * dof) / dof**2
    slope = 0.01 * Tg / (clamped_square(1.01 * Tg) - clamped_square(Tg))
    d = d_m * slope**2
    has = dof >= MIN_GROUP_N
    T, T_var = fh_posterior(Tg, d, np.full(G, pooled), has, f"{name}[T]", diag, min_n=MIN_LEVELS_A)
    return np.clip(T, MIN_S2, MAX_T), T_var, w


def clamped_square(s2: np.ndarray) -> np.ndarray:
    """E[min(X^2, c^2)] for X ~ N(0, s2), c = RESID_CLAMP."""
    s = np.sqrt(s2)
    t = RESID_CLAMP / s
    inside = s2 * (2 * norm.cdf(t) - 1 - 2 * t * norm.pdf(t))
    return inside + RESID_CLAMP**2 * 2 * norm.sf(t)


def unclamp(m) -> np.ndarray:
    """The variance s2 of a centred normal whose clamped square has mean m (bisection on log
    s2, up to MAX_T): the residuals were clamped to +-RESID_CLAMP before summing."""
    m = np.asarray(m, dtype=float)
    lo, hi = np.full(m.shape, np.log(MIN_S2 / 2)), np.full(m.shape, np.log(MAX_T))
    for _ in range(50):
        mid = (lo + hi) / 2
        up = clamped_square(np.exp(mid)) < m
        lo, hi = np.where(up, mid, lo), np.where(up, hi, mid)
    return np.exp((lo + hi) / 2)


def f_posterior(fit: MeanFit) -> tuple[np.ndarray, np.ndarray]:
    """Grid and posterior probabilities of the split f: flat prior on (0, 1), the likelihood of
    the direct estimates' residuals y - prior ~ N(0, A_g(f) + sigma_g^2(f) / n + N)."""
    grid = (np.arange(A_GRID) + 0.5) / A_GRID
    r = (fit.y - fit.prior)[fit.has]
    ll = np.zeros(A_GRID)
    for i, f in enumerate(grid):
        A, s2 = fit.components(f)
        v = (A + s2 / fit.n + fit.noise)[fit.has]
        ll[i] = -0.5 * float(np.sum(np.log(v) + r * r / v))
    p = np.exp(ll - ll.max())
    return grid, p / p.sum()
