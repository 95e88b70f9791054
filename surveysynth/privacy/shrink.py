"""Fay-Herriot shrinkage with known error variances, shared by the DP fit's shares, means and
variance components (docs/privacy.md)."""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar

#: A (the cells' variance around their prior) is estimated from this many direct estimates
MIN_CELLS_A = 30
#: a margin's A (its levels' spread around the wave's overall value) is estimated from this many
#: levels with a direct estimate: margins are large, their noise small, and a dimension of few
#: levels (the demo's 4 size bands x 4 waves) must keep its departures
MIN_LEVELS_A = 3


def fh_posterior(
    y, D, prior, has, label: str, diag: list, V=0.0, A_few: float = 0.0, min_n=MIN_CELLS_A
) -> tuple[np.ndarray, np.ndarray]:
    """Posterior mean and variance of every cell's theta under theta_c = prior_c + u_c,
    u_c ~ N(0, A), y_c = theta_c + e_c, e_c ~ N(0, D_c) with D_c known (cells with ``has``);
    V_c, the prior's own error variance, is added to A. With fewer than ``min_n`` direct
    estimates A is not estimable and ``A_few`` stands in."""
    V = np.broadcast_to(np.asarray(V, dtype=float), np.shape(y))
    r = np.where(has, y - prior, 0.0)
    A = adjusted_ml(r[has], D[has] + V[has]) if has.sum() >= min_n else A_few
    P = A + V
    gamma = np.where(has, P / np.maximum(P + D, 1e-300), 0.0)
    mean = prior + gamma * r
    var = np.where(has, gamma * D, P)
    diag.append({"parameter": label, "A": float(A), "n_direct": int(has.sum())})
    return mean, var


def adjusted_ml(r: np.ndarray, D: np.ndarray) -> float:
    """A maximising the likelihood of the residuals r ~ N(0, A + D) times A (the adjustment of
    Li and Lahiri 2010): never 0, so a prior the noisy cells cannot refute is not taken as exact
    and the cells without a direct estimate keep the spread of the cells around it."""
    scale = max(float(np.mean(r * r)), float(np.median(D)), 1e-12)

    def neg(t: float) -> float:
        v = np.exp(t) + D
        return 0.5 * float(np.sum(np.log(v) + r * r / v)) - t

    res = minimize_scalar(
        neg,
        bounds=(np.log(scale * 1e-8), np.log(scale * 10)),
        method="bounded",
        options={"xatol": 1e-4},
    )
    return float(np.exp(res.x))
