"""Texture of numeric outcomes: the pooled distribution of standardised residuals.

Residuals of the continuous part on the link scale, r = (z - a - f'b - d_c) / s_c, pooled
over cells, define one quantile function per outcome (design-weighted, renormalised to mean
0 and sd 1 so the cell location and scale keep their meaning). Skew and heavy tails on the
link scale come from the data, not from a normal assumption; values beyond the pooled range
are not generated. The sampler's use of it (``grid_quantile``) is elementwise per row, so
one cell sampled alone and many cells sampled in one batch give bit-identical values.
"""

from __future__ import annotations

import numpy as np


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
