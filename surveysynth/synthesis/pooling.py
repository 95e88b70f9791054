"""Partial pooling of cell x wave parameters (empirical / hierarchical Bayes).

Model, per parameter on its link scale (logit for shares, log for scales, the outcome's
scale for locations), for cell x wave c with direct estimate theta_hat_c::

    theta_hat_c = theta_c + e_c,          e_c ~ N(0, psi_c)        (psi_c known, smoothed)
    theta_c     = beta0 + sum_g u_g[l_g(c)] + v_c,   u_g[l] ~ t_4(0, tau2_g),  v_c ~ N(0, sigma_v2)

The terms g are the main effects of every cell dimension and of the wave, and the pooled
two-way interactions of every pair (dimension x dimension pooled over the other
dimensions and the waves; dimension x wave), plus the cell pooled over waves when there
are at least three dimensions. The prior mean m_c = beta0 + sum_g u_g is thus a
hierarchical model of the cell dimensions and wave; v_c is what is left to the cell.

The term effects have a Student-t prior (``EFFECT_DF`` = 8 degrees of freedom, as a
scale mixture u_g[l] ~ N(0, tau2_g / lambda_l)): most levels of an interaction are near
zero, and a Gaussian prior would shrink the one large level (microbusinesses of one small
region) toward them; under the t prior a level far out in the tail is shrunk less. With 4
degrees of freedom, crossed terms informed by a few cells could take large effects of
opposite sign that cancel where there are data and add up in an empty cell (Belgian
municipalities: an empty district's income 2.7x its truth); 8 keeps the demo's large
interaction and stops that.

Fitting is empirical Bayes with mean-field (backfitting) E-steps for the crossed random
effects: each term's effects are posterior means given the others (ridge with penalty
lambda_l / tau2_g, lambda_l from the t prior's E-step). The variances are updated by the
MacKay / Harville fixed point, tau2_g = sum_l lambda_l u_l^2 / sum_l (1 - lambda_l
Var(u_l) / tau2_g), and likewise sigma_v2 = sum_c (gamma_c r_c)^2 / sum_c gamma_c (1 - h_c):
the EM update converges sublinearly when a variance is near zero and, capped, stopped far
from the optimum exactly where a large effect mattered. h_c = a_c / (sigma_v2 + psi_c) is
the cell's leverage on its own prior mean (a_c below, capped at 0.9): E[v_c^2 | data]
includes gamma_c^2 a_c, the prior mean's uncertainty, because the prior was fitted with
the cell in it. Without it the terms absorb the cells' own departures: with two crossed
factors of 30 and 4 levels and 84 observed cells, a true sigma_v2 of 0.3 came out at 0.057
on average over 20 worlds (0.276 with it; tests/test_synth_pooling.py). Safeguarded SQUAREM
extrapolation (on log variances) speeds it up. All parameters are fitted at once (columns of
one matrix), so the cost does not grow with the number of respondents. The iterations are
capped (``max_iter``). The term variances tau2_g are plugged in (no uncertainty about them;
sigma_v2 is drawn per implicate, ``variance``, and so are the term effects given tau2_g, from
``effect_var``) and mean-field posterior variances ignore
correlations between crossed effects (on a simulated check the joint variance of the prior
mean came out a little smaller, not larger, than the mean-field sum).
The objective can have more than one local optimum (an effect carried by a coarse term or
spread over the finer levels nested in it); the fit starts every tau2_g at
var(theta_hat) / (number of terms + 1) and does not compare restarts.

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
# Degrees of freedom of the Student-t prior on the term effects (inf: Gaussian). A t prior
# lets one large interaction (microbusinesses of one small region) escape the shrinkage
# that the many near-zero levels of the same term would otherwise impose on it; too heavy a
# tail (4) lets crossed terms take large offsetting effects in small surveys.
EFFECT_DF = 8.0


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
    terms: dict[str, np.ndarray] = {}
    if not len(table):
        return terms
    single = {f: _sorted_codes(table[f]) for f in factors}
    for s in sets:
        key = " x ".join(s)
        codes = single[s[0]]
        for f in s[1:]:  # the groups of s numbered in sorted order, as groupby(sort).ngroup()
            pair = codes * (int(single[f].max()) + 1) + single[f]
            codes = np.unique(pair, return_inverse=True)[1]
        codes = np.asarray(codes, dtype=np.int64).reshape(-1)
        n_lev = int(codes.max()) + 1 if codes.size else 0
        if n_lev <= 1 or n_lev == len(table):
            continue  # no contrast, or the cell x wave effect v_c itself
        if any(_same_partition(codes, c) for c in terms.values()):
            continue  # e.g. region x sector when sector has one level
        terms[key] = codes
    return terms


def _sorted_codes(col: pd.Series) -> np.ndarray:
    """Level codes in sorted level order (nulls, which cell keys never hold, get -1)."""
    return np.asarray(pd.factorize(col, sort=True)[0], dtype=np.int64)


def _same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    na, nb = int(a.max()) + 1, int(b.max()) + 1
    if na != nb:
        return False
    return int(np.unique(a * nb + b).size) == na


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
    effects: dict[str, np.ndarray] = field(default_factory=dict)
    psi_eff: np.ndarray | None = None
    # posterior variances (mean-field) of every term's effects (levels x params) and of the
    # intercept (params): the parts of prior_var, for draws shared by the cells of a level
    effect_var: dict[str, np.ndarray] = field(default_factory=dict)
    beta0_var: np.ndarray | None = None


def fit_pooled(
    theta_hat: np.ndarray,
    psi: np.ndarray,
    terms: Mapping[str, np.ndarray],
    names: Sequence[str] | None = None,
    default: np.ndarray | float = 0.0,
    max_iter: int = 36,
    tol: float = 1e-5,
    progress_seconds: float = 5.0,
    start: PoolingResult | None = None,
    effect_df: float = EFFECT_DF,
    error_df: np.ndarray | None = None,
    stack: _Stack | None = None,
) -> PoolingResult:
    """Empirical-Bayes fit of the hierarchical prior for every column of ``theta_hat``.

    ``theta_hat`` and ``psi`` are (cells x params); nan marks a cell without a direct
    estimate. A parameter without any direct estimate gets ``default`` and zero spread.
    ``error_df`` (cells x params, inf: Gaussian) gives each direct estimate's sampling error a
    Student-t law with those degrees of freedom (``_error_weights``); the effective sampling
    variances it implies are returned as ``psi_eff``. ``stack`` is ``stack_terms(terms,
    cells)`` when the caller fits many parameters on the same terms (built once, not per fit).
    """
    theta_hat = np.asarray(theta_hat, dtype=float)
    psi = np.asarray(psi, dtype=float)
    if theta_hat.ndim == 1:
        theta_hat, psi = theta_hat[:, None], psi[:, None]
    obs = np.isfinite(theta_hat) & np.isfinite(psi) & (psi > 0)
    ps0 = np.where(obs, psi, 1.0)
    edf = np.full_like(ps0, np.inf) if error_df is None else np.asarray(error_df, dtype=float)
    cells = _Cells(theta_hat, np.where(obs, theta_hat, 0.0), obs, ps0, edf)
    st = stack if stack is not None else _Stack.of(terms, theta_hat.shape[0])
    S = _start(st, cells, start)
    # Gaussian errors everywhere: the error weights are all 1 and psi stays as it is
    em_df = edf if np.isfinite(edf).any() else None

    def em_step(S: np.ndarray) -> np.ndarray:
        return _em_step(S, st, cells.y, obs, ps0, em_df, effect_df)

    S, it, converged = _squarem(em_step, S, max_iter, tol, progress_seconds)
    names = list(names) if names is not None else [str(i) for i in range(theta_hat.shape[1])]
    return _posterior(st, S, cells, effect_df, default, names, (it, converged))


@dataclass
class _Cells:
    """The direct estimates as the EM reads them: ``y`` (0 where unobserved), ``obs``, the
    sampling variances ``psi`` (1 where unobserved) and their errors' degrees of freedom."""

    theta_hat: np.ndarray
    y: np.ndarray
    obs: np.ndarray
    psi: np.ndarray
    df: np.ndarray


