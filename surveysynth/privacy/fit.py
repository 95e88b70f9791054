"""The DP synthesizer: fitted from :class:`NoisyStats` alone, sampled as post-processing.

Fit (Fay-Herriot with known noise, docs/privacy.md): every cell x wave parameter has a direct
estimate from the noisy sums whose error variance D is known: sampling variance + the DP noise's
(delta method on the ratio of two noisy sums). theta_c = prior_c + u_c, u_c ~ N(0, A).

* Shares (each answer code): the prior from the noisy margins, each margin level shrunk toward
  its wave's overall value (Fay-Herriot at the margin level, A from 3 levels up), its posterior
  variance V_c added to A; A by adjusted maximum likelihood (Li and Lahiri 2010) from 30 direct
  cells up, else the margins' median A stands in (plugged in, not drawn). Posterior: gamma =
  (A + V) / (A + V + D), mean prior + gamma (y - prior), variance gamma D; without a direct
  estimate prior, A + V.
* Means of v = log(1 + x - lo) above the lower bound: :mod:`surveysynth.privacy.means` (the
  prior is the backfitted main effects; the within-cell variance and A split a residual total
  measured per pooling group, the split drawn per implicate from its posterior).

Each implicate draws the parameters from these posteriors, so the between-implicate variance of
the augmented estimates carries the sampling error, the DP noise and the model's uncertainty.

Sample: per record, a Gaussian copula with the noisy correlation of the answers' scores in the
record's pooling group x wave, given the record's place within its frame cell on each register
auxiliary (:mod:`surveysynth.privacy.register`); each answer by the inverse CDF of its cell's drawn shares, a value
above the lower bound as lo + expm1(mu + sigma z) with the implicate's mu and sigma. Business
rules are enforced afterwards; a rule's target is drawn, where the rule does not fire, from
shares with the rule's part taken out (:mod:`surveysynth.privacy.rules`), so it is not forced
twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.stats import norm

from surveysynth.contract.config import SynthConfig
from surveysynth.contract.inputs import record_columns
from surveysynth.contract.rules import enforce
from surveysynth.privacy.means import MeanFit, f_posterior, group_count, residual_totals
from surveysynth.privacy.measure import (
    AUX_ATTENUATION,
    RATIO_SD,
    NoisyStats,
    _keys,
    above_offset,
    main_effects,
    score_attenuation,
    value_levels,
)
from surveysynth.privacy.register import RegisterRanks
from surveysynth.privacy.rules import rule_shares
from surveysynth.privacy.shrink import MIN_LEVELS_A, fh_posterior

#: a cell's direct estimate is used from this many noisy answers (fewer: regression only)
MIN_DIRECT_N = 2.0
#: a pooling group's correlation is its own from this many noisy answers (fewer: all groups')
MIN_CORR_N = 30.0
#: shares are drawn, floored here and renormalised
MIN_SHARE = 1e-4


@dataclass
class DPModel:
    cells: pd.DataFrame
    group: np.ndarray
    share_mean: dict[str, np.ndarray] = field(default_factory=dict)  # K x codes
    share_var: dict[str, np.ndarray] = field(default_factory=dict)
    mu_mean: dict[str, np.ndarray] = field(default_factory=dict)  # K
    mu_var: dict[str, np.ndarray] = field(default_factory=dict)
    sigma: dict[str, np.ndarray] = field(default_factory=dict)  # K, within-cell sd of v
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)
    corr: np.ndarray | None = None  # G x P x P
    diagnostics: list[dict] = field(default_factory=list)
    direct: dict[str, np.ndarray] = field(default_factory=dict)  # K, cells with a direct estimate
    mean_fit: dict[str, MeanFit] = field(default_factory=dict)  # numeric outcomes' mean models
    n_aux: int = 0  # register auxiliaries last in ``corr``, conditioned on when sampling


def _logit(p):
    p = np.clip(p, 1e-3, 1 - 1e-3)
    return np.log(p / (1 - p))


def margin_prior(stats: NoisyStats, nums, dens, d_fn, min_den: float, logit: bool, diag, label):
    """Each cell's prior mean and variance from the noisy margins (each cell dimension x wave).
    Every margin level's value (link scale: logit for shares, identity for log-scale means) is
    itself shrunk toward its wave's overall value with its known error variance ``d_fn(value,
    denominator)`` (Fay-Herriot at the margin level, so a noisy margin falls back to the
    overall); the cell's prior is the overall plus each dimension's shrunk departure, its
    variance the sum of theirs."""
    link = _logit if logit else (lambda x: x)
    wave = stats.margin_wave[0][stats.margins[0]]
    overall_w = np.mean(
        [
            link(np.bincount(w, weights=n) / np.maximum(np.bincount(w, weights=d), 1.0))
            for n, d, w in zip(nums, dens, stats.margin_wave)
        ],
        axis=0,
    )
    eta = overall_w[wave].copy()
    var = np.zeros(len(eta))
    a_levels = []
    for i, (n, d, m, w) in enumerate(zip(nums, dens, stats.margins, stats.margin_wave)):
        dd = np.maximum(d, 1.0)
        y = link(n / dd)
        has = d >= min_den
        mean_l, var_l = fh_posterior(
            y, d_fn(y, dd), overall_w[w], has, f"{label}/m{i}", diag, min_n=MIN_LEVELS_A
        )
        a_levels.append(diag[-1]["A"])
        eta += mean_l[m] - overall_w[wave]
        var += var_l[m]
    # the median between-level variance of the margins: the stand-in for the cells' A when too
    # few cells have a direct estimate to estimate it
    a_few = float(np.median(a_levels))
    if not logit:
        return eta, var, a_few
    p = 1 / (1 + np.exp(-eta))
    return p, var * (p * (1 - p)) ** 2, a_few * (p * (1 - p)) ** 2


def fit_dp(stats: NoisyStats, config: SynthConfig) -> DPModel:
    """The DP synthesizer's parameters, from the noisy statistics only."""
    if not isinstance(stats, NoisyStats):
        raise TypeError("fit_dp takes the noisy statistics (NoisyStats), never microdata")
    model = DPModel(stats.cells, stats.group, ranges=dict(stats.ranges))
    for o in config.outcomes:
        _fit_shares(model, stats, o.name)
        if value_levels(o):
            _split_above(model, stats, o.name)
        if o.is_numeric:
            _fit_mean(model, stats, o.name)
    model.corr = _latent(_correlations(stats, len(config.outcomes) + stats.n_aux), stats, config)
    model.n_aux = stats.n_aux
    return model


