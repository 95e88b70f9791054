"""FIT step: one vectorised pass over the respondents producing the cell x wave parameter
table (posterior mean and sd of every parameter on its link scale) and the pooled texture
(copula correlation, residual shapes, auxiliary slopes).

Parameters per outcome (all estimated with design weights w, Hajek form, Kish n_eff for
their sampling variance, then partially pooled by :mod:`surveysynth.synthesis.pooling`):

* ``miss``: logit of the item-nonresponse rate (all respondents of the cell).
* ``cat<j>`` (binary, categorical, ordinal): continuation-ratio logits
  logit P(y = level_j | y >= level_j), j = 0..K-2. The multinomial likelihood factorises
  into these binomials, so their posteriors are (approximately) independent and the
  category probabilities rebuild without renormalising.
* ``atmin`` (continuous/count with a declared minimum that the data hit): logit of the
  share at the minimum (zero-inflation: e.g. turnover 0).
* ``loc`` and ``logscale`` (continuous/count positive part on the link scale z, e.g.
  log(y - min)): the cell's weighted mean of z - b'x and the log of its weighted sd
  (bias-corrected; sampling variance (kappa - 1) / (4 (n_eff - 1)) with the pooled
  kurtosis kappa). b are auxiliary slopes pooled across cells (within-cell weighted least
  squares), so the cell-specific part is an intercept that is shrunk like any parameter.

Rule targets are fitted on the rows where no rule fires (e.g. turnover on trading
businesses only), because the rule fixes the value everywhere else.

Three pooling passes. The first uses add-half logits of the shares (one
pseudo-observation at 1/2, delta-method variance 1 / ((n_eff + 1) p (1 - p))). The next
two are penalised quasi-likelihood steps (Breslow & Clayton 1993) for shares: the working
response eta + (p_hat - mu) / (mu (1 - mu)) with variance 1 / (n_eff mu (1 - mu)),
linearised at the current posterior mu, which avoids the bias of logit(0)-type estimates
in cells with 1-5 respondents and smooths the sampling variances; location variances come
from the smoothed cell scale, psi = exp(2 logscale) / n_eff. Each pass warm-starts the EM.

Assumptions: respondents within a cell x wave are exchangeable given the design weights
(nonresponse is ignorable within cells); cell x wave sampling errors are independent
(a panel's repeated units make them positively correlated, which this ignores);
auxiliary slopes are common to all cells.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
from scipy.special import expit

from surveysynth.contract.config import OutcomeSpec, SynthConfig
from surveysynth.contract.inputs import CELL_ID, Inputs, SynthInputError
from surveysynth.contract.rules import when_mask
from surveysynth.seeding import stream_rng
from surveysynth.synthesis import copula
from surveysynth.synthesis.pooling import (
    PoolingResult,
    fit_pooled,
    group_weights,
    hajek_share,
    logit_direct,
    pooling_terms,
    weighted_moments,
)

log = logging.getLogger("surveysynth")

PARAM_PREFIX = "p__"


@dataclass(frozen=True)
class ParamSpec:
    name: str
    outcome: str
    kind: str  # miss | cat | atmin | loc | logscale
    level: int = -1

    @property
    def mean_col(self) -> str:
        return f"{PARAM_PREFIX}{self.name}__mean"

    @property
    def sd_col(self) -> str:
        return f"{PARAM_PREFIX}{self.name}__sd"


@dataclass
class OutcomeModel:
    """How one outcome is generated from the parameter vector (indices into it)."""

    spec: OutcomeSpec
    latent: int
    miss: int | None = None
    cats: tuple[int, ...] = ()
    atmin: int | None = None
    loc: int | None = None
    logscale: int | None = None
    slope: np.ndarray = field(default_factory=lambda: np.zeros(0))
    grid_p: np.ndarray = field(default_factory=lambda: np.zeros(0))
    grid_q: np.ndarray = field(default_factory=lambda: np.zeros(0))


@dataclass
class SamplerSpec:
    """Everything the per-cell sampler needs besides the group's rows: small and picklable
    (it travels to Spark executors in the closure)."""

    seed: int
    unit_id: str
    wave: str
    cell_dims: tuple[str, ...]
    auxiliaries: tuple[str, ...]
    outcomes: tuple[OutcomeSpec, ...]
    rules: tuple
    item_missing: bool
    params: tuple[ParamSpec, ...]
    models: tuple[OutcomeModel, ...]
    chol: np.ndarray
    aux_used: tuple[str, ...]
    aux_transform: tuple[str, ...]
    aux_center: np.ndarray
    run_id: str
    method: str

    @property
    def output_columns(self) -> list[str]:
        return [
            self.unit_id,
            self.wave,
            *self.cell_dims,
            CELL_ID,
            *(o.name for o in self.outcomes),
            *self.auxiliaries,
            "synth_weight",
            "is_synthetic",
            "implicate",
            "synth_run_id",
            "synth_method",
            "support_class",
        ]


@dataclass
class SynthModel:
    """Result of the FIT step."""

    params: pd.DataFrame  # one row per cell x wave (support rows), parameter columns
    spec: SamplerSpec
    pooling: PoolingResult
    correlation: pd.DataFrame
    diagnostics: pd.DataFrame
    seconds: float = 0.0


# ----------------------------------------------------------------------- link scales
def to_link(x: np.ndarray, o: OutcomeSpec) -> np.ndarray:
    lo, hi, sc = o.lower, o.max, o.link_scale
    with np.errstate(divide="ignore", invalid="ignore"):
        if sc == "log":
            return np.log(np.maximum(x - lo, 1e-300))
        if sc == "logit":
            t = np.clip((x - lo) / (hi - lo), 1e-9, 1 - 1e-9)
            return np.log(t) - np.log1p(-t)
    return x.astype(float)


def from_link(z: np.ndarray, o: OutcomeSpec) -> np.ndarray:
    lo, hi, sc = o.lower, o.max, o.link_scale
    if sc == "log":
        return lo + np.exp(np.minimum(z, 700.0))
    if sc == "logit":
        return lo + (hi - lo) * expit(z)
    return z


def aux_matrix(df: pd.DataFrame, spec: SamplerSpec) -> np.ndarray:
    """Transformed, centred auxiliaries; null -> centre. Registers that are strictly
    positive enter as log (so log-outcome slopes are elasticities), non-negative ones as
    log1p, others as they are."""
    n = len(df)
    if not spec.aux_used:
        return np.zeros((n, 0))
    cols = []
    for a, how, c in zip(spec.aux_used, spec.aux_transform, spec.aux_center):
        x = pd.to_numeric(df[a], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        x = _aux_transform(x, how)
        cols.append(np.where(np.isfinite(x), x - c, 0.0))
    return np.column_stack(cols)


def _aux_transform(x: np.ndarray, how: str) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        if how == "log":
            return np.log(np.where(x > 0, x, np.nan))
        if how == "log1p":
            return np.log1p(np.where(x >= 0, x, np.nan))
    return x


# ----------------------------------------------------------------------- fit
def fit(
    inputs: Inputs, config: SynthConfig, run_id: str, method: str = "hierarchical"
) -> SynthModel:
    """Fit the hierarchical cell model and the pooled texture. Vectorised: groupby via
    bincount on integer cell x wave codes; no loops over rows."""
    t0 = time.monotonic()
    c = config
    r = inputs.responses
    table = inputs.support.copy()
    n_groups = len(table)
    g = inputs.cell_wave
    if c.weight:
        w = r[c.weight].to_numpy(dtype=float)
    else:  # N_h / n_h from the support map
        npop = pd.to_numeric(table["n_population"], errors="coerce").to_numpy(dtype=float)
        nres = table["n_respondents"].to_numpy(dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            wc = np.where(nres > 0, npop / nres, np.nan)
        w = wc[g]
        if not np.isfinite(w).all():
            bad = table[CELL_ID].iloc[g[~np.isfinite(w)][0]]
            raise SynthInputError(
                f"ss_design_weight is null and cell '{bad}' has no usable n_population in support"
            )

    # auxiliaries (frame given and configured)
    aux_used = tuple(c.auxiliaries) if inputs.use_aux else ()
    aux_how, aux_center = [], []
    for a in aux_used:
        ref = inputs.frame[a].to_numpy(dtype=float)
        ref = ref[np.isfinite(ref)]
        how = "identity"
        if ref.size and ref.min() > 0:
            how = "log"
        elif ref.size and ref.min() >= 0:
            how = "log1p"
        aux_how.append(how)
        xr = _aux_transform(r[a].to_numpy(dtype=float), how)
        ok = np.isfinite(xr)
        aux_center.append(float(np.average(xr[ok], weights=w[ok])) if ok.any() else 0.0)
    spec_stub = SamplerSpec(
        seed=c.seed,
        unit_id=c.unit_id,
        wave=c.wave,
        cell_dims=c.cell_dims,
        auxiliaries=c.auxiliaries,
        outcomes=c.outcomes,
        rules=c.rules,
        item_missing=c.item_missing,
        params=(),
        models=(),
        chol=np.eye(1),
        aux_used=aux_used,
        aux_transform=tuple(aux_how),
        aux_center=np.asarray(aux_center),
        run_id=run_id,
        method=method,
    )
    X = aux_matrix(r, spec_stub)

    params: list[ParamSpec] = []
    thetas: list[np.ndarray] = []
    psis: list[np.ndarray] = []
    share_info: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # idx -> (p_hat, n_eff)
    loc_info: dict[int, tuple[int, np.ndarray]] = {}  # loc idx -> (logscale idx, n_eff)
    defaults: list[float] = []
    models: list[OutcomeModel] = []
    numeric_data: dict[str, dict] = {}
    everyone = np.ones(len(r), dtype=bool)

    def add_share(
        name: str,
        o: str,
        kind: str,
        y: np.ndarray,
        mask: np.ndarray,
        level: int = -1,
        default: float = 0.0,
    ) -> int:
        p_hat, _, n_eff = hajek_share(g, w, y.astype(float), mask, n_groups)
        th, ps = logit_direct(p_hat, n_eff)
        params.append(ParamSpec(name, o, kind, level))
        thetas.append(th)
        psis.append(ps)
        defaults.append(default)
        share_info[len(params) - 1] = (p_hat, n_eff)
        return len(params) - 1

    for latent, o in enumerate(c.outcomes):
        s = r[o.name]
        present = s.notna().to_numpy()
        if not present.any():
            raise SynthInputError(f"outcome '{o.name}' has no non-null value in responses")
        free = everyone.copy()
        for rule in c.rules:
            if o.name in rule.target_columns:
                free &= ~when_mask(r, rule)
        om = OutcomeModel(spec=o, latent=latent)
        if c.item_missing and (~present).any():
            om.miss = add_share(f"{o.name}__miss", o.name, "miss", ~present, everyone, default=-9.0)
        fp = present & free
        if not fp.any():
            raise SynthInputError(
                f"outcome '{o.name}' has no non-null value on rows where no rule fixes it"
            )
        if o.is_discrete:
            levels = list(o.category_levels)
            code = _level_codes(s, o, levels)
            cats = []
            for j in range(len(levels) - 1):
                at_risk = fp & (code >= j)
                cats.append(add_share(f"{o.name}__cat{j}", o.name, "cat", code == j, at_risk, j))
            om.cats = tuple(cats)
            numeric_data[o.name] = {"code": code, "mask": fp}
        else:
            x = pd.to_numeric(s, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
            lo, hi = o.lower, o.max
            if lo is not None and np.any(fp & (x < lo)):
                log.warning(
                    "outcome '%s': %d value(s) below min %s clipped",
                    o.name,
                    int(np.sum(fp & (x < lo))),
                    lo,
                )
                x = np.where(fp & (x < lo), lo, x)
            if hi is not None and np.any(fp & (x > hi)):
                log.warning(
                    "outcome '%s': %d value(s) above max %s clipped",
                    o.name,
                    int(np.sum(fp & (x > hi))),
                    hi,
                )
                x = np.where(fp & (x > hi), hi, x)
            at_min = fp & (x <= lo) if lo is not None else np.zeros(len(x), bool)
            if at_min.any():
                om.atmin = add_share(f"{o.name}__atmin", o.name, "atmin", at_min, fp, default=-9.0)
            pos = fp & ~at_min
            if not pos.any():
                raise SynthInputError(f"outcome '{o.name}' has no value above its min")
            xx = x.copy()
            if o.type == "count":  # dequantise: a count k stands for [k - 1/2, k + 1/2)
                jit = stream_rng(c.seed, "dequantise", o.name).random(len(x)) - 0.5
                xx = x + jit
                if lo is not None:
                    xx = np.maximum(xx, lo + 0.5)
            z = np.where(pos, to_link(np.where(pos, xx, (lo or 0) + 1.0), o), np.nan)
            b = _pooled_slopes(g, w, z, X, pos, n_groups)
            zr = z - (X @ b if X.shape[1] else 0.0)
            mean, var, n_pos, n_eff = weighted_moments(g, w, zr, pos, n_groups)
            kappa = _pooled_kurtosis(g, w, zr, pos, mean, var, n_eff)
            with np.errstate(divide="ignore", invalid="ignore"):
                ls_th = np.where(
                    np.isfinite(var) & (var > 0), 0.5 * (np.log(var) + 1.0 / (n_eff - 1.0)), np.nan
                )
                ls_ps = np.where(np.isfinite(ls_th), (kappa - 1.0) / (4.0 * (n_eff - 1.0)), np.nan)
            params.append(ParamSpec(f"{o.name}__logscale", o.name, "logscale"))
            thetas.append(ls_th)
            psis.append(ls_ps)
            defaults.append(0.0)
            om.logscale = len(params) - 1
            pooled_var = float(
                np.nansum(var * (n_pos - 1)) / max(np.nansum((n_pos - 1) * np.isfinite(var)), 1)
            )
            with np.errstate(divide="ignore", invalid="ignore"):
                loc_ps = np.where(n_pos > 0, pooled_var / n_eff, np.nan)
            params.append(ParamSpec(f"{o.name}__loc", o.name, "loc"))
            thetas.append(np.where(n_pos > 0, mean, np.nan))
            psis.append(loc_ps)
            defaults.append(0.0)
            om.loc = len(params) - 1
            loc_info[om.loc] = (om.logscale, n_eff)
            om.slope = b
            numeric_data[o.name] = {"zr": zr, "pos": pos, "at_min": at_min, "mask": fp}
        models.append(om)

    names = [p.name for p in params]
    theta = np.column_stack(thetas)
    psi = np.column_stack(psis)
    terms = pooling_terms(table, c.cell_dims, c.wave, c.interactions)
    log.info(
        "synth fit: %d parameters x %d cell-waves, %d prior terms",
        len(params),
        n_groups,
        len(terms),
    )
    first = fit_pooled(
        theta, psi, terms, names, np.asarray(defaults), progress_seconds=c.progress_seconds
    )

    # further passes: penalised quasi-likelihood for shares (working response linearised
    # at the current posterior, Breslow & Clayton 1993), location variances from the
    # smoothed cell scale
    pooled = first
    for _ in range(2):
        theta2, psi2 = theta.copy(), psi.copy()
        for i, (p_hat, n_eff) in share_info.items():
            obs = np.isfinite(theta[:, i])
            eta = pooled.post_mean[:, i]
            mu = np.clip(expit(eta), 1e-4, 1 - 1e-4)
            v = mu * (1 - mu)
            with np.errstate(invalid="ignore", divide="ignore"):
                theta2[:, i] = np.where(obs, eta + (p_hat - mu) / v, np.nan)
                psi2[:, i] = np.where(obs, 1.0 / (np.maximum(n_eff, 1e-9) * v), np.nan)
        for i, (j, n_eff) in loc_info.items():
            obs = np.isfinite(theta[:, i])
            with np.errstate(divide="ignore", invalid="ignore"):
                psi2[:, i] = np.where(
                    obs, np.exp(2 * pooled.post_mean[:, j]) / np.maximum(n_eff, 1e-9), np.nan
                )
        pooled = fit_pooled(
            theta2,
            psi2,
            terms,
            names,
            np.asarray(defaults),
            progress_seconds=c.progress_seconds,
            start=pooled,
            max_iter=24,
        )
    log.info(
        "synth fit: pooling done (EM iterations %d first pass + %d last), %.1fs",
        first.iterations,
        pooled.iterations,
        time.monotonic() - t0,
    )

    post = pooled.post_mean
    # texture: residual shapes, then copula normal scores
    jit_rng = stream_rng(c.seed, "copula-jitter")
    scores = np.full((len(r), len(c.outcomes)), np.nan)
    for om in models:
        o = om.spec
        d = numeric_data[o.name]
        if o.is_discrete:
            F = cumulative_probs(post[:, list(om.cats)])  # (G, K-1)
            Fg = F[g]
            code = d["code"]
            k = np.clip(code, 0, len(om.cats))
            ext = np.column_stack([np.zeros(len(r)), Fg, np.ones(len(r))])
            lo_u = ext[np.arange(len(r)), k]
            hi_u = ext[np.arange(len(r)), k + 1]
            z = copula.normal_scores(lo_u, hi_u, jit_rng.random(len(r)))
            scores[:, om.latent] = np.where(d["mask"], z, np.nan)
        else:
            sc = np.exp(post[:, om.logscale])
            rres = (d["zr"] - post[g, om.loc]) / sc[g]
            om.grid_p, om.grid_q = copula.weighted_quantile_grid(rres[d["pos"]], w[d["pos"]])
            p0 = expit(post[:, om.atmin])[g] if om.atmin is not None else np.zeros(len(r))
            u_pos = p0 + (1 - p0) * copula.grid_cdf(np.nan_to_num(rres), om.grid_p, om.grid_q)
            lo_u = np.where(d["at_min"], 0.0, u_pos)
            hi_u = np.where(d["at_min"], p0, u_pos)
            z = copula.normal_scores(lo_u, hi_u, jit_rng.random(len(r)))
            scores[:, om.latent] = np.where(d["mask"], z, np.nan)
    corr = copula.weighted_correlation(scores, w)
    chol = np.linalg.cholesky(corr)

    spec = replace(spec_stub, params=tuple(params), models=tuple(models), chol=chol)
    out = table[
        [CELL_ID, *c.cell_dims, c.wave, "n_respondents", "n_population", "support_class"]
    ].copy()
    cols = {}
    for i, p in enumerate(params):
        cols[p.mean_col] = post[:, i]
        cols[p.sd_col] = pooled.post_sd[:, i]
    out = pd.concat([out, pd.DataFrame(cols, index=out.index)], axis=1)
    corr_df = pd.DataFrame(corr, index=list(c.outcome_names), columns=list(c.outcome_names))
    seconds = time.monotonic() - t0
    log.info("synth fit: done in %.1fs", seconds)
    return SynthModel(out, spec, pooled, corr_df, pooled.diagnostics, seconds)


def cumulative_probs(cr_logits: np.ndarray) -> np.ndarray:
    """Cumulative category probabilities F_0..F_{K-2} from continuation-ratio logits
    (columns j: logit P(y = j | y >= j)); elementwise, fixed order."""
    n, k1 = cr_logits.shape
    surv = np.ones(n)
    cum = np.zeros(n)
    out = np.empty((n, k1))
    for j in range(k1):
        h = expit(cr_logits[:, j])
        cum = cum + h * surv
        surv = surv * (1.0 - h)
        out[:, j] = cum
    return out


def _level_codes(s: pd.Series, o: OutcomeSpec, levels: list) -> np.ndarray:
    present = s.notna()
    if o.type == "binary":
        x = pd.to_numeric(s, errors="coerce")
        bad = present & ~x.isin([0, 1])
        code = np.where(present, x.fillna(0).to_numpy(dtype=float), -1).astype(np.int64)
    else:
        mapping = {lv: i for i, lv in enumerate(levels)}
        mapped = s.map(mapping)
        bad = present & mapped.isna()
        code = mapped.fillna(-1).to_numpy(dtype=np.int64)
    if bad.any():
        ex = s[bad].iloc[0]
        raise SynthInputError(
            f"outcome '{o.name}' has {int(bad.sum())} value(s) outside its levels "
            f"{levels} (e.g. {ex!r}); fix ss_outcomes or the data"
        )
    return code


def _pooled_slopes(g, w, z, X, mask, n_groups) -> np.ndarray:
    """Within-cell weighted least squares slopes of z on X, pooled over cells (cell means
    removed, so cell intercepts are left to the pooled cell model)."""
    p = X.shape[1]
    if p == 0:
        return np.zeros(0)
    _, sw, _ = group_weights(g, w, mask, n_groups)
    wm = np.where(mask, w, 0.0)
    safe = np.where(sw > 0, sw, 1.0)
    zc = np.where(
        mask,
        z - (np.bincount(g, weights=np.where(mask, w * z, 0.0), minlength=n_groups) / safe)[g],
        0.0,
    )
    Xc = np.empty_like(X)
    for k in range(p):
        mk = np.bincount(g, weights=wm * X[:, k], minlength=n_groups) / safe
        Xc[:, k] = np.where(mask, X[:, k] - mk[g], 0.0)
    A = (Xc * wm[:, None]).T @ Xc + 1e-8 * np.eye(p) * max(float(wm.sum()), 1.0)
    return np.linalg.solve(A, (Xc * wm[:, None]).T @ zc)


def _pooled_kurtosis(g, w, z, mask, mean, var, n_eff) -> float:
    """Pooled kurtosis of within-cell standardised values (cells with n_eff >= 10)."""
    ok = mask & (n_eff[g] >= 10) & np.isfinite(var[g]) & (var[g] > 0)
    if ok.sum() < 50:
        return 3.0
    rr = (z[ok] - mean[g[ok]]) / np.sqrt(var[g[ok]])
    ww = w[ok]
    k = float(np.sum(ww * rr**4) / np.sum(ww)) / float(np.sum(ww * rr**2) / np.sum(ww)) ** 2
    return float(np.clip(k, 1.8, 30.0))