def _start(st: _Stack, cells: _Cells, start: PoolingResult | None) -> np.ndarray:
    """The EM's starting state: the observed cells' weighted mean as intercept, half their
    variance as sigma_v2 and an equal share of it for every term's tau2, no effects; or the
    state of ``start`` (an earlier fit of the same cells and parameters)."""
    y, obs, ps = cells.y, cells.obs, cells.psi
    if start is not None and start.post_mean.shape == cells.theta_hat.shape:
        return st.pack(
            start.beta0.copy(),
            {k: v.copy() for k, v in start.effects.items()},
            {k: v.copy() for k, v in start.tau2.items()},
            start.sigma_v2.copy(),
        )
    cnt = np.maximum(obs.sum(axis=0), 1)
    ybar = (y * obs).sum(0) / cnt
    var_y = np.maximum(((y - ybar) ** 2 * obs).sum(0) / cnt, 1e-4)
    sigma_v2 = 0.5 * var_y
    tau2 = {k: var_y / (len(st.names) + 1.0) for k in st.names}
    u = {k: np.zeros((m.shape[0], y.shape[1])) for k, m in zip(st.names, st.mats)}
    w = obs / (ps + sigma_v2)
    beta0 = (w * y).sum(0) / np.maximum(w.sum(0), 1e-300)
    return st.pack(beta0, u, tau2, sigma_v2)


