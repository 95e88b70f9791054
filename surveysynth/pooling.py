"""Partial pooling of cell x wave parameters (empirical / hierarchical Bayes).

Model, per parameter on its link scale (logit for shares, log for scales, the outcome's
scale for locations), for cell x wave c with direct estimate theta_hat_c::

    theta_hat_c = theta_c + e_c,          e_c ~ N(0, psi_c)        (psi_c known, smoothed)
    theta_c     = beta0 + sum_g u_g[l_g(c)] + v_c,   u_g[l] ~ N(0, tau2_g),  v_c ~ N(0, sigma_v2)

The terms g are the main effects of every cell dimension and of the wave, and the pooled
two-way interactions of every pair (dimension x dimension pooled over the other
dimensions and the waves; dimension x wave), plus the cell pooled over waves when there
are at least three dimensions. The prior mean m_c = beta0 + sum_g u_g is thus a
hierarchical model of the cell dimensions and wave; v_c is what is left to the cell.

Fitting is empirical Bayes by an EM algorithm with mean-field (backfitting) E-steps for
the crossed random effects: each term's effects are posterior means given the others
(ridge with penalty 1/tau2_g), tau2_g and sigma_v2 are updated from the expected squared
effects. All parameters are fitted at once (columns of one matrix), so the cost does not
grow with the number of respondents.

Posterior of a cell (Fay-Herriot / EBLUP form, with a g2-like term for the prior's
uncertainty a_c = sum_g Var(u_g[l_g(c)] | data)):

    gamma_c = sigma_v2 / (sigma_v2 + psi_c)
    E[theta_c]   = m_c + gamma_c (theta_hat_c - m_c)
    Var[theta_c] = gamma_c psi_c + (1 - gamma_c)^2 a_c           (cells with data)
    E[theta_c]   = m_c,  Var[theta_c] = sigma_v2 + a_c           (cells without data)

A cell with 2 respondents (large psi) leans on the prior; a cell with 200 speaks for
itself. sigma_v2 estimated as ~0 collapses every cell to the prior model; the share of
such cells is reported in the diagnostics.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.special import expit, logit

log = logging.getLogger("surveysynth")

VAR_FLOOR = 1e-8


# ----------------------------------------------------------------------- direct estimates
def group_weights(g: np.ndarray, w: np.ndarray, mask: np.ndarray, n_groups: int):
    """Respondent count, sum of weights, Kish effective n per group over ``mask``."""
    wm = np.where(mask, w, 0.0)
    n = np.bincount(g, weights=mask.astype(float), minlength=n_groups)
    sw = np.bincount(g, weights=wm, minlength=n_groups)
    sw2 = np.bincount(g, weights=wm * wm, minlength=n_groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        n_eff = np.where(sw2 > 0, sw * sw / np.where(sw2 > 0, sw2, 1.0), 0.0)
    return n, sw, n_eff


def hajek_share(g: np.ndarray, w: np.ndarray, y: np.ndarray, mask: np.ndarray, n_groups: int):
    """Hajek share of y (0/1) per group over ``mask``: (p_hat, n, n_eff); nan without data."""
    n, sw, n_eff = group_weights(g, w, mask, n_groups)
    sy = np.bincount(g, weights=np.where(mask, w * y, 0.0), minlength=n_groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = np.where(sw > 0, sy / np.where(sw > 0, sw, 1.0), np.nan)
    return p, n, n_eff


def logit_direct(
    p_hat: np.ndarray, n_eff: np.ndarray, toward: np.ndarray | float = 0.5
) -> tuple[np.ndarray, np.ndarray]:
    """Link-scale direct estimate of a share and its sampling variance.

    One pseudo-observation at ``toward`` (0.5 in the first pass, the prior mean after)
    keeps 0/1 shares finite: p~ = (p_hat n_eff + toward) / (n_eff + 1). Variance by the
    delta method with Kish's n_eff: psi = 1 / ((n_eff + 1) p~ (1 - p~)).
    """
    ok = np.isfinite(p_hat) & (n_eff > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        pt = (np.where(ok, p_hat, 0.5) * n_eff + toward) / (n_eff + 1.0)
        pt = np.clip(pt, 1e-6, 1 - 1e-6)
        theta = np.where(ok, logit(pt), np.nan)
        psi = np.where(ok, 1.0 / ((n_eff + 1.0) * pt * (1 - pt)), np.nan)
    return theta, psi


def smoothed_logit_psi(n_eff: np.ndarray, p_model: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """Sampling variance from the model's share instead of the cell's own (smoothed psi):
    removes the correlation between a cell's estimate and its weight in the pooling."""
    p = np.clip(p_model, 1e-4, 1 - 1e-4)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(observed, 1.0 / ((n_eff + 1.0) * p * (1 - p)), np.nan)


