"""Texture of numeric outcomes: the distribution of standardised residuals, given the location.

Residuals of the continuous part on the link scale, r = (z - a - f'b - d_c) / s_c, pooled
over cells, define the quantile functions of an outcome (design-weighted). Skew and heavy
tails on the link scale come from the data, not from a normal assumption; values beyond the
range of a record's bin (below) are not generated.

The residuals' shape and spread may change with the location: ages given a household's
composition are bimodal where the household holds children and parents and not where it
holds one pensioner; the spread of a log income differs between the young and the middle-aged.
So a survey with enough answers has its residuals split into bins of their fitted location
eta = a + f'b + d_c (weighted quantiles; up to ``MAX_BINS``, each with a Kish effective size
of ``MIN_BIN_N`` or more), each bin its own quantile function, centred on its own mean (so a
cell's location keeps its meaning whatever bins its records fall in) and keeping its spread
relative to the others (the bins' mean variance is 1, so the cell scale keeps its meaning). A
record draws its residual from the bin of its own location. A survey too small for two bins has
one quantile function of mean 0 and sd 1 over every residual. The spread changes at a bin's
edge in one step.

The cell scale s_c is fitted from the cell's residuals whatever their bins, so it already holds
the spread of the bins its answers lie in. A cell's draws are therefore divided by
kappa_c = sqrt(sum_i w_i v_b(i) / sum_i w_i) over its answers (v_b the relative variance of bin
b, ``Texture.cell_sd``): the cell keeps its fitted spread s_c, and within it the spread still
follows the location. Without that, a cell whose answers all lie in a wide bin counted the
width twice (a planted world with residual sd 0.3 below and 1.0 above a predictor's 0: the wide
cells' answer-scale means 4-13% too high). A cell without answers takes kappa = 1 (its s_c
comes from the pooled model, which is the bins' average).

The sampler's use (``Texture.quantile``) is elementwise per row, so one cell sampled alone
and many cells sampled in one batch give bit-identical values.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: most location bins of an outcome's residuals
MAX_BINS = 5
#: least Kish effective number of answers in a bin
MIN_BIN_N = 400


def weighted_quantile_grid(r: np.ndarray, w: np.ndarray, n_points: int = 1025):
    """(P, Q): a standardised quantile function of the weighted sample ``r``.

    P is denser in the tails (logit-spaced) and includes 0 and 1 (the sample's extremes).
    """
    ok = np.isfinite(r) & np.isfinite(w) & (w > 0)
    r, w = r[ok], w[ok]
    if r.size < 2 or np.ptp(r) == 0:
        p = np.array([0.0, 0.5, 1.0])
        return p, np.array([-1.0, 0.0, 1.0]) * np.sqrt(1.5)
    P, Q = _raw_grid(r, w, n_points)
    mean, sd = _piecewise_moments(P, Q)
    return P, (Q - mean) / sd


def _raw_grid(r: np.ndarray, w: np.ndarray, n_points: int = 1025):
    """(P, Q) of the weighted sample ``r`` on its own scale (``weighted_quantile_grid``)."""
    if r.size < 2 or np.ptp(r) == 0:  # a bin whose residuals are all alike: no spread
        p = np.linspace(0.0, 1.0, n_points)
        return p, np.full(n_points, float(r[0]) if r.size else 0.0)
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
    return P, np.maximum.accumulate(Q)


def _piecewise_moments(P: np.ndarray, Q: np.ndarray) -> tuple[float, float]:
    """Mean and sd of Q(U), U ~ Uniform(0,1), Q linear between grid points."""
    dp = np.diff(P)
    a, b = Q[:-1], Q[1:]
    m1 = float(np.sum(dp * (a + b) / 2))
    m2 = float(np.sum(dp * (a * a + a * b + b * b) / 3))
    return m1, float(np.sqrt(max(m2 - m1 * m1, 1e-12)))


@dataclass(frozen=True)
class Texture:
    """An outcome's residual quantile functions: bin k (locations between edges[k - 1] and
    edges[k]) has the grid (P[k], Q[k])."""

    edges: np.ndarray  # (K - 1,) link-scale location cut points
    P: np.ndarray  # (K, points)
    Q: np.ndarray  # (K, points)
    var: np.ndarray  # (K,) each bin's variance (their weighted mean is 1)

    def bins(self, eta: np.ndarray) -> list[np.ndarray] | None:
        """Each bin's rows (their positions) for locations ``eta``; None when there is one bin.
        Positions, not masks: the sampler reads and writes each bin's rows three times, and a
        take by position is several times faster than a mask of scattered rows."""
        if len(self.P) == 1:
            return None
        b = _bin_index(self.edges, eta)
        return [np.flatnonzero(b == k) for k in range(len(self.P))]

    @staticmethod
    def _interp(x: np.ndarray, bins, xp: np.ndarray, fp: np.ndarray) -> np.ndarray:
        if bins is None:
            return np.interp(x, xp[0], fp[0])
        out = np.empty(np.shape(x))
        for k, rows in enumerate(bins):
            out[rows] = np.interp(np.take(x, rows), xp[k], fp[k])
        return out

    def cell_sd(self, eta: np.ndarray, w: np.ndarray, g: np.ndarray, n_groups: int) -> np.ndarray:
        """The bin sd kappa per group: the root of the weighted mean bin variance over the
        answers with fitted locations ``eta``, weights ``w`` and groups ``g``; 1 for a group
        without answers (and for every group when there is one bin)."""
        if len(self.P) == 1:
            return np.ones(n_groups)
        ok = np.isfinite(eta) & np.isfinite(w) & (w > 0)
        v = self.var[_bin_index(self.edges, eta[ok])]
        sw = np.bincount(g[ok], weights=w[ok], minlength=n_groups)
        swv = np.bincount(g[ok], weights=w[ok] * v, minlength=n_groups)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(sw > 0, np.sqrt(swv / sw), 1.0)

    def cdf(self, r: np.ndarray, bins) -> np.ndarray:
        """Position of each row's residual r in the distribution of its bin (``bins``)."""
        return self._interp(r, bins, self.Q, self.P)

    def quantile(self, v: np.ndarray, bins) -> np.ndarray:
        """Residual at position v of each row's bin (``bins``)."""
        return self._interp(v, bins, self.P, self.Q)