def reference_n(stats: NoisyStats, name: str) -> np.ndarray:
    """Noisy respondents per cell from the other outcomes' counts: noise independent of this
    outcome's counts, so dividing by it and cutting on it do not bias the shares (a count that
    shares the numerator's noise would favour cells whose noise was positive)."""
    others = [c.sum(axis=1) for k, c in stats.counts.items() if k != name]
    if not others:
        return stats.counts[name].sum(axis=1)
    return np.mean(others, axis=0)


def _fit_shares(model: DPModel, stats: NoisyStats, name: str) -> None:
    c = stats.counts[name]
    L = c.shape[1]
    n = np.maximum(reference_n(stats, name), 0.0)
    s2 = stats.noise_var[f"counts:{name}"]
    has = n >= max(MIN_DIRECT_N, RATIO_SD * np.sqrt(s2))
    means, vars_ = np.zeros((len(n), L)), np.zeros((len(n), L))
    nn = np.maximum(n, 1.0)
    mc = stats.mcounts[name]
    s2m = stats.noise_var[f"mcounts:{name}"]

    def d_logit(eta, d):
        q = 1 / (1 + np.exp(-eta))
        return (q * (1 - q) / d + s2m * (1 - 2 * q + L * q * q) / d**2) / (q * (1 - q)) ** 2

    min_den = max(MIN_CORR_N, RATIO_SD * np.sqrt(L * s2m))
    for j in range(L):
        lab = f"{name}[{j}]"
        num, den = [b[:, j] for b in mc], [b.sum(axis=1) for b in mc]
        p, V, a_few = margin_prior(stats, num, den, d_logit, min_den, True, model.diagnostics, lab)
        y = c[:, j] / nn
        D = p * (1 - p) / nn + s2 * (1 - 2 * p + L * p * p) / nn**2
        means[:, j], vars_[:, j] = fh_posterior(
            y, D, p, has, lab, model.diagnostics, V, float(np.median(a_few))
        )
    model.share_mean[name], model.share_var[name] = means, vars_
    model.direct[name] = has


