"""The DP measurements: the only code in DP mode that reads the respondents' answers.

Each measurement is an exact query (a vector of sums, one coordinate per cell x wave or pooling
group x wave) plus opendp's Gaussian mechanism, calibrated to the query's L2 sensitivity and its
share of the zCDP budget. Neighbouring datasets differ by one unit (all its waves): a unit has at
most one row per wave and every query is indexed by wave, so its rows land in distinct
coordinates and the L2 sensitivity is sqrt(waves) x the largest contribution of one row.

Measured (docs/privacy.md says why):

* ``counts:<o>`` per cell x wave, the count of each answer of outcome o (missing first; numeric
  outcomes: missing / at the lower bound / a count's values lo+1..lo+COUNT_LEVELS / above);
* ``logsum:<o>`` per cell x wave, the sum of v = log(1 + clamp(x) - lo) over the answers above the
  lower bound of a numeric outcome, centred on the middle of its range [0, log(1 + hi - lo)];
* ``resid:<o>`` per pooling group x wave, the sum of squared residuals of v from a centre the
  previous measurements give (noisy cell mean, else group mean), clamped to +-RESID_CLAMP: the
  within-cell variance, measured adaptively so its sensitivity is small;
* ``scores`` per pooling group x wave, the sums and cross-products of every outcome's score in
  [-1, 1] and of each register auxiliary's within-cell score (2 x its mid-rank in its frame cell
  - 1, :mod:`surveysynth.privacy.register`): the dependence between answers and on the unit's
  size within its cell (a correlation matrix for the Gaussian copula).

Clamping bounds come from ``ss_dp_bounds`` (or the outcome's declared min / max): never from the
data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import norm

from surveysynth.contract.config import SynthConfig, SynthConfigError
from surveysynth.contract.inputs import CELL_ID, make_cell_id
from surveysynth.privacy.ledger import LedgerRow, epsilon_of, gaussian, rho_for_budget, scale_for
from surveysynth.privacy.register import RegisterRanks
from surveysynth.privacy.register import scores as aux_scores

#: a count's first values above its lower bound (1, 2 and 3 employees) are answer codes of their
#: own, measured as category counts: a log-normal rounded to integers misses their spikes (the
#: demo's businesses: 39% at 1 employee, 30% of the DP records)
COUNT_LEVELS = 3
#: residuals of the log-scale values are clamped to +- this (a factor of e^3 ~ 20 either side)
RESID_CLAMP = 3.0
#: a numeric answer's copula score is its residual in units of this many within-cell sds
SCORE_SDS = 2.0
#: share of the budget per measurement kind (normalised over the measurements made)
WEIGHTS = {
    "counts": 1.0,
    "mcounts": 1.0,
    "logsum": 1.0,
    "mlogsum": 1.0,
    "resid": 0.5,
    "scores": 1.0,
}
#: a noisy cell mean is used as the residual centre from this many noisy answers, and when its
#: noisy count is this many noise sds clear of 0
MIN_CENTRE_N = 5.0
RATIO_SD = 3.0
#: ... and when the noise variance of the noisy mean of v is at most this (sd ~0.2 on the log
#: scale): a noisier mean would put the noise, clamped, into the residuals
MAX_CENTRE_VAR = 0.05


@dataclass(frozen=True)
class DPSettings:
    epsilon: float
    delta: float
    spend_epsilon: float
    bounds: dict[str, tuple[float, float]]
    pool_by: tuple[str, ...] = ()
    waves: tuple[Any, ...] = ()

    @classmethod
    def from_vars(cls, v: dict[str, Any], config: SynthConfig) -> DPSettings:
        eps = float(v.get("ss_dp_epsilon") or 1.0)
        delta = float(v.get("ss_dp_delta") or 1e-6)
        spend = v.get("ss_dp_spend_epsilon")
        raw = v.get("ss_dp_bounds") or {}
        bounds = {}
        for o in config.outcomes:
            if not o.is_numeric:
                continue
            b = raw.get(o.name) or [o.min, o.max]
            if b[0] is None or b[1] is None:
                raise SynthConfigError(
                    f"ss_privacy_mode dp: numeric outcome '{o.name}' needs clamping bounds: set "
                    f"ss_dp_bounds: {{{o.name}: [lo, hi]}} (or min and max in ss_outcomes); "
                    "bounds are never taken from the data"
                )
            bounds[o.name] = (float(b[0]), float(b[1]))
            if bounds[o.name][1] - bounds[o.name][0] <= value_levels(o):
                raise SynthConfigError(
                    f"ss_dp_bounds: count '{o.name}' spans {b}, at most its {COUNT_LEVELS} own "
                    "values above the lower bound: give an upper bound above them"
                )
        pool = tuple(v.get("ss_dp_pool_by") or ())
        bad = [d for d in pool if d not in config.cell_dims]
        if bad:
            raise SynthConfigError(f"ss_dp_pool_by: {bad} are not cell dimensions (ss_cell_dims)")
        return cls(
            eps,
            delta,
            float(spend) if spend is not None else eps,
            bounds,
            pool,
            _public_waves(v, config),
        )


def _public_waves(v: dict[str, Any], config: SynthConfig) -> tuple[Any, ...]:
    """The design's waves, ``ss_dp_waves``: public, so the plan and every sensitivity are fixed
    before the answers are read. Replica mode is refused: its plan copies the respondents'
    layout (their number per cell, their weights)."""
    if config.mode == "replica":
        raise SynthConfigError(
            "ss_privacy_mode dp plans records for the frame's units (augment mode); replica mode "
            "copies the respondents' layout (counts per cell, weights), which is not private"
        )
    raw = v.get("ss_dp_waves")
    waves = [raw] if isinstance(raw, (str, int, float)) else list(raw or [])
    if not waves:
        raise SynthConfigError(
            "ss_privacy_mode dp needs the design's waves as a var, ss_dp_waves: [..] (every wave "
            "the survey may hold): the waves found in the responses would make the plan and the "
            "noise depend on who answered"
        )
    if len(set(map(str, waves))) != len(waves):
        raise SynthConfigError(f"ss_dp_waves lists a wave twice: {waves}")
    return tuple(waves)


@dataclass
class NoisyStats:
    """What the DP fit sees: public cell keys and noisy sums, nothing else."""

    cells: pd.DataFrame  # public: cell_id, cell dims, wave, n_population (the frame's)
    group: np.ndarray  # pooling group x wave of each cell row (public: from the keys)
    n_groups: int
    counts: dict[str, np.ndarray] = field(default_factory=dict)  # K x levels (missing first)
    logsum: dict[str, np.ndarray] = field(default_factory=dict)  # K, centred on mid
    resid: dict[str, np.ndarray] = field(default_factory=dict)  # G
    centre: dict[str, np.ndarray] = field(default_factory=dict)  # K, from noisy stats
    centre_own: dict[str, np.ndarray] = field(default_factory=dict)  # K, centred on own mean
    scores: np.ndarray | None = None  # G x (P + P(P+1)/2)
    # the margins (each cell dimension x wave): public codes, and their noisy sums
    margins: list[np.ndarray] = field(default_factory=list)  # margin level of each cell row
    margin_wave: list[np.ndarray] = field(default_factory=list)  # wave code of each level
    mcounts: dict[str, list[np.ndarray]] = field(default_factory=dict)  # per dim: M x codes
    mlogsum: dict[str, list[np.ndarray]] = field(default_factory=dict)  # per dim: M
    noise_var: dict[str, float] = field(default_factory=dict)  # per measurement, per coordinate
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)  # lo, L (log range)
    ledger: list[LedgerRow] = field(default_factory=list)
    pool_by: tuple[str, ...] = ()
    n_aux: int = 0  # register auxiliaries' scores after the answers' in ``scores``
    above: dict[str, np.ndarray] = field(default_factory=dict)  # a count's above_split


# ----------------------------------------------------------------------- rows -> codes
def public_cells(support: pd.DataFrame, config: SynthConfig) -> pd.DataFrame:
    """The cell x wave keys and population counts: public (the frame and the design's waves)."""
    cols = [CELL_ID, *config.cell_dims, config.wave, "n_population"]
    s = support.copy()
    if CELL_ID not in s.columns:
        s[CELL_ID] = make_cell_id(s, list(config.cell_dims))
    s = s[cols].sort_values([CELL_ID, config.wave], kind="mergesort")
    return s.reset_index(drop=True)


def _keys(df: pd.DataFrame, wave: str) -> pd.Index:
    return pd.Index(df[CELL_ID].astype(str) + "\x1f" + df[wave].astype(str))


def margins_of(cells: pd.DataFrame, config: SynthConfig):
    """Per cell dimension, the margin level (dimension level x wave) of every cell row and the
    wave code of every margin level (public: from the keys)."""
    wave = pd.factorize(cells[config.wave], sort=True)[0]
    codes, waves = [], []
    for d in config.cell_dims:
        m, uniq = pd.factorize(
            cells[d].astype(str) + "\x1f" + pd.Series(wave).astype(str), sort=True
        )
        codes.append(m.astype(np.int64))
        w = np.zeros(len(uniq), dtype=np.int64)
        w[m] = wave
        waves.append(w)
    return codes, waves


def groups_of(cells: pd.DataFrame, config: SynthConfig, pool_by) -> tuple[np.ndarray, int]:
    g = cells[[*pool_by, config.wave]].astype(str).agg("\x1f".join, axis=1)
    codes, uniq = pd.factorize(g, sort=True)
    return codes.astype(np.int64), len(uniq)


def row_index(responses: pd.DataFrame, cells: pd.DataFrame, config: SynthConfig) -> np.ndarray:
    """Cell row of each response (one row per unit x wave kept; -1: not a known cell x wave)."""
    r = responses.drop_duplicates([config.unit_id, config.wave], keep="first")
    r = r.assign(**{CELL_ID: make_cell_id(r, list(config.cell_dims))})
    k = _keys(cells, config.wave).get_indexer(_keys(r, config.wave))
    out = np.full(len(responses), -1, dtype=np.int64)
    out[responses.index.get_indexer(r.index)] = k
    return out


def value_levels(o) -> int:
    """How many values just above the lower bound are answer codes of their own."""
    return COUNT_LEVELS if o.type == "count" else 0


def above_offset(o, lo: float) -> float:
    """Where the log-normal part starts: v = log(1 + x - offset) for the answers above it."""
    return lo + value_levels(o)


def codes_of(responses: pd.DataFrame, o, bounds) -> tuple[np.ndarray, np.ndarray]:
    """Answer code per row (0 = missing, then levels; numeric: 1 = at the lower bound, then
    for a count 1 + j at lo + j for j = 1..COUNT_LEVELS, and last: above them) and the clamped
    log-scale value v (nan unless in the last code)."""
    s = responses[o.name]
    if o.is_numeric:
        lo, hi = bounds[o.name]
        x = pd.to_numeric(s, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        xc = np.clip(x, lo, hi)
        d, top = xc - lo, value_levels(o)
        code = np.where(d <= top, 1 + np.ceil(np.maximum(d, 0.0)), top + 2)
        code = np.where(np.isnan(x), 0, code).astype(np.int64)
        above = code == top + 2
        v = np.where(above, np.log1p(np.where(above, d - top, 0.0)), np.nan)
        return code, v
    levels = list(o.category_levels)
    pos = pd.Index(levels).get_indexer(s.astype(object).where(s.notna(), None))
    return (pos + 1).astype(np.int64), np.full(len(s), np.nan)


def n_codes(o) -> int:
    return 3 + value_levels(o) if o.is_numeric else len(o.category_levels) + 1


def score_of(o, code: np.ndarray, v: np.ndarray, centre=None, scale=None, own=None) -> np.ndarray:
    """Each row's score in [-1, 1] (missing 0): the copula's view of the answer. A numeric
    answer above its lower bound scores its normal score over SCORE_SDS: its residual from its
    cell's centre (its own noisy mean, else its main effects) in residual sds (``centre``,
    ``scale``: per row, post-processing of earlier noisy sums), clamped, and 0 at the bound: the
    copula places records within their cell, so it needs the answers' dependence within cells,
    not the spread of the cells' means over the whole range; and the 5-15% of answers at the
    bound (closed businesses' 0 employees), scored at an end, would outweigh the dependence of
    the values above it (employees on the register's employment: 0.97 within cells) in the
    correlation. What the bound goes with is the business rules' part
    (:mod:`surveysynth.privacy.rules`). A count's own values (``own``: per row, its pooling
    group's noisy shares of them among the answers above the bound) take the lowest part of that
    scale: each its mid-share's normal score, the values above them the rest."""
    if o.is_numeric:
        z = (np.nan_to_num(v) - centre) / np.nan_to_num(scale, nan=1.0)
        ok = np.isfinite(v)
        top = value_levels(o)
        if top and own is not None:
            is_own = (code >= 2) & (code <= top + 1)
            below = own.sum(axis=1)
            cum = np.cumsum(own, axis=1)
            j = np.clip(code - 2, 0, top - 1)
            rows = np.arange(len(code))
            mid = cum[rows, j] - own[rows, j] / 2
            u = np.where(is_own, mid, below + (1 - below) * norm.cdf(np.nan_to_num(z)))
            z = norm.ppf(np.clip(u, 1e-6, 1 - 1e-6))
            ok = ok | is_own
        r = z / SCORE_SDS
        return np.where(ok & np.isfinite(r), np.clip(r, -1, 1), 0.0)
    n_lv = len(o.category_levels)
    step = 2.0 / max(n_lv - 1, 1)
    return np.where(code == 0, 0.0, -1.0 + (code - 1) * step)


#: the latent normal z the scores' attenuation is integrated over (weights: its density)
_Z = np.linspace(-6.0, 6.0, 1201)
_W = norm.pdf(_Z) / norm.pdf(_Z).sum()
#: corr(2 Phi(z) - 1, z): a register auxiliary's score (2u - 1) against its latent normal score
AUX_ATTENUATION = math.sqrt(3.0 / math.pi)


def score_attenuation(o, shares: np.ndarray) -> np.ndarray:
    """Per group (each row of ``shares``: the group's answer code shares, missing first), the
    correlation of an answer's score with the latent normal z it is drawn from (the sampler's
    inverse CDF of u = Phi(z) over the codes): the factor by which scores' correlations
    understate the copula's latent ones, to first order of their Hermite expansion (the
    polyserial correction). A three-level answer's codes correlate about 0.9 with z; the
    turnover score, 0 for the 10-15% of answers at the bound, about 0.8."""
    p = np.maximum(shares, 0.0)
    p = p / np.maximum(p.sum(axis=1, keepdims=True), 1e-12)
    cum = np.cumsum(p, axis=1)
    u = norm.cdf(_Z)[None, :]
    code = np.minimum((u[:, None, :] > cum[:, :, None]).sum(axis=1), p.shape[1] - 1)
    if o.is_numeric:
        below = cum[:, [1]]
        span = np.maximum(1.0 - below, 1e-12)
        pos = (u - below) / span
        mid = (np.take_along_axis(cum, code, 1) - np.take_along_axis(p, code, 1) / 2 - below) / span
        top = value_levels(o)
        own = (code >= 2) & (code <= top + 1)
        z = norm.ppf(np.clip(np.where(own, mid, pos), 1e-6, 1 - 1e-6))
        S = np.where(code >= 2, np.clip(z / SCORE_SDS, -1, 1), 0.0)
    else:
        step = 2.0 / max(len(o.category_levels) - 1, 1)
        S = np.where(code == 0, 0.0, -1.0 + (code - 1) * step)
    m = S @ _W
    sd = np.sqrt(np.maximum((S * S) @ _W - m * m, 0.0))
    return np.where(sd > 1e-9, (S @ (_W * _Z)) / np.maximum(sd, 1e-12), 1.0)


# ----------------------------------------------------------------------- exact queries
def query_counts(k, code, n_cells, n_lv) -> tuple[np.ndarray, float]:
    ok = k >= 0
    vec = np.bincount(k[ok] * n_lv + code[ok], minlength=n_cells * n_lv).astype(float)
    return vec, 1.0


def query_mcounts(k, code, margins, n_lv) -> tuple[np.ndarray, float]:
    """The answer counts per margin level, one block per cell dimension: a row adds 1 to one
    coordinate of each block."""
    ok = k >= 0
    blocks = [
        np.bincount(m[k[ok]] * n_lv + code[ok], minlength=(m.max() + 1) * n_lv) for m in margins
    ]
    return np.concatenate(blocks).astype(float), math.sqrt(len(margins))


def query_mlogsum(k, code, v, margins, log_range) -> tuple[np.ndarray, float]:
    ok = (k >= 0) & np.isfinite(v)
    half = log_range / 2
    blocks = [np.bincount(m[k[ok]], weights=v[ok] - half, minlength=m.max() + 1) for m in margins]
    return np.concatenate(blocks), half * math.sqrt(len(margins))


def split_blocks(vec: np.ndarray, margins, width: int) -> list[np.ndarray]:
    sizes = [(m.max() + 1) * width for m in margins]
    parts = np.split(vec, np.cumsum(sizes)[:-1])
    return [p.reshape(-1, width) if width > 1 else p for p in parts]


def query_logsum(k, code, v, n_cells, log_range) -> tuple[np.ndarray, float]:
    ok = (k >= 0) & np.isfinite(v)
    half = log_range / 2
    return np.bincount(k[ok], weights=v[ok] - half, minlength=n_cells), half


def query_resid(k, code, v, centre, group, n_groups) -> tuple[np.ndarray, float]:
    ok = (k >= 0) & np.isfinite(v)
    r = np.clip(v[ok] - centre[k[ok]], -RESID_CLAMP, RESID_CLAMP)
    return np.bincount(group[k[ok]], weights=r * r, minlength=n_groups), RESID_CLAMP**2


def query_scores(k, scores: np.ndarray, group, n_groups) -> tuple[np.ndarray, float]:
    """Sums of the scores and of their pairwise products (i <= j), per group x wave."""
    ok = k >= 0
    s = scores[ok]
    P = s.shape[1]
    iu = np.triu_indices(P)
    feats = np.hstack([s, s[:, iu[0]] * s[:, iu[1]]])
    g = group[k[ok]]
    out = np.vstack([np.bincount(g, weights=f, minlength=n_groups) for f in feats.T]).T
    return out.ravel(), math.sqrt(feats.shape[1])


# ----------------------------------------------------------------------- mechanisms
class _Budget:
    def __init__(self, st: DPSettings, plan: list[tuple[str, str]], n_waves: int):
        self.rho_total = rho_for_budget(st.spend_epsilon, st.delta)
        w = np.array([WEIGHTS[kind] for kind, _ in plan])
        self.rho = dict(zip((f"{k}:{c}" for k, c in plan), self.rho_total * w / w.sum()))
        self.sqrt_w = math.sqrt(n_waves)
        self.delta = st.delta

    def release(self, stats: NoisyStats, name: str, what: str, cols: str, vec, row_bound):
        sens = self.sqrt_w * row_bound
        scale = scale_for(self.rho[name], sens)
        meas = gaussian(scale)
        noisy = np.asarray(meas(vec.astype(float).tolist()), dtype=float)
        rho = float(meas.map(float(sens)))
        stats.noise_var[name] = scale**2
        stats.ledger.append(
            LedgerRow(
                name,
                what,
                cols,
                "gaussian (opendp make_gaussian, zCDP)",
                sens,
                scale,
                rho,
                epsilon_of(rho, self.delta),
                self.delta,
            )
        )
        return noisy


def measurement_plan(config: SynthConfig) -> list[tuple[str, str]]:
    plan = [("counts", o.name) for o in config.outcomes]
    plan += [("mcounts", o.name) for o in config.outcomes]
    plan += [("logsum", o.name) for o in config.outcomes if o.is_numeric]
    plan += [("mlogsum", o.name) for o in config.outcomes if o.is_numeric]
    plan += [("resid", o.name) for o in config.outcomes if o.is_numeric]
    return plan + [("scores", "all")]


def above_split(stats: NoisyStats, name: str, first: int = 2) -> np.ndarray:
    """Per cell x wave, how a count's answers above the bound split over its own values and the
    rest (codes ``first``..): main effects of every cell dimension on the log scale, from the
    noisy margins (each dimension level x wave one noise draw; post-processing), the wave's split
    times each dimension level's ratio to it. A cell's own counts over these codes are mostly
    noise; one pooling group's split for all its cells put a third of the 250+ band at 1-3
    employees when the group was the wave."""

    def split(counts: np.ndarray) -> np.ndarray:
        c = np.maximum(counts[:, first:], 0.0) + 1e-6
        return c / c.sum(axis=1, keepdims=True)

    blocks = stats.mcounts[name]
    base_lv = np.vstack(
        [np.bincount(stats.margin_wave[0], blocks[0][:, j]) for j in range(blocks[0].shape[1])]
    ).T  # the wave's counts, from the first dimension's levels
    base = np.log(split(base_lv))[stats.margin_wave[0][stats.margins[0]]]
    log_pi = base.copy()
    for m, b in zip(stats.margins, blocks):
        log_pi += np.log(split(b))[m] - base
    pi = np.exp(log_pi - log_pi.max(axis=1, keepdims=True))
    return pi / pi.sum(axis=1, keepdims=True)


def measure(
    responses: pd.DataFrame,
    support: pd.DataFrame,
    config: SynthConfig,
    st: DPSettings,
    register: RegisterRanks | None = None,
) -> NoisyStats:
    """Every noisy statistic the DP fit uses, with the ledger of what was spent. ``register``:
    the frame's auxiliaries (:mod:`surveysynth.privacy.register`); their within-cell scores join
    the answers' in the ``scores`` measurement."""
    cells = public_cells(support, config)
    group, n_g = groups_of(cells, config, st.pool_by)
    stats = NoisyStats(cells, group, n_g, pool_by=tuple(st.pool_by))
    stats.margins, stats.margin_wave = margins_of(cells, config)
    n_waves = int(cells[config.wave].nunique())
    budget = _Budget(st, measurement_plan(config), n_waves)
    k = row_index(responses.reset_index(drop=True), cells, config)
    K = len(cells)
    score_cols = []
    for o in config.outcomes:
        code, v = codes_of(responses.reset_index(drop=True), o, st.bounds)
        L = n_codes(o)
        vec, b = query_counts(k, code, K, L)
        what = "answers per cell x wave by code (missing, levels / at lower bound, above)"
        stats.counts[o.name] = budget.release(stats, f"counts:{o.name}", what, o.name, vec, b)
        stats.counts[o.name] = stats.counts[o.name].reshape(K, L)
        vec, b = query_mcounts(k, code, stats.margins, L)
        what = "answers per margin (each cell dimension x wave) by code"
        noisy = budget.release(stats, f"mcounts:{o.name}", what, o.name, vec, b)
        stats.mcounts[o.name] = split_blocks(noisy, stats.margins, L)
        centre = scale = own = None
        if o.is_numeric:
            lo, hi = st.bounds[o.name]
            log_range = math.log1p(hi - lo)
            stats.ranges[o.name] = (lo, log_range)
            _numeric(stats, budget, o.name, k, code, v, log_range)
            kk = np.maximum(k, 0)
            centre = np.where(k >= 0, stats.centre[o.name][kk], np.nan)
            scale = residual_sd(stats, o.name)[stats.group[kk]]
            top = value_levels(o)
            if top:
                stats.above[o.name] = above_split(stats, o.name)
            own = stats.above[o.name][kk, :top] if top else None
        score_cols.append(score_of(o, code, v, centre, scale, own))
    names = [o.name for o in config.outcomes]
    if register is not None and register.width:
        aux = aux_scores(register.u(responses.reset_index(drop=True)))
        score_cols += list(aux.T)
        names += [f"{a} (rank in cell)" for a in register.names]
        stats.n_aux = register.width
    vec, b = query_scores(k, np.column_stack(score_cols), group, n_g)
    what = "sums and cross-products of the answers' scores per pooling group x wave"
    cols = ",".join(names)
    stats.scores = budget.release(stats, "scores:all", what, cols, vec, b).reshape(n_g, -1)
    return stats


def _numeric(stats: NoisyStats, budget: _Budget, name, k, code, v, log_range) -> None:
    K = len(stats.cells)
    vec, b = query_logsum(k, code, v, K, log_range)
    what = "sum of clamped log(1 + x - lo) above the lower bound, per cell x wave"
    stats.logsum[name] = budget.release(stats, f"logsum:{name}", what, name, vec, b)
    vec, b = query_mlogsum(k, code, v, stats.margins, log_range)
    what = "sum of clamped log(1 + x - lo) above the lower bound, per margin"
    noisy = budget.release(stats, f"mlogsum:{name}", what, name, vec, b)
    stats.mlogsum[name] = split_blocks(noisy, stats.margins, 1)
    stats.centre[name] = residual_centre(stats, name)
    vec, b = query_resid(k, code, v, stats.centre[name], stats.group, stats.n_groups)
    what = "sum of squared clamped residuals of the log value, per pooling group x wave"
    stats.resid[name] = budget.release(stats, f"resid:{name}", what, name, vec, b)


def residual_sd(stats: NoisyStats, name: str) -> np.ndarray:
    """Post-processing: each pooling group x wave's root mean squared residual of v (its noisy
    sum of squares over its noisy count above the lower bound), floored at 0.1."""
    n = np.bincount(stats.group, stats.counts[name][:, -1], stats.n_groups)
    ms = stats.resid[name] / np.maximum(n, 1.0)
    return np.sqrt(np.maximum(ms, 0.01))


def residual_centre(stats: NoisyStats, name: str) -> np.ndarray:
    """Post-processing of the noisy counts and sums: the cell's noisy mean of v where its noisy
    count of answers above the lower bound is RATIO_SD noise sds clear of 0 (and at least
    MIN_CENTRE_N) and the mean's noise variance (delta method) at most MAX_CENTRE_VAR, else its
    main-effects value from the noisy margins (the wave's overall mean
    plus each dimension's departure, a level's departure counted where its own noisy count is
    clear of 0): large sums whose ratio the noise does not upset. ``stats.centre_own`` records
    which cells were centred on their own mean, so the fit can tell the within-cell variance
    from the cells' spread around the main effects in the residuals."""
    half = stats.ranges[name][1] / 2
    n_pos = stats.counts[name][:, -1]
    sd = math.sqrt(stats.noise_var[f"counts:{name}"])
    nn = np.maximum(n_pos, 1.0)
    own = np.clip(stats.logsum[name] / nn, -half, half)
    noise = (stats.noise_var[f"logsum:{name}"] + own**2 * sd**2) / nn**2
    ok = (n_pos >= max(MIN_CENTRE_N, RATIO_SD * sd)) & (noise <= MAX_CENTRE_VAR)
    c_mean = np.where(ok, own, main_effects(stats, name))
    stats.centre_own[name] = ok
    return half + np.clip(c_mean, -half, half)


def main_effects(stats: NoisyStats, name: str, rounds: int = 10) -> np.ndarray:
    """Each cell's main-effects mean of v (centred on the range's middle): an additive model
    (the wave's overall mean plus one departure per dimension level) fitted to the noisy margins
    by backfitting, so that a level's fitted mean over its cells matches its noisy mean: the
    dimensions are not balanced (large firms crowd some sectors), and adding up one-way
    departures would count a shared effect twice. The cells are weighted by the answers they
    are expected to hold (:func:`expected_answers`). Each departure is kept where the level's
    noisy count is RATIO_SD noise sds clear of 0 (and at least MIN_CENTRE_N), shrunk by the
    positive part of 1 - N / d^2 (d the departure, N the DP noise variance of the level's mean,
    delta method): one the noise could have made is dropped, a large one kept (the level's
    sampling variance, sigma^2 / n over hundreds of answers, is neglected)."""
    s2n, s2l = stats.noise_var[f"mcounts:{name}"], stats.noise_var[f"mlogsum:{name}"]
    cut = max(MIN_CENTRE_N, RATIO_SD * math.sqrt(s2n))
    sums, counts = stats.mlogsum[name], [c[:, -1] for c in stats.mcounts[name]]
    waves = stats.margin_wave
    tot_s = np.mean([np.bincount(w, weights=x) for x, w in zip(sums, waves)], axis=0)
    tot_n = np.mean([np.bincount(w, weights=x) for x, w in zip(counts, waves)], axis=0)
    overall = tot_s / np.maximum(tot_n, 1.0)
    wt = expected_answers(stats, counts)
    dep = [np.zeros(len(x)) for x in sums]
    base = overall[waves[0][stats.margins[0]]]
    for _ in range(rounds):
        for i, (x, n, m) in enumerate(zip(sums, counts, stats.margins)):
            nn = np.maximum(n, 1.0)
            mean = x / nn
            others = base + sum(
                d[mm] for j, (d, mm) in enumerate(zip(dep, stats.margins)) if j != i
            )
            fitted = np.bincount(m, wt * others, len(x)) / np.maximum(
                np.bincount(m, wt, len(x)), 1e-12
            )
            d = mean - fitted
            keep = np.clip(1 - (s2l + mean**2 * s2n) / nn**2 / np.maximum(d**2, 1e-12), 0.0, 1.0)
            dep[i] = np.where(n >= cut, keep * d, 0.0)
    return base + sum(d[m] for d, m in zip(dep, stats.margins))


def expected_answers(stats: NoisyStats, counts: list[np.ndarray], rounds: int = 20) -> np.ndarray:
    """Each cell's expected number of answers: its population count (public) raked to every
    dimension's noisy margin counts (clipped at 0), so the cells' weights in a level follow the
    respondents' mix rather than the population's."""
    w = stats.cells["n_population"].to_numpy(dtype=float) + 1e-9
    for _ in range(rounds):
        for n, m in zip(counts, stats.margins):
            have = np.bincount(m, w, len(n))
            w = w * (np.maximum(n, 0.0) / np.maximum(have, 1e-12))[m] + 1e-12
    return w
