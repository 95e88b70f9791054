"""Fay-Herriot area-level EBLUP: the small-area baseline the augmented estimates are compared with.

Model (Rao & Molina 2015, ch. 6; STATS.md): theta_hat_d = x_d' beta + v_d + e_d, v_d ~ N(0, s2v),
e_d ~ N(0, psi_d) with psi_d treated as known. sigma_v^2 by REML (Fisher scoring, truncated at 0);
EBLUP theta_tilde_d = gamma_d theta_hat_d + (1 - gamma_d) x_d' beta_hat, gamma_d = s2v / (s2v + psi_d);
MSE by Prasad-Rao / Datta-Lahiri: g1 + g2 + 2 g3. With few areas or small between-area variance
REML often returns s2v = 0, and every area collapses to the regression; :func:`fit` reports it.

psi_d comes from a generalised variance function (:func:`smoothed_psi`): the within-area unit
variance s_d^2 is smoothed by a log-linear main-effects regression over areas with at least two
respondents, then psi_d = s_hat_d^2 (1 - n_d / N_d) / n_d, so areas with 2 respondents do not get
the erratic (often zero) variance of their own two values.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd


def design_matrix(df: pd.DataFrame, dims: Sequence[str]) -> np.ndarray:
    """Intercept plus treatment-coded main effects of ``dims`` (first level dropped)."""
    cols = [np.ones(len(df))]
    for d in dims:
        levels = sorted(df[d].astype(str).unique())
        x = df[d].astype(str).to_numpy()
        cols += [(x == lv).astype(float) for lv in levels[1:]]
    return np.column_stack(cols)


@dataclass
class FHFit:
    sigma_v2: float
    beta: np.ndarray
    iterations: int
    converged: bool
    at_zero: bool


def fit(
    theta: np.ndarray, psi: np.ndarray, X: np.ndarray, max_iter: int = 100, tol: float = 1e-8
) -> FHFit:
    """REML estimate of sigma_v^2 by Fisher scoring (Rao & Molina 2015, 6.1.2), truncated at 0."""
    theta = np.asarray(theta, float)
    psi = np.asarray(psi, float)
    # start from the moment (Prasad-Rao) estimator, floored a little above 0
    XtX_inv = np.linalg.pinv(X.T @ X)
    resid = theta - X @ (XtX_inv @ (X.T @ theta))
    m, p = X.shape
    h = np.einsum("ij,jk,ik->i", X, XtX_inv, X)
    s2 = max((resid @ resid - np.sum(psi * (1 - h))) / max(m - p, 1), 1e-6 * np.var(theta) + 1e-12)
    converged = False
    it = 0
    for it in range(1, max_iter + 1):
        score, info = _reml_score(s2, theta, psi, X)
        if s2 == 0.0 and score <= 0:
            converged = True  # the REML likelihood decreases into the interior: maximum at 0
            break
        new = max(s2 + score / info, 0.0)
        if abs(new - s2) < tol * max(1.0, s2):
            s2 = new
            converged = True
            break
        s2 = new
    vinv = 1.0 / (s2 + psi)
    beta = np.linalg.pinv(X.T @ (X * vinv[:, None])) @ (X.T @ (vinv * theta))
    return FHFit(float(s2), beta, it, converged, bool(s2 <= 0.0))


def _reml_score(
    s2: float, theta: np.ndarray, psi: np.ndarray, X: np.ndarray
) -> tuple[float, float]:
    """REML score and Fisher information for sigma_v^2 with P = V^-1 - V^-1 X (X'V^-1 X)^-1 X'V^-1,
    V = diag(s2 + psi), from p x p matrices only (no m x m matrix)."""
    d = 1.0 / (s2 + psi)
    A = np.linalg.pinv(X.T @ (X * d[:, None]))
    X2 = X.T @ (X * (d**2)[:, None])
    X3 = X.T @ (X * (d**3)[:, None])
    Py = d * theta - d * (X @ (A @ (X.T @ (d * theta))))
    tr_p = float(d.sum() - np.trace(A @ X2))
    AX2 = A @ X2
    tr_pp = float(np.sum(d**2) - 2 * np.trace(A @ X3) + np.trace(AX2 @ AX2))
    return -0.5 * tr_p + 0.5 * float(Py @ Py), 0.5 * tr_pp


def eblup(
    theta: np.ndarray,
    psi: np.ndarray,
    X: np.ndarray,
    fitted: FHFit,
) -> tuple[np.ndarray, np.ndarray]:
    """EBLUP and its MSE (g1 + g2 + 2 g3) for the areas of ``theta`` (those with a direct
    estimate)."""
    s2 = fitted.sigma_v2
    gamma = s2 / (s2 + psi)
    synth = X @ fitted.beta
    est = gamma * theta + (1 - gamma) * synth
    vinv = 1.0 / (s2 + psi)
    A = np.linalg.pinv(X.T @ (X * vinv[:, None]))
    g1 = gamma * psi
    g2 = (1 - gamma) ** 2 * np.einsum("ij,jk,ik->i", X, A, X)
    var_s2 = 2.0 / np.sum(vinv**2)  # asymptotic variance of the REML estimate
    g3 = psi**2 / (s2 + psi) ** 3 * var_s2
    return est, g1 + g2 + 2 * g3


def smoothed_psi(n: np.ndarray, N: np.ndarray, s2: np.ndarray, X: np.ndarray) -> np.ndarray:
    """psi_d from a log-linear generalised variance function of the within-area variance."""
    n = np.asarray(n, float)
    ok = (n >= 2) & np.isfinite(s2) & (s2 > 0)
    if ok.sum() > X.shape[1]:
        w = n[ok] - 1
        Xw = X[ok] * np.sqrt(w)[:, None]
        coef = np.linalg.lstsq(Xw, np.log(s2[ok]) * np.sqrt(w), rcond=None)[0]
        resid = np.log(s2[ok]) - X[ok] @ coef
        # back-transform with the smearing factor (Duan 1983)
        smear = float(np.sum(w * np.exp(resid)) / np.sum(w))
        s2_hat = np.exp(X @ coef) * smear
    else:
        s2_hat = np.full(len(n), np.nanmean(np.where(ok, s2, np.nan)))
    fpc = np.clip(1.0 - n / np.asarray(N, float), 0.0, 1.0)
    return s2_hat * fpc / np.maximum(n, 1.0)


def fay_herriot_cells(
    direct: pd.DataFrame, dims: Sequence[str], by: Sequence[str] = ("wave", "indicator")
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """FH EBLUP per group of ``by`` (each indicator x wave is its own model).

    ``direct``: one row per cell x wave x indicator with the cell dims, ``estimate`` (direct, may
    be null), ``n`` (item respondents), ``N`` (population units) and ``s2`` (within-cell unit
    variance of the indicator, null below 2 respondents). Returns (estimates with ``eblup``,
    ``eblup_mse``, ``gamma``; fits with sigma_v2 and whether it is 0)."""
    out, fits = [], []
    for key, g in direct.groupby(list(by), sort=True):
        g = g.copy()
        X = design_matrix(g, dims)
        has = g["estimate"].notna().to_numpy() & (g["n"].to_numpy() >= 1)
        psi = smoothed_psi(g["n"].to_numpy(), g["N"].to_numpy(), g["s2"].to_numpy(dtype=float), X)
        keep = has & np.isfinite(psi) & (psi > 0)
        f = fit(g["estimate"].to_numpy(dtype=float)[keep], psi[keep], X[keep])
        est = np.full(len(g), np.nan)
        mse = np.full(len(g), np.nan)
        e, ms = eblup(g["estimate"].to_numpy(dtype=float)[keep], psi[keep], X[keep], f)
        est[keep], mse[keep] = e, ms
        g["eblup"], g["eblup_mse"], g["psi"] = est, mse, psi
        with np.errstate(invalid="ignore", divide="ignore"):
            g["gamma"] = np.where(keep, f.sigma_v2 / (f.sigma_v2 + psi), np.nan)
        out.append(g)
        key = key if isinstance(key, tuple) else (key,)
        fits.append(
            {
                **dict(zip(by, key)),
                "sigma_v2": f.sigma_v2,
                "at_zero": f.at_zero,
                "iterations": f.iterations,
                "converged": f.converged,
                "n_areas": int(keep.sum()),
            }
        )
    return pd.concat(out, ignore_index=True), pd.DataFrame(fits)