def _split_above(model: DPModel, stats: NoisyStats, name: str, first: int = 2) -> None:
    """A count's answers above its lower bound (codes ``first``..: its own values, then the rest)
    split as :func:`~surveysynth.privacy.measure.above_split` says from the noisy margins, each
    cell keeping its own share of the whole: a cell's few answers spread over several codes are
    mostly noise there, and that noise, clipped, put a tenth of the largest businesses' records
    at 1-3 employees. The summed posterior variance is kept."""
    mean, var = model.share_mean[name], model.share_var[name]
    pi = stats.above[name]  # measure's above_split, the one the scores used
    mean[:, first:] = mean[:, first:].sum(axis=1, keepdims=True) * pi
    var[:, first:] = var[:, first:].sum(axis=1, keepdims=True) * pi


def _fit_mean(model: DPModel, stats: NoisyStats, name: str) -> None:
    """The cell means of v above the lower bound and the within-cell variance
    (:mod:`surveysynth.privacy.means`: A and the residual totals carried into the draws)."""
    half = stats.ranges[name][1] / 2
    n_pos = stats.counts[name][:, -1]
    s2n = stats.noise_var[f"counts:{name}"]
    cut = max(MIN_DIRECT_N, RATIO_SD * np.sqrt(s2n))
    # a cell's count must clear the cut in its own noisy count and in the other outcomes'
    # (independent noise): with thousands of cells, some empty ones clear one cut by noise alone
    share_pos = np.clip(n_pos / np.maximum(stats.counts[name].sum(axis=1), 1.0), 0.0, 1.0)
    has = (n_pos >= cut) & (reference_n(stats, name) * share_pos >= cut)
    nn = np.maximum(n_pos, 1.0)
    yc = np.clip(stats.logsum[name] / nn, -half, half)
    noise = (stats.noise_var[f"logsum:{name}"] + yc**2 * s2n) / nn**2
    # the prior: the main effects the residuals were centred on (A, the cells' spread around
    # it, holds the prior's own error)
    prior = np.clip(main_effects(stats, name), -half, half) + half
    T, T_var, w = residual_totals(stats, name, model.diagnostics)
    mf = MeanFit(yc + half, noise, nn, has, prior, stats.group, T, T_var, w)
    mf.grid, mf.weights = f_posterior(mf)
    m, v, s2 = mf.point()
    model.mean_fit[name] = mf
    model.mu_mean[name], model.mu_var[name], model.sigma[name] = m, v, np.sqrt(s2)
    model.direct[f"{name}:mu"] = has
    A = float(np.average(mf.components(mf.f_mean())[0], weights=nn))
    model.diagnostics.append(
        {"parameter": f"{name}[mu]", "A": A, "f": mf.f_mean(), "n_direct": int(has.sum())}
    )