def _squarem(em_step, S: np.ndarray, max_iter: int, tol: float, progress_seconds: float):
    """SQUAREM (Varadhan & Roland 2008) around the EM map, a step length per parameter, each
    extrapolation kept only where ``_safeguard`` finds it nearer the fixed point. Returns
    (state, EM steps taken, converged)."""
    t0 = last = time.monotonic()
    converged = False
    it = 0
    while it < max_iter:
        S1 = em_step(S)
        S2 = em_step(S1)
        it += 2
        r = S1 - S
        v = S2 - 2 * S1 + S
        rn = np.sqrt((r * r).sum(0))
        vn = np.sqrt((v * v).sum(0))
        alpha = -np.clip(np.where(vn > 0, rn / np.maximum(vn, 1e-300), 1.0), 1.0, 64.0)
        S_ext = S - 2 * alpha * r + alpha * alpha * v
        ok = np.isfinite(S_ext).all(axis=0)
        S_ext[:, ~ok] = S2[:, ~ok]
        S_new = em_step(S_ext)
        it += 1
        S_new = _safeguard(S_new, S_ext, S2, rn)
        move = np.abs(S_new - S).max(initial=0.0)
        S = S_new
        if np.abs(r).max(initial=0.0) < tol or move < tol:
            converged = True
            break
        now = time.monotonic()
        if now - last > progress_seconds:
            log.info("pooling: EM iteration %d, %.1fs elapsed", it, now - t0)
            last = now
    return S, it, converged


def _posterior(st: _Stack, S: np.ndarray, cells: _Cells, effect_df: float, default, names, run):
    """Every cell's prior and posterior at the fitted state ``S`` (cells without a direct
    estimate get the prior; parameters without any get ``default`` and no spread); ``run`` is
    the EM's (steps taken, converged)."""
    theta_hat, y, obs, ps0, edf = cells.theta_hat, cells.y, cells.obs, cells.psi, cells.df
    n_cells, n_par = theta_hat.shape
    n_obs = obs.sum(axis=0)
    has_any, cnt = n_obs > 0, np.maximum(n_obs, 1)
    mats, codes = dict(zip(st.names, st.mats)), dict(zip(st.names, st.codes))
    beta0, u, tau2, sigma_v2 = st.unpack(S)
    ps = ps0 / _error_weights(_prior_residual(y, beta0, u, codes), ps0, sigma_v2, edf)
    w = obs / (ps + sigma_v2)
    uvar = {
        k: 1.0 / ((mats[k] @ w) + _t_weights(u[k], mats[k] @ w, tau2[k], effect_df) / tau2[k])
        for k in st.names
    }
    prior_mean = np.tile(beta0, (n_cells, 1))
    beta0_var = 1.0 / np.maximum((obs / (ps + sigma_v2)).sum(0), 1e-300)
    prior_var = np.tile(beta0_var, (n_cells, 1))
    for k, c in codes.items():
        prior_mean = prior_mean + u[k][c]
        prior_var = prior_var + uvar[k][c]
    gamma = np.where(obs, sigma_v2 / (sigma_v2 + ps), 0.0)
    post_mean = np.where(obs, prior_mean + gamma * (theta_hat - prior_mean), prior_mean)
    post_var = np.where(obs, gamma * ps + (1 - gamma) ** 2 * prior_var, sigma_v2 + prior_var)
    dflt = np.broadcast_to(np.asarray(default, dtype=float), (n_par,))
    post_mean[:, ~has_any] = dflt[~has_any]
    post_var[:, ~has_any] = 0.0
    prior_mean[:, ~has_any] = dflt[~has_any]
    with np.errstate(invalid="ignore"):
        collapsed = np.where(has_any, ((gamma < 0.05) & obs).sum(0) / cnt, np.nan)
    diag = pd.DataFrame(
        {
            "parameter": names,
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
        iterations=run[0],
        converged=run[1],
        diagnostics=diag,
        effects=u,
        psi_eff=np.where(obs, ps, np.nan),
        effect_var=uvar,
        beta0_var=beta0_var,
    )


def stack_terms(terms: Mapping[str, np.ndarray], n_cells: int) -> _Stack:
    """The terms' indicator matrices, stacked, for ``fit_pooled(..., stack=)``."""
    return _Stack.of(terms, n_cells)


@dataclass
class _Stack:
    """The prior terms stacked: the level rows of every term one after another (term i owns
    rows ``offs[i]:offs[i + 1]``), with each term's indicator matrix (levels x cells) and all
    of them stacked, so that one sparse product gives every term's level sums. The EM state
    is one matrix (rows x params): intercept, the stacked effects, log tau2 of every term,
    log sigma_v2."""

    names: list[str]
    codes: list[np.ndarray]
    mats: list[sparse.csr_matrix]
    stacked: sparse.csr_matrix
    stacked_t: sparse.csc_matrix  # its transpose (a view, kept: made once, not every step)
    offs: np.ndarray
    sizes: np.ndarray
    ones_q: list[np.ndarray]
    ones_g: np.ndarray

    @classmethod
    def of(cls, terms: Mapping[str, np.ndarray], n_cells: int) -> _Stack:
        cells = np.arange(n_cells)
        mats = [
            sparse.csr_matrix((np.ones(n_cells), (c, cells)), shape=(int(c.max()) + 1, n_cells))
            for c in terms.values()
        ]
        sizes = np.array([m.shape[0] for m in mats], dtype=np.int64)
        stacked = sparse.vstack(mats, format="csr") if mats else sparse.csr_matrix((0, n_cells))
        return cls(
            names=list(terms),
            codes=[np.asarray(c) for c in terms.values()],
            mats=mats,
            stacked=stacked,
            stacked_t=stacked.T,
            offs=np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64),
            sizes=sizes,
            ones_q=[np.ones(int(q)) for q in sizes],
            ones_g=np.ones(n_cells),
        )

    def pack(self, b0, uu, t2, s2) -> np.ndarray:
        n_t, e1 = len(self.names), 1 + int(self.offs[-1])
        out = np.empty((e1 + n_t + 1, len(b0)))
        out[0] = b0
        for i, k in enumerate(self.names):
            out[1 + self.offs[i] : 1 + self.offs[i + 1]] = uu[k]
            out[e1 + i] = np.log(t2[k])
        out[-1] = np.log(s2)
        return out

    def unpack(self, S: np.ndarray):
        e1 = 1 + int(self.offs[-1])
        uu = {k: S[1 + self.offs[i] : 1 + self.offs[i + 1]] for i, k in enumerate(self.names)}
        t2 = {k: np.maximum(np.exp(S[e1 + i]), VAR_FLOOR) for i, k in enumerate(self.names)}
        return S[0], uu, t2, np.maximum(np.exp(S[-1]), VAR_FLOOR)


