"""Independent numpy references for the design layer, written from STATS.md, not from the SQL.

The SQL works on per-cell moments; these work on units (np.bincount over unit arrays), so an
agreement to 1e-6 checks the algebra of the SQL, not a copy of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd


def codes(*cols: pd.Series) -> tuple[np.ndarray, list]:
    """Integer codes of the combinations of some columns, and the combinations (as '|'-joined keys)."""
    if not cols:
        raise ValueError("need a column")
    key = cols[0].astype(str)
    for c in cols[1:]:
        key = key + "|" + c.astype(str)
    cat = pd.Categorical(key)
    return np.asarray(cat.codes), list(cat.categories)


@dataclass
class Margin:
    """A count margin (x is None) or a known total of x, over categories given by unit codes."""

    codes: np.ndarray  # category code of every unit
    target: np.ndarray  # target per category code
    count_target: np.ndarray | None = None  # category counts, for a total (held by the step)
    x: int | None = None  # column of X for a total


@dataclass
class RakeResult:
    weight: np.ndarray
    g: np.ndarray
    iterations: int
    max_rel_error: float
    history: list = field(default_factory=list)


def _relerr(total: np.ndarray, target: np.ndarray) -> np.ndarray:
    out = np.abs(total - target) / np.where(target == 0, 1.0, np.abs(target))
    return np.where(target == 0, (np.abs(total) > 0).astype(float), out)


def rake(
    d: np.ndarray,
    counts: list[Margin],
    totals: list[Margin] | None = None,
    X: np.ndarray | None = None,
    cell: np.ndarray | None = None,
    tol: float = 1e-6,
    max_iter: int = 100,
    lower: float = 0.0,
    upper: float | None = None,
) -> RakeResult:
    """Raking of one group (wave) by the algorithm of STATS.md, on units.

    Count margins: every unit of category k is scaled by T_k / sum_k w, then g = w/d is clipped to
    [lower, upper]. Known totals of x_a (totals): within each category, the linear (chi-square)
    step w += d (l0 + l1 x) that meets the category count and total. g of a unit is kept as
    alpha_cell + beta_cell . x (the documented weight family); with totals the bounds clip the
    range of g over the box of the cell's x values. Stops after the first sweep whose largest
    relative margin error is <= tol, or after max_iter sweeps.
    """
    totals = totals or []
    n = d.shape[0]
    A = 0 if X is None else X.shape[1]
    X = np.zeros((n, 0)) if X is None else np.where(np.isnan(X), 0.0, X)
    cell = np.zeros(n, dtype=int) if cell is None else cell
    n_cells = int(cell.max()) + 1
    alpha = np.ones(n_cells)
    beta = np.zeros((n_cells, A))
    lo = np.full((n_cells, A), np.inf)
    hi = np.full((n_cells, A), -np.inf)
    for a in range(A):
        np.minimum.at(lo[:, a], cell, X[:, a])
        np.maximum.at(hi[:, a], cell, X[:, a])
    mid, rad = (lo + hi) / 2, (hi - lo) / 2

    def g_units() -> np.ndarray:
        return alpha[cell] + (beta[cell] * X).sum(axis=1) if A else alpha[cell]

    def clip() -> None:
        nonlocal alpha, beta
        if A == 0:
            alpha = np.maximum(alpha, lower)
            if upper is not None:
                alpha = np.minimum(alpha, upper)
            return
        gm = alpha + (beta * mid).sum(axis=1)
        h = (np.abs(beta) * rad).sum(axis=1)
        gmc = np.maximum(gm, lower)
        if upper is not None:
            gmc = np.minimum(gmc, upper)
        hc = np.minimum(h, gmc - lower)
        if upper is not None:
            hc = np.minimum(hc, upper - gmc)
        k = np.where(h > hc, hc / np.where(h > 0, h, 1.0), 1.0)
        changed = (k != 1.0) | (gm != gmc)
        new_beta = beta * k[:, None]
        new_alpha = gmc - (new_beta * mid).sum(axis=1)
        alpha = np.where(changed, new_alpha, alpha)
        beta = new_beta

    def error() -> float:
        w = d * g_units()
        errs = []
        for m in counts:
            tot = np.bincount(m.codes, weights=w, minlength=len(m.target))
            present = np.bincount(m.codes, minlength=len(m.target)) > 0
            errs.append(_relerr(tot, m.target)[present])
        for t in totals:
            tot = np.bincount(t.codes, weights=w * X[:, t.x], minlength=len(t.target))
            present = np.bincount(t.codes, minlength=len(t.target)) > 0
            errs.append(_relerr(tot, t.target)[present])
        return float(np.concatenate(errs).max())

    err = error()
    history = [err]
    it = 0
    while err > tol and it < max_iter:
        it += 1
        for m in counts:
            w = d * g_units()
            tot = np.bincount(m.codes, weights=w, minlength=len(m.target))
            f = np.where(tot > 0, m.target / np.where(tot > 0, tot, 1.0), 1.0)
            # the factor of a cell is its category's (a cell lies in one category of each margin)
            cat_of_cell = np.zeros(n_cells, dtype=int)
            cat_of_cell[cell] = m.codes
            alpha = alpha * f[cat_of_cell]
            beta = beta * f[cat_of_cell][:, None]
            clip()
        for t in totals:
            w = d * g_units()
            x = X[:, t.x]
            k = len(t.target)
            a00 = np.bincount(t.codes, weights=d, minlength=k)
            a01 = np.bincount(t.codes, weights=d * x, minlength=k)
            a11 = np.bincount(t.codes, weights=d * x * x, minlength=k)
            r0 = t.count_target - np.bincount(t.codes, weights=w, minlength=k)
            swx = np.bincount(t.codes, weights=w * x, minlength=k)
            r1 = t.target - swx
            det = a00 * a11 - a01 * a01
            safe = np.where(det != 0, det, 1.0)
            l0 = np.where(det != 0, (a11 * r0 - a01 * r1) / safe, 0.0)
            l1 = np.where(det != 0, (a00 * r1 - a01 * r0) / safe, 0.0)
            ratio = det <= 1e-12 * a00 * a11
            f = np.where(swx != 0, t.target / np.where(swx != 0, swx, 1.0), 1.0)
            cat_of_cell = np.zeros(n_cells, dtype=int)
            cat_of_cell[cell] = t.codes
            kc = cat_of_cell
            new_alpha = np.where(ratio[kc], alpha * f[kc], alpha + l0[kc])
            new_beta = beta * np.where(ratio[kc], f[kc], 1.0)[:, None]
            new_beta[:, t.x] = np.where(ratio[kc], beta[:, t.x] * f[kc], beta[:, t.x] + l1[kc])
            alpha, beta = new_alpha, new_beta
            clip()
        err = error()
        history.append(err)
    g = g_units()
    return RakeResult(d * g, g, it, err, history)


def taylor(
    y: np.ndarray,
    w: np.ndarray,
    in_domain: np.ndarray,
    stratum: np.ndarray,
    n_pop_stratum: dict,
    measure: str,
    x: np.ndarray | None = None,
    known_x: float | None = None,
) -> tuple[float, float, int]:
    """Estimate and linearised SE (STATS.md) of one domain over all respondents of a wave.

    y may hold NaN (item nonresponse: such units are outside the domain but stay in n_h).
    measure: mean (Hajek), total (sum w y) or ratio ((sum w y / sum w x) * known_x).
    A stratum with one respondent adds (1 - f_h) z_i^2 (centred on the sample mean of z, 0).
    """
    ok = in_domain & ~np.isnan(y)
    if x is not None:
        ok &= ~np.isnan(x)
    y0 = np.where(ok, y, 0.0)
    wd = np.where(ok, w, 0.0)
    n_dom = int(ok.sum())
    if measure == "total":
        est = float((wd * y0).sum())
        z = wd * y0
    elif measure == "mean":
        B = wd.sum()
        est = float((wd * y0).sum() / B)
        z = wd * (y0 - est) / B
    elif measure == "ratio":
        x0 = np.where(ok, x, 0.0)
        B = (wd * x0).sum()
        R = (wd * y0).sum() / B
        est = float(R * known_x)
        z = known_x * wd * (y0 - R * x0) / B
    else:
        raise ValueError(measure)
    h, inv = np.unique(stratum, return_inverse=True)
    n_h = np.bincount(inv)
    f = n_h / np.array([n_pop_stratum[s] for s in h], dtype=float)
    zbar = np.bincount(inv, weights=z) / n_h
    ss = np.bincount(inv, weights=(z - zbar[inv]) ** 2)
    lonely = np.bincount(inv, weights=z**2)  # a single unit is centred on 0, the mean of z
    var = float(
        np.where(n_h >= 2, (1 - f) * n_h / np.maximum(n_h - 1, 1) * ss, (1 - f) * lonely).sum()
    )
    return est, float(np.sqrt(max(var, 0.0))), n_dom