def _correlations(stats: NoisyStats, P: int) -> np.ndarray:
    """The copula's correlation for every pooling group x wave: the group's sums pooled over
    the waves (the dependence is taken as stable over waves: four waves' sums quadruple the
    signal and only double the noise), each entry shrunk toward the all-groups value by its
    signal-to-noise (:func:`_shrunk`); groups with fewer than MIN_CORR_N noisy answers take the
    all-groups value."""
    n_g = np.mean(
        [group_count(stats, k, range(c.shape[1])) for k, c in stats.counts.items()], axis=0
    )
    pool = _pool_of_groups(stats)
    sums = np.vstack([stats.scores[pool == p].sum(axis=0) for p in range(pool.max() + 1)])
    n_p = np.bincount(pool, n_g)
    waves = np.bincount(pool)
    total = _cov(stats.scores.sum(axis=0), n_g.sum(), P)
    noise = stats.noise_var["scores:all"]
    R0 = _as_corr(total)
    R = _shrunk([_cov(sums[p], n_p[p], P) for p in range(len(n_p))], n_p, waves, noise, total, R0)
    R = [R[p] if n_p[p] >= MIN_CORR_N else R0 for p in range(len(n_p))]
    return np.stack([R[p] for p in pool])


def _latent(R: np.ndarray, stats: NoisyStats, config: SynthConfig) -> np.ndarray:
    """The copula's latent correlations from the scores' (per group x wave): each entry over the
    two scores' attenuations (:func:`~surveysynth.privacy.measure.score_attenuation`, from the
    group's noisy code shares), made a correlation again. Taken as they were, the records'
    answers, coarsened once more when drawn, carried about half the respondents' correlation
    (the demo's turnover change with log turnover: 0.16 against 0.33)."""
    a = [
        score_attenuation(
            o,
            np.column_stack(
                [group_count(stats, o.name, [j]) for j in range(stats.counts[o.name].shape[1])]
            ),
        )
        for o in config.outcomes
    ]
    a += [np.full(stats.n_groups, AUX_ATTENUATION)] * stats.n_aux
    A = np.clip(np.column_stack(a), 0.2, 1.0)  # G x P
    return np.stack([_as_corr(R[g] / np.outer(A[g], A[g]), cov=False) for g in range(len(R))])


def _pool_of_groups(stats: NoisyStats) -> np.ndarray:
    """The pooling group (the ss_dp_pool_by levels, without the wave) of each group x wave."""
    if not stats.pool_by:
        return np.zeros(stats.n_groups, dtype=np.int64)
    _, first = np.unique(stats.group, return_index=True)  # groups are numbered 0..G-1
    cells = stats.cells.iloc[first]
    key = cells[list(stats.pool_by)].astype(str).agg("\x1f".join, axis=1)
    return pd.factorize(key, sort=True)[0].astype(np.int64)


def _shrunk(covs, n, waves, noise: float, total: np.ndarray, R0) -> list[np.ndarray]:
    """Each group's correlation entries shrunk toward the all-groups correlation: weight
    tau^2 / (tau^2 + v_g), v_g = waves_g noise / (n_g^2 s_i s_j) the DP noise variance of the
    entry (its sums' noise over n_g, scaled by the scores' sds), tau^2 the entries' spread
    between groups beyond that noise (method of moments, at least 0); R0 = _as_corr(total)."""
    d = np.sqrt(np.maximum(np.diag(total), 1e-6))
    v = np.stack([w * noise / max(m, 1.0) ** 2 / np.outer(d, d) for w, m in zip(waves, n)])
    Rg = np.stack([_as_corr(C) for C in covs])
    tau2 = np.maximum(np.mean((Rg - R0) ** 2 - v, axis=0), 0.0)
    w = tau2 / (tau2 + v + 1e-12)
    return [_as_corr(w[g] * Rg[g] + (1 - w[g]) * R0, cov=False) for g in range(len(covs))]


def _cov(vec: np.ndarray, n: float, P: int) -> np.ndarray:
    """Covariance matrix of the scores from their noisy sums and cross-products."""
    n = max(n, 1.0)
    m = vec[:P] / n
    iu = np.triu_indices(P)
    S = np.zeros((P, P))
    S[iu] = vec[P:] / n
    S = S + S.T - np.diag(np.diag(S))
    return S - np.outer(m, m)