def _em_step(S, st: _Stack, y, obs, ps0, edf, effect_df) -> np.ndarray:
    """One EM sweep: intercept, backfitting of every term with its tau2 update, then
    sigma_v2 (``edf`` None: Gaussian sampling errors, whose weights are all 1). The residual
    is kept up to date; a level's weighted partial residual is its weighted residual plus
    den * its current effect. A term's level weights ``den``, its t
    weights and precisions depend only on the state at the start of the sweep, so they are
    computed for all terms at once (the same operations, element by element, as term by
    term); only the effects themselves are updated in sequence. Column sums go through
    BLAS (ones @ X)."""
    n_t, e1 = len(st.names), 1 + int(st.offs[-1])
    b0, uu = S[0], S[1:e1]
    t2 = np.repeat(np.maximum(np.exp(S[e1 : e1 + n_t]), VAR_FLOOR), st.sizes, axis=0)
    s2 = np.maximum(np.exp(S[-1]), VAR_FLOOR)
    resid = y - b0
    for i, c in enumerate(st.codes):
        resid = resid - np.take(uu[st.offs[i] : st.offs[i + 1]], c, axis=0)
    ps = ps0 if edf is None else ps0 / _error_weights(resid, ps0, s2, edf)
    v = ps + s2
    w = obs / v
    sw = st.ones_g @ w
    step = (st.ones_g @ (w * resid)) / np.maximum(sw, 1e-300)
    resid = resid - step
    den = st.stacked @ w
    lam = _t_weights(uu, den, t2, effect_df)
    prec = den + lam / t2
    new, du = np.empty_like(uu), den * uu
    for i, (m, c) in enumerate(zip(st.mats, st.codes)):
        a, b = st.offs[i], st.offs[i + 1]
        np.divide(m @ (w * resid) + du[a:b], prec[a:b], out=new[a:b])
        resid = resid - np.take(new[a:b] - uu[a:b], c, axis=0)
    has = den > 0
    dofx = (1.0 - lam / (t2 * prec)) * has
    numx = lam * new * new * has
    sl = [slice(st.offs[i], st.offs[i + 1]) for i in range(n_t)]
    num = np.array([q @ numx[j] for q, j in zip(st.ones_q, sl)]).reshape(n_t, S.shape[1])
    dof = np.array([q @ dofx[j] for q, j in zip(st.ones_q, sl)]).reshape(n_t, S.shape[1])
    out = np.empty_like(S)
    out[0], out[1:e1] = b0 + step, new
    out[e1 : e1 + n_t] = np.log(np.maximum(num / np.maximum(dof, 1e-3), VAR_FLOOR))
    gam = s2 / v
    dof = gam * (1.0 - _leverage(st, sw, prec, v)) * obs
    s2 = np.maximum(
        (st.ones_g @ (gam * gam * resid * resid * obs)) / np.maximum(st.ones_g @ dof, 1e-3),
        VAR_FLOOR,
    )
    out[-1] = np.log(s2)
    return out