def texture(r: np.ndarray, w: np.ndarray, eta: np.ndarray) -> Texture:
    """The residuals' quantile functions by bins of their fitted location ``eta`` (module
    docstring); one bin when the answers are too few for two."""
    ok = np.isfinite(r) & np.isfinite(w) & (w > 0) & np.isfinite(eta)
    r, w, eta = r[ok], w[ok], eta[ok]
    for k in range(_n_bins(w), 1, -1):
        edges = _edges(eta, w, k)
        bins = _bin_index(edges, eta)
        if len(edges) == k - 1 and all(_kish(w[bins == j]) >= MIN_BIN_N for j in range(k)):
            return _binned(r, w, bins, edges)
    P, Q = weighted_quantile_grid(r, w)
    return Texture(np.zeros(0), P[None, :], Q[None, :], np.ones(1))


def _bin_index(edges: np.ndarray, eta: np.ndarray) -> np.ndarray:
    """The bin of each location: k for edges[k - 1] <= eta < edges[k]."""
    return np.searchsorted(edges, eta, side="right")


def _kish(w: np.ndarray) -> float:
    return float(w.sum() ** 2 / (w * w).sum()) if w.size else 0.0


def _n_bins(w: np.ndarray) -> int:
    return int(min(MAX_BINS, max(1, _kish(w) // MIN_BIN_N))) if w.size else 1


def _edges(eta: np.ndarray, w: np.ndarray, k: int) -> np.ndarray:
    """The weighted quantiles of ``eta`` that cut it into k bins of equal weight, without
    repeats (fewer than k - 1 where eta has ties)."""
    order = np.argsort(eta, kind="stable")
    cw = np.cumsum(w[order])
    q = np.interp(np.arange(1, k) / k * cw[-1], cw, eta[order])
    return np.unique(q)


def _binned(r: np.ndarray, w: np.ndarray, bins: np.ndarray, edges: np.ndarray) -> Texture:
    """Each bin's grid centred on its mean; the bins' weighted mean variance scaled to 1."""
    grids, share, var = [], [], []
    for j in range(len(edges) + 1):
        rows = bins == j
        P, Q = _raw_grid(r[rows], w[rows])
        mean, sd = _piecewise_moments(P, Q)
        grids.append((P, Q - mean))
        share.append(w[rows].sum())
        var.append(sd * sd)
    scale2 = np.average(var, weights=share)
    P = np.stack([g[0] for g in grids])
    Q = np.stack([g[1] for g in grids]) / np.sqrt(scale2)
    return Texture(edges, P, Q, np.asarray(var) / scale2)