def _as_corr(C: np.ndarray, cov: bool = True) -> np.ndarray:
    """A correlation matrix from a covariance (or a near-correlation, ``cov=False``): entries
    clipped to +-0.95, eigenvalues floored at 1e-3 (positive definite), unit diagonal."""
    if cov:
        d = np.sqrt(np.maximum(np.diag(C), 1e-6))
        C = C / np.outer(d, d)
    R = np.clip(C, -0.95, 0.95)
    np.fill_diagonal(R, 1.0)
    w, V = np.linalg.eigh(R)
    R = (V * np.maximum(w, 1e-3)) @ V.T
    d = np.sqrt(np.diag(R))
    return R / np.outer(d, d)


# ----------------------------------------------------------------------- sampling
def draw_parameters(model: DPModel, config: SynthConfig, implicate: int) -> dict:
    """One implicate's cell parameters, drawn from their posteriors."""
    rng = np.random.default_rng([config.seed, implicate, 16])
    out = {}
    for o in config.outcomes:
        out[o.name] = draw_shares(model.share_mean[o.name], model.share_var[o.name], rng)
        if o.is_numeric:
            out[f"{o.name}:mu"], out[f"{o.name}:sigma"] = model.mean_fit[o.name].draw(rng)
    return out


def draw_shares(mean: np.ndarray, var: np.ndarray, rng) -> np.ndarray:
    """Per cell, shares from a Dirichlet with the posterior means (floored, renormalised) and
    the concentration that matches the posterior variances summed over codes: a draw that stays
    on the simplex without the upward bias of clipping normal draws of small shares."""
    p = np.maximum(mean, MIN_SHARE)
    p = p / p.sum(axis=1, keepdims=True)
    conc = np.sum(p * (1 - p), axis=1) / np.maximum(var.sum(axis=1), 1e-12) - 1.0
    alpha = p * np.clip(conc, 1.0, 1e7)[:, None]
    g = rng.gamma(alpha)
    return np.maximum(g, 1e-300) / np.maximum(g.sum(axis=1, keepdims=True), 1e-300)


def sample_dp(
    plan: pd.DataFrame,
    model: DPModel,
    config: SynthConfig,
    run_id: str,
    register: RegisterRanks | None = None,
) -> pd.DataFrame:
    """Records for the plan's rows (one per record x implicate), post-processing only.
    ``register``: the frame's auxiliaries, to place each record's unit within its cell (needed
    when the model was measured with them)."""
    c = config
    k = _keys(model.cells, c.wave).get_indexer(_keys(plan, c.wave))
    if (k < 0).any():
        raise ValueError("the plan has a cell x wave the DP model does not know")
    if model.n_aux and (register is None or register.width != model.n_aux):
        raise ValueError("the DP model was measured with register auxiliaries: pass the frame's")
    z_aux = None
    if model.n_aux:
        jitter = np.random.default_rng([c.seed, 17]).random((len(plan), model.n_aux))
        z_aux = norm.ppf(register.u(plan, jitter))
    out = plan.copy()
    imp = plan["implicate"].to_numpy()
    cols = {o.name: np.empty(len(plan), dtype=object) for o in c.outcomes}
    outcomes = {o.name: o for o in c.outcomes}
    for i in np.unique(imp):
        rows = np.flatnonzero(imp == i)
        par = draw_parameters(model, c, int(i))
        u = _copula(model, k[rows], c, int(i), None if z_aux is None else z_aux[rows])
        drawn: dict[str, np.ndarray] = {}
        for j, o in enumerate(c.outcomes):
            lo = model.ranges[o.name][0] if o.is_numeric else None
            p = par[o.name][k[rows]]
            p = rule_shares(o, p, k[rows], drawn, c.rules, outcomes, model.share_mean, lo)
            drawn[o.name] = _answers(o, p, par, model, k[rows], u[:, j])
            cols[o.name][rows] = drawn[o.name]
    for o in c.outcomes:
        out[o.name] = cols[o.name]
    return _finish(out, c, run_id)