def weighted_moments(g: np.ndarray, w: np.ndarray, z: np.ndarray, mask: np.ndarray, n_groups: int):
    """Per group over ``mask``: (mean, unbiased-ish variance, n, n_eff) of z, weighted.
    The variance uses the reliability-weights correction sum w / (sum w - sum w^2/sum w),
    i.e. n_eff / (n_eff - 1); nan below two respondents."""
    n, sw, n_eff = group_weights(g, w, mask, n_groups)
    wz = np.where(mask, w * z, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(sw > 0, np.bincount(g, weights=wz, minlength=n_groups) / sw, np.nan)
        dev = np.where(mask, z - mean[g], 0.0)
        ss = np.bincount(g, weights=np.where(mask, w * dev * dev, 0.0), minlength=n_groups)
        var = np.where((n >= 2) & (n_eff > 1.0), ss / sw * n_eff / (n_eff - 1.0), np.nan)
    return mean, var, n, n_eff


# ----------------------------------------------------------------------- pooling terms
def pooling_terms(
    table: pd.DataFrame, dims: Sequence[str], wave: str, interactions: bool = True
) -> dict[str, np.ndarray]:
    """Integer level codes of every prior term for the rows (cell x wave) of ``table``."""
    waves_vary = table[wave].nunique() > 1
    factors = list(dims) + ([wave] if waves_vary else [])
    sets: list[tuple[str, ...]] = [(f,) for f in factors]
    if interactions:
        sets += [tuple(p) for p in itertools.combinations(factors, 2)]
        if waves_vary and len(dims) >= 3:
            sets.append(tuple(dims))
    full = set(factors)
    terms: dict[str, np.ndarray] = {}
    for s in sets:
        if set(s) == full and len(factors) > 1:
            continue  # that is the cell x wave effect v_c itself
        key = " x ".join(s)
        if len(s) == 1:
            codes, _ = pd.factorize(table[s[0]], sort=True)
        else:
            codes = table.groupby(list(s), sort=True, dropna=False).ngroup().to_numpy()
        terms[key] = np.asarray(codes, dtype=np.int64)
    return terms


# ----------------------------------------------------------------------- the fit
@dataclass
class PoolingResult:
    """Per cell x wave (rows) and parameter (columns)."""

    post_mean: np.ndarray
    post_sd: np.ndarray
    prior_mean: np.ndarray
    prior_var: np.ndarray
    gamma: np.ndarray
    sigma_v2: np.ndarray
    tau2: dict[str, np.ndarray]
    beta0: np.ndarray
    iterations: int
    converged: bool
    diagnostics: pd.DataFrame = field(default_factory=pd.DataFrame)


def fit_pooled(
    theta_hat: np.ndarray,
    psi: np.ndarray,
    terms: Mapping[str, np.ndarray],
    names: Sequence[str] | None = None,
    default: np.ndarray | float = 0.0,
    max_iter: int = 400,
    tol: float = 1e-6,
    progress_seconds: float = 5.0,
) -> PoolingResult:
    """Empirical-Bayes fit of the hierarchical prior for every column of ``theta_hat``.

    ``theta_hat`` and ``psi`` are (cells x params); nan marks a cell without a direct
    estimate. A parameter without any direct estimate gets ``default`` and zero spread.
    """
    theta_hat = np.asarray(theta_hat, dtype=float)
    psi = np.asarray(psi, dtype=float)
    if theta_hat.ndim == 1:
        theta_hat, psi = theta_hat[:, None], psi[:, None]
    n_cells, n_par = theta_hat.shape
    obs = np.isfinite(theta_hat) & np.isfinite(psi) & (psi > 0)
    y = np.where(obs, theta_hat, 0.0)
    ps = np.where(obs, psi, 1.0)
    n_obs = obs.sum(axis=0)
    has_any = n_obs > 0
    cnt = np.maximum(n_obs, 1)

    mats = {
        k: sparse.csr_matrix(
            (np.ones(n_cells), (c, np.arange(n_cells))), shape=(int(c.max()) + 1, n_cells)
        )
        for k, c in terms.items()
    }
    codes = dict(terms)

    ybar = (y * obs).sum(0) / cnt
    var_y = np.maximum(((y - ybar) ** 2 * obs).sum(0) / cnt, 1e-4)
    sigma_v2 = 0.5 * var_y
    tau2 = {k: var_y / (len(terms) + 1.0) for k in terms}
    u = {k: np.zeros((mats[k].shape[0], n_par)) for k in terms}
    uvar = {k: np.tile(tau2[k], (mats[k].shape[0], 1)) for k in terms}
    w = obs / (ps + sigma_v2)
    beta0 = (w * y).sum(0) / np.maximum(w.sum(0), 1e-300)
    fitted = np.tile(beta0, (n_cells, 1))

    t0 = last = time.monotonic()
    converged = False
    it = 0
    for it in range(1, max_iter + 1):
        old = np.concatenate([sigma_v2, *tau2.values()])
        w = obs / (ps + sigma_v2)
        sw = np.maximum(w.sum(0), 1e-300)
        step = (w * (y - fitted)).sum(0) / sw
        beta0 = beta0 + step
        fitted = fitted + step
        max_move = np.abs(step).max(initial=0.0)
        for k, mat in mats.items():
            c = codes[k]
            contrib = u[k][c]
            partial = y - fitted + contrib
            den = mat @ w
            num = mat @ (w * partial)
            prec = den + 1.0 / tau2[k]
            new = num / prec
            fitted = fitted + new[c] - contrib
            max_move = max(max_move, np.abs(new - u[k]).max(initial=0.0))
            u[k] = new
            uvar[k] = 1.0 / prec
            has = den > 0
            nh = np.maximum(has.sum(0), 1)
            tau2[k] = np.maximum(((new * new + uvar[k]) * has).sum(0) / nh, VAR_FLOOR)
        e = y - fitted
        gam = sigma_v2 / (sigma_v2 + ps)
        sigma_v2 = np.maximum(((gam * gam * e * e + gam * ps) * obs).sum(0) / cnt, VAR_FLOOR)
        new_par = np.concatenate([sigma_v2, *tau2.values()])
        rel = np.abs(new_par - old) / np.maximum(old, 1e-6)
        if max_move < tol and rel.max(initial=0.0) < 1e-4:
            converged = True
            break
        now = time.monotonic()
        if now - last > progress_seconds:
            log.info("pooling: EM iteration %d, %.1fs elapsed", it, now - t0)
            last = now

    prior_mean = np.tile(beta0, (n_cells, 1))
    prior_var = np.tile(1.0 / np.maximum((obs / (ps + sigma_v2)).sum(0), 1e-300), (n_cells, 1))
    for k, c in codes.items():
        prior_mean = prior_mean + u[k][c]
        prior_var = prior_var + uvar[k][c]
    gamma = np.where(obs, sigma_v2 / (sigma_v2 + ps), 0.0)
    post_mean = np.where(obs, prior_mean + gamma * (theta_hat - prior_mean), prior_mean)
    post_var = np.where(
        obs, gamma * ps + (1 - gamma) ** 2 * prior_var, sigma_v2 + prior_var
    )
    dflt = np.broadcast_to(np.asarray(default, dtype=float), (n_par,))
    post_mean[:, ~has_any] = dflt[~has_any]
    post_var[:, ~has_any] = 0.0
    prior_mean[:, ~has_any] = dflt[~has_any]
    with np.errstate(invalid="ignore"):
        collapsed = np.where(has_any, ((gamma < 0.05) & obs).sum(0) / cnt, np.nan)
    diag = pd.DataFrame(
        {
            "parameter": list(names) if names is not None else [str(i) for i in range(n_par)],
            "n_cells_observed": n_obs,
            "beta0": beta0,
            "sigma_v2": sigma_v2,
            "mean_gamma": np.where(has_any, gamma.sum(0) / cnt, np.nan),
            "share_collapsed_to_prior": collapsed,
            **{f"tau2[{k}]": v for k, v in tau2.items()},
        }
    )
    return PoolingResult(
        post_mean=post_mean,
        post_sd=np.sqrt(np.maximum(post_var, 0.0)),
        prior_mean=prior_mean,
        prior_var=prior_var,
        gamma=gamma,
        sigma_v2=sigma_v2,
        tau2=tau2,
        beta0=beta0,
        iterations=it,
        converged=converged,
        diagnostics=diag,
    )


def expit_clip(x: np.ndarray) -> np.ndarray:
    return np.clip(expit(x), 1e-9, 1 - 1e-9)