#: largest leverage of one cell on its own prior mean in the sigma_v2 update
MAX_LEVERAGE = 0.9


def _leverage(st: _Stack, sw: np.ndarray, prec: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Each cell's leverage on its own prior mean, h_c = a_c / (sigma_v2 + psi_c), with a_c
    the prior mean's posterior variance: the intercept's 1 / sum w (``sw``) plus the effects'
    1 / prec of the cell's levels (term by term, as the fit treats them)."""
    a = 1.0 / np.maximum(sw, 1e-300) + st.stacked_t @ (1.0 / prec)
    return np.minimum(a / v, MAX_LEVERAGE)


def _prior_residual(y: np.ndarray, b0: np.ndarray, u: Mapping, codes: Mapping) -> np.ndarray:
    """Each cell's direct estimate less its prior mean b0 + sum_g u_g[l_g(c)]."""
    resid = y - b0
    for k, c in codes.items():
        resid = resid - np.take(u[k], c, axis=0)
    return resid


def _safeguard(S_new: np.ndarray, S_ext: np.ndarray, S2: np.ndarray, rn: np.ndarray):
    """Keep the extrapolated SQUAREM step of a column only where it brought the column nearer
    the fixed point: finite, and the EM step from it moves less than the first EM step from
    the start did (the fixed-point residual as merit function). Elsewhere fall back to the
    plain double EM step ``S2``, which cannot diverge. Without this, a long step on a log
    variance at its floor (a term whose levels the data barely separate) could set a tau2
    of 36 on a log-income scale, and nested terms then took offsetting effects of +-13 that
    put every unsampled district of a province at 3,000 times its income."""
    moved = np.sqrt(((S_new - S_ext) ** 2).sum(0))
    bad = ~np.isfinite(S_new).all(axis=0) | ~(moved <= rn)
    out = S_new.copy()
    out[:, bad] = S2[:, bad]
    return out


def _error_weights(d: np.ndarray, psi: np.ndarray, s2: np.ndarray, df: np.ndarray) -> np.ndarray:
    """E-step of a Student-t sampling error as a scale mixture e_c ~ N(0, psi_c / lambda_c),
    lambda_c ~ Gamma(df/2, df/2), given the cell's deviation d_c = theta_hat_c - m_c from its
    prior mean (d = v + e, v ~ N(0, s2)): E[lambda | d] = (df + 1) / (df + E[e^2 | d] / psi)
    with E[e | d] = (1 - g) d, Var[e | d] = g psi, g = s2 / (s2 + psi). A cell whose one
    respondent has an extreme residual is read as noise, not as a cell effect; df = inf
    (Gaussian errors) gives weights 1."""
    g = s2 / (s2 + psi)
    e2 = ((1.0 - g) * d) ** 2 + g * psi
    with np.errstate(invalid="ignore"):
        lam = np.where(np.isfinite(df), (df + 1.0) / (df + e2 / psi), 1.0)
    return np.clip(np.nan_to_num(lam, nan=1.0), 1e-3, None)


def _t_weights(u: np.ndarray, den: np.ndarray, t2: np.ndarray, df: float) -> np.ndarray:
    """E-step of the Student-t prior as a scale mixture u ~ N(0, t2 / lambda), lambda ~
    Gamma(df/2, df/2): E[lambda | u] = (df + 1) / (df + E[u^2] / t2), with E[u^2] the
    current effect squared plus its conditional variance. Ones for a Gaussian prior."""
    if not np.isfinite(df):
        return np.ones_like(u)
    eu2 = u * u + 1.0 / (den + 1.0 / t2)
    return (df + 1.0) / (df + eu2 / t2)


def expit_clip(x: np.ndarray) -> np.ndarray:
    return np.clip(expit(x), 1e-9, 1 - 1e-9)