def _copula(model: DPModel, k: np.ndarray, c: SynthConfig, implicate: int, z_aux=None):
    """The answers' uniforms: normal scores with the pooling group's correlation, given the
    record's register scores ``z_aux`` when the model has them (z_o | z_a ~ N(B z_a, R_oo -
    B R_ao), B = R_oa R_aa^-1)."""
    rng = np.random.default_rng([c.seed, implicate, 61])
    P = len(c.outcomes)
    z = rng.standard_normal((len(k), P))
    g = model.group[k]
    for gi in np.unique(g):
        sel = g == gi
        R = model.corr[gi]
        if z_aux is None:
            z[sel] = z[sel] @ np.linalg.cholesky(R[:P, :P]).T
            continue
        B = np.linalg.solve(R[P:, P:], R[P:, :P]).T
        C = R[:P, :P] - B @ R[P:, :P]
        z[sel] = z_aux[sel] @ B.T + z[sel] @ np.linalg.cholesky(C).T
    return np.clip(norm.cdf(z), 1e-12, 1 - 1e-12)


def _answers(o, shares, par, model: DPModel, k, u) -> np.ndarray:
    """Each row's answer from its uniform: the code by the inverse CDF of ``shares`` (rows x
    codes), a value above the lower bound from the cell's log-normal part."""
    cum = np.cumsum(shares, axis=1)
    code = np.minimum((u[:, None] > cum).sum(axis=1), cum.shape[1] - 1)
    vals = np.full(len(k), None, dtype=object)
    if not o.is_numeric:
        levels = np.array(list(o.category_levels), dtype=object)
        vals[code > 0] = levels[code[code > 0] - 1]
        return vals
    lo, log_range = model.ranges[o.name]
    top = cum.shape[1] - 1  # the last code: above the bound and a count's own values
    base = cum[:, top - 1]
    pos = code == top
    up = np.clip((u - base) / np.maximum(1 - base, 1e-12), 1e-9, 1 - 1e-9)
    top_v = np.log1p(np.expm1(log_range) - value_levels(o))  # the upper bound, above the offset
    x = above_offset(o, lo) + np.expm1(
        _above_bound(o, up, par[f"{o.name}:mu"][k], par[f"{o.name}:sigma"][k], top_v)
    )
    for j in range(top - 1):  # code 1 + j: the value lo + j
        vals[code == 1 + j] = lo + j
    vals[pos] = x[pos]
    return vals


def _above_bound(o, up, mu, sigma, log_range) -> np.ndarray:
    """v of an answer above the lower bound: the cell's normal truncated to (v_min, log_range]
    by the inverse CDF, v_min = log(1.5) for a count (it rounds to at least one above the
    bound) and 0 otherwise. Clipping instead would put the tail below v_min onto the bound
    itself: a count's draws that round to the bound made a third of the micro businesses'
    records have 0 employees where the respondents have none."""
    v_min = np.log(1.5) if o.type == "count" else 0.0
    sigma = np.maximum(sigma, 1e-9)
    a = norm.cdf((v_min - mu) / sigma)
    b = norm.cdf((log_range - mu) / sigma)
    q = np.clip(a + up * (b - a), 1e-12, 1 - 1e-12)
    return np.clip(mu + sigma * norm.ppf(q), v_min, log_range)


def _finish(out: pd.DataFrame, c: SynthConfig, run_id: str) -> pd.DataFrame:
    for o in c.outcomes:
        if o.is_numeric:
            out[o.name] = pd.to_numeric(out[o.name], errors="coerce").astype(float)
        elif o.type == "binary":
            out[o.name] = pd.array(out[o.name], dtype="Int64")
    out = enforce(out, c.rules, c.outcomes)
    out["is_synthetic"] = True
    out["synth_run_id"] = run_id
    out["synth_method"] = "dp_fay_herriot"
    names = [o.name for o in c.outcomes]
    cols = record_columns(c.unit_id, c.wave, c.cell_dims, names, c.auxiliaries)
    return out[cols].reset_index(drop=True)
