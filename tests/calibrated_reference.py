"""Independent numpy reference for the calibration-aware linearised variance of direct_estimates
(docs/estimation.md): the g-weighted residuals of R's calibrated designs, computed on the units.

For an estimate with linearised variable z_i (taylor() in design_reference: z_i = w_i (y_i - est)
/ sum w for means, w_i y_i for totals, 0 outside the domain), the calibrated variable is
z~_i = w_i (z_i / w_i - x_i' beta) with beta the base-weighted least-squares fit of z_i / w_i on
the indicators x_i of every count margin's categories: beta = pinv(X' D X) X' D (z / w), D the base
weights. The variance is the stratified formula of STATS.md on z~ (a lonely stratum centred on 0)."""

from __future__ import annotations

import numpy as np


def margin_dummies(*columns: np.ndarray) -> np.ndarray:
    """Indicator columns of every category of every margin (aliased; pinv copes)."""
    blocks = []
    for col in columns:
        levels, inv = np.unique(np.asarray(col).astype(str), return_inverse=True)
        blocks.append(np.eye(len(levels))[inv])
    return np.hstack(blocks)


def item_class_factor(y, w, classes) -> np.ndarray:
    """Per unit: its class's weight over its item respondents' weight (item nonresponse adjusted
    within classes, the cells of direct_estimates); 1 without classes."""
    if classes is None:
        return np.ones(len(w))
    _, inv = np.unique(np.asarray(classes).astype(str), return_inverse=True)
    w_all = np.bincount(inv, weights=w)
    w_obs = np.bincount(inv, weights=np.where(np.isnan(y), 0.0, w))
    a = np.divide(w_all, w_obs, out=np.ones_like(w_all), where=w_obs > 0)
    return a[inv]


def linearised_z(y, w, in_domain, measure, x=None, known_x=None, classes=None):
    """The estimate and z_i of a Hajek mean / share (weights adjusted for item nonresponse within
    ``classes``), total or ratio over item respondents."""
    ok = in_domain & ~np.isnan(y)
    if x is not None:
        ok &= ~np.isnan(x)
    y0 = np.where(ok, y, 0.0)
    a = item_class_factor(y, w, classes) if measure == "mean" else 1.0
    wd = np.where(ok, w * a, 0.0)
    if measure == "total":
        return float((wd * y0).sum()), wd * y0, int(ok.sum())
    if measure == "mean":
        B = wd.sum()
        est = float((wd * y0).sum() / B)
        return est, wd * (y0 - est) / B, int(ok.sum())
    x0 = np.where(ok, x, 0.0)
    B = (wd * x0).sum()
    R = (wd * y0).sum() / B
    return float(R * known_x), known_x * wd * (y0 - R * x0) / B, int(ok.sum())


def stratified_variance(z, stratum, n_pop_stratum: dict) -> float:
    h, inv = np.unique(np.asarray(stratum).astype(str), return_inverse=True)
    n_h = np.bincount(inv)
    f = n_h / np.array([n_pop_stratum[s] for s in h], dtype=float)
    zbar = np.bincount(inv, weights=z) / n_h
    ss = np.bincount(inv, weights=(z - zbar[inv]) ** 2)
    lonely = np.bincount(inv, weights=z**2)
    return float(
        np.where(n_h >= 2, (1 - f) * n_h / np.maximum(n_h - 1, 1) * ss, (1 - f) * lonely).sum()
    )


def calibrated_residuals(z, w, d, X) -> np.ndarray:
    """z~ = w (z / w - X beta), beta the d-weighted least-squares fit of z / w on X."""
    e = z / w
    XtD = X.T * d
    beta = np.linalg.pinv(XtD @ X) @ (XtD @ e)
    return w * (e - X @ beta)


def calibrated_se(z, w, d, X, stratum, n_pop_stratum) -> float:
    zt = calibrated_residuals(z, w, d, X)
    return float(np.sqrt(max(stratified_variance(zt, stratum, n_pop_stratum), 0.0)))


def calibrated_domain(
    y, w, d, X, in_domain, stratum, n_pop_stratum, measure, x=None, known_x=None, classes=None
) -> tuple[float, float, int]:
    """(estimate, calibration-aware SE, item respondents) of one domain: taylor()'s estimate (a
    mean's weights adjusted for item nonresponse within ``classes``) with the variance of the
    calibrated residuals."""
    est, z, n = linearised_z(y, w, in_domain, measure, x, known_x, classes)
    return est, calibrated_se(z, w, d, X, stratum, n_pop_stratum), n


def t975(df: float) -> float:
    """The two-sided 95% t quantile as the SQL reads df (below 2: 1)."""
    from scipy import stats

    return float(stats.t.ppf(0.975, 1.0 if df < 2 else df))


def direct_interval(est, se, df, n_kish, measure, nonneg=True) -> tuple[float, float]:
    """The 95% interval of direct_estimates (docs/estimation.md): Wilson with the design effective
    n and z for shares; t on the log scale for a positive estimate of a non-negative outcome; t
    otherwise."""
    t = t975(df)
    if measure == "share":
        if se == 0 and 0 < est < 1:
            return est, est
        n = est * (1 - est) / se**2 if (0 < est < 1 and se > 0) else n_kish
        t = 1.959963984540054
        a = t * t / n
        centre = (est + a / 2) / (1 + a)
        half = t / (1 + a) * np.sqrt(est * (1 - est) / n + a / (4 * n))
        return max(0.0, centre - half), min(1.0, centre + half)
    if nonneg and est > 0:
        r = t * se / est
        return est * np.exp(-r), est * np.exp(r)
    return est - t * se, est + t * se
