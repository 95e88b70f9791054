"""Texture: pooled Gaussian copula and pooled standardised-residual shapes.

Why a copula on cell-standardised scores: the cell model (``pooling``) fixes each
variable's marginal in each cell; what remains to learn is the within-cell shape and the
dependence between variables, and those are stable across cells, so they are learned once
from all respondents pooled. Each respondent's value is mapped to its position u in its
own cell's (shrunken) marginal: a point for continuous values, a uniform draw inside the
value's probability interval for discrete ones (the distributional transform), then to a
normal score Phi^-1(u). The design-weighted correlation of the scores is the copula.
Discrete scores attenuate correlations a little (a polychoric fit would not); nominal
categories enter in their configured level order.

Shapes of positive parts: standardised residuals r = (z - mu_c - b'x) / sigma_c, pooled
over cells, define one quantile function per outcome (design-weighted, renormalised to
mean 0 and sd 1 so mu_c and sigma_c keep their meaning). Skew and heavy tails on the link
scale come from the data, not from a normal assumption; values beyond the pooled range
are not generated.

Every function that the sampler uses is elementwise per row (no BLAS, no reductions
across rows), so one cell sampled alone and many cells sampled in one batch give
bit-identical values.
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtr, ndtri


def weighted_quantile_grid(r: np.ndarray, w: np.ndarray, n_points: int = 1025):
    """(P, Q): a standardised quantile function of the weighted sample ``r``.

    P is denser in the tails (logit-spaced) and includes 0 and 1 (the sample's extremes).
    """
    ok = np.isfinite(r) & np.isfinite(w) & (w > 0)
    r, w = r[ok], w[ok]
    if r.size < 2 or np.ptp(r) == 0:
        p = np.array([0.0, 0.5, 1.0])
        return p, np.array([-1.0, 0.0, 1.0]) * np.sqrt(1.5)
    order = np.argsort(r, kind="mergesort")
    rs, ws = r[order], w[order]
    cw = np.cumsum(ws)
    pos = (cw - 0.5 * ws) / cw[-1]
    pmin = max(0.5 / r.size, 1e-6)
    inner = 1.0 / (
        1.0
        + np.exp(-np.linspace(np.log(pmin / (1 - pmin)), np.log((1 - pmin) / pmin), n_points - 2))
    )
    P = np.concatenate([[0.0], inner, [1.0]])
    Q = np.interp(P, pos, rs)
    Q[0], Q[-1] = rs[0], rs[-1]
    Q = np.maximum.accumulate(Q)
    mean, sd = _piecewise_moments(P, Q)
    return P, (Q - mean) / sd


def _piecewise_moments(P: np.ndarray, Q: np.ndarray) -> tuple[float, float]:
    """Mean and sd of Q(U), U ~ Uniform(0,1), Q linear between grid points."""
    dp = np.diff(P)
    a, b = Q[:-1], Q[1:]
    m1 = float(np.sum(dp * (a + b) / 2))
    m2 = float(np.sum(dp * (a * a + a * b + b * b) / 3))
    return m1, float(np.sqrt(max(m2 - m1 * m1, 1e-12)))


def grid_cdf(r: np.ndarray, P: np.ndarray, Q: np.ndarray) -> np.ndarray:
    """Position of r in the pooled residual distribution (inverse of the grid)."""
    return np.interp(r, Q, P)


def grid_quantile(v: np.ndarray, P: np.ndarray, Q: np.ndarray) -> np.ndarray:
    return np.interp(v, P, Q)


def normal_scores(lo: np.ndarray, hi: np.ndarray, jitter: np.ndarray) -> np.ndarray:
    """Normal score of a value occupying [lo, hi] of its cell's CDF (lo == hi: continuous)."""
    u = lo + jitter * (hi - lo)
    return ndtri(np.clip(u, 1e-6, 1 - 1e-6))


def weighted_correlation(z: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Pairwise-complete, design-weighted Pearson correlation of the columns of ``z``
    (nan = not available), projected to the nearest valid correlation matrix."""
    d = z.shape[1]
    ok = np.isfinite(z)
    zf = np.where(ok, z, 0.0)
    okf = ok.astype(float)
    wk = okf * w[:, None]
    s_w = wk.T @ okf
    s_x = wk.T @ zf
    s_y = s_x.T
    s_xy = (w[:, None] * zf).T @ zf
    s_xx = wk.T @ (zf * zf)
    s_yy = s_xx.T
    with np.errstate(invalid="ignore", divide="ignore"):
        cov = s_xy / s_w - (s_x / s_w) * (s_y / s_w)
        vx = s_xx / s_w - (s_x / s_w) ** 2
        vy = s_yy / s_w - (s_y / s_w) ** 2
        r = cov / np.sqrt(vx * vy)
    r = np.where(np.isfinite(r) & (okf.T @ okf >= 10), r, 0.0)
    np.fill_diagonal(r, 1.0)
    return nearest_correlation(np.clip(r, -0.999, 0.999) * (1 - np.eye(d)) + np.eye(d))


def nearest_correlation(r: np.ndarray, floor: float = 1e-6) -> np.ndarray:
    """Clip eigenvalues at ``floor`` and rescale to unit diagonal (positive definite)."""
    r = (r + r.T) / 2
    vals, vecs = np.linalg.eigh(r)
    fixed = (vecs * np.maximum(vals, floor)) @ vecs.T
    s = np.sqrt(np.diag(fixed))
    out = fixed / np.outer(s, s)
    np.fill_diagonal(out, 1.0)
    return out


def correlate(z: np.ndarray, chol: np.ndarray) -> np.ndarray:
    """x = z L' computed column by column in a fixed order (row-wise deterministic: no BLAS,
    so a row's result does not depend on how many rows are in the batch)."""
    n, d = z.shape
    out = np.empty_like(z)
    for j in range(d):
        acc = np.zeros(n)
        for k in range(j + 1):
            if chol[j, k] != 0.0:
                acc = acc + chol[j, k] * z[:, k]
        out[:, j] = acc
    return out


def uniforms(x: np.ndarray) -> np.ndarray:
    return ndtr(x)
