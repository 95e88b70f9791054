"""The fidelity gate's reference: what the same statistics show when nothing is wrong.

A fidelity statistic (a KS distance, a correlation gap) is never zero between two honest samples,
and how far from zero it lands depends on the sizes, the weights and the cells. So the gate does not
read a statistic against a fixed number: it reads it against the same statistic computed on the
same rows with the labels "real" and "synthetic" swapped at random within each pair.

Pairs. Each real respondent is paired, without replacement, with one synthetic record of the same
cell x wave, nearest on a register auxiliary (:func:`pair_rows`): in augment mode the records stand
for the non-responding units of the cell, and nonresponse depends on size, so the register profile
is matched first. If the synthesizer draws a record the way the population draws a unit, given the
cell and the auxiliary, the two members of a pair are exchangeable, and swapping them at random
leaves the joint distribution of everything unchanged. The B swapped copies are then B draws of
every statistic under that null hypothesis, at exactly these sizes, weights and cells. The pairs of
one real unit (its waves of a panel) swap together: its rows are alike, and swapping them one by
one would understate how much a real sample varies.

The gate is one max-T permutation test (Westfall & Young 1993) over every statistic j: with m_j
and s_j the mean and standard deviation of its B swapped values and tol_j its tolerance (a var),
T = max_j (D_j - tol_j - m_j) / s_j, and the same max for each swapped copy (tolerances are 0
there). The gate fails when the p-value (1 + #{T_b >= T}) / (B + 1) is at most ``alpha``; this
is an exact level-alpha test of "the synthetic records are exchangeable with the real ones up to
the tolerances", whatever the number of statistics and however they correlate. Each statistic's
row shows the threshold this implies, tol_j + m_j + c s_j, with c the critical value of T, so a row
fails exactly when it pushes T over c. A real sample from the same population fails with
probability at most alpha; with the tolerances, less.

Statistics (each oriented so that larger is worse): per outcome the weighted KS (numeric) or TV
(discrete) distance of the observed values and the gap in missing shares; per pair of ordered
columns (outcomes and register auxiliaries) the gap in weighted rank correlation (ranks from the
pooled rows, fixed across swaps); per pair with a categorical column (cell dimensions included)
the TV of the weighted contingency table (numerics cut at pooled quintiles); per region (a cell
dimension) and outcome the marginal distance; per numeric/binary outcome and region the shortfall
of the Karr interval overlap of the weighted means; per coefficient of a regression its interval
overlap; per discrete outcome the share of rare real levels missing from the synthetic side.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse, stats

from surveysynth.checks.risk import normalise_labels, resolve_column_types

__all__ = [
    "DEFAULT_TOLERANCES",
    "Statistic",
    "gate_statistics",
    "log_size",
    "max_t_gate",
    "pair_rows",
    "prepare_columns",
    "swap_matrix",
]

#: Tolerances: how much worse than the real-vs-real reference a statistic may be (var
#: ss_fidelity_tolerances). Distances are in their own units (KS / TV in [0, 1]); overlaps are
#: shortfalls of the Karr overlap (in [-1, 1]) below the reference's.
DEFAULT_TOLERANCES: dict[str, float] = {
    "marginal": 0.05,
    "missing_rate": 0.02,
    "dependence_correlation": 0.05,
    "register_dependence": 0.05,
    "dependence_correlation_max": 0.10,
    "register_dependence_max": 0.10,
    "dependence_contingency": 0.03,
    "region_marginal": 0.05,
    "ci_overlap": 0.25,
    "regression_ci_overlap": 0.25,
    "rare_survival": 0.20,
    "within_cell_dependence": 0.05,
    "within_cell_dependence_max": 0.10,
}

_KIND_NUMERIC = ("numeric",)


# ------------------------------------------------------------------------------ pairing


def _greedy(a: np.ndarray, b: np.ndarray, order: np.ndarray) -> np.ndarray:
    """For each a[i] in ``order``, the index of the nearest b not taken yet (len(a) <= len(b))."""
    taken = np.zeros(len(b), dtype=bool)
    out = np.empty(len(a), dtype=np.int64)
    for i in order:
        d = np.where(taken, np.inf, np.abs(b - a[i]))
        j = int(np.argmin(d))
        taken[j] = True
        out[i] = j
    return out


def _pair_group(a: np.ndarray, b: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """Positions (ia, ib) of min(len(a), len(b)) pairs, each row used once: rank order when the
    sides are equal in size (optimal in one dimension), else the smaller side picks greedily, in
    a seeded random order, its nearest free partner."""
    if len(a) == len(b):
        ia = np.argsort(a + rng.random(len(a)) * 1e-9, kind="stable")
        ib = np.argsort(b + rng.random(len(b)) * 1e-9, kind="stable")
        return ia, ib
    if len(a) < len(b):
        ia = np.arange(len(a))
        return ia, _greedy(a, b, rng.permutation(len(a)))
    ib = np.arange(len(b))
    return _greedy(b, a, rng.permutation(len(b))), ib


def log_size(s: pd.Series) -> np.ndarray:
    """log(1 + x) of a size column (negatives as 0, missing as 0): the key records are matched
    or ordered on."""
    x = pd.to_numeric(s, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    return np.where(np.isnan(x), 0.0, np.log1p(np.clip(x, 0.0, None)))


def _log_key(s: pd.Series | None, n: int, rng: np.random.Generator) -> np.ndarray:
    return rng.random(n) if s is None else log_size(s)


def pair_rows(
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    keys: Sequence[str],
    match_on: str | None,
    seed: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Row positions (real, synthetic) of the pairs: within each ``keys`` group (cell x wave),
    min(respondents, records) pairs without replacement, matched on log(1 + ``match_on``) (at
    random when None). Without replacement, so that no record stands in for two respondents
    (duplicates would make the synthetic side look less variable than it is)."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0xFA12]))
    ka = _log_key(real[match_on] if match_on else None, len(real), rng)
    kb = _log_key(synthetic[match_on] if match_on else None, len(synthetic), rng)
    ga = real.groupby(list(keys), sort=True, dropna=False).indices
    gb = synthetic.groupby(list(keys), sort=True, dropna=False).indices
    out_a, out_b = [], []
    for key, pa in ga.items():
        pb = gb.get(key)
        if pb is None or len(pb) == 0:
            continue
        ia, ib = _pair_group(ka[pa], kb[pb], rng)
        out_a.append(pa[ia])
        out_b.append(pb[ib])
    if not out_a:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.concatenate(out_a), np.concatenate(out_b)


def swap_matrix(n: int, b: int, seed: int, clusters: np.ndarray | None = None) -> np.ndarray:
    """(2n, b + 1) 0/1 matrix: column 0 the observed labels (first n rows real), columns 1..b
    the real side after swapping the pairs with probability 1/2, by ``clusters`` (a code per
    pair: the pairs of one real unit, its waves or a household's members, swap together, since
    the unit's rows are alike and a swap of single rows would understate the noise)."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x5A9]))
    if clusters is None:
        s = rng.random((n, b)) < 0.5
    else:
        codes = pd.factorize(np.asarray(clusters))[0]
        s = (rng.random((int(codes.max()) + 1 if n else 0, b)) < 0.5)[codes]
    top = np.column_stack([np.ones(n, dtype=bool), ~s])
    return np.vstack([top, ~top]).astype(float)


# ------------------------------------------------------------------------------ statistics


@dataclass
class Statistic:
    """One statistic over the observed labels (``values[0]``) and each swap (``values[1:]``)."""

    family: str  # key of DEFAULT_TOLERANCES
    metric: str  # metric name in fidelity_metrics
    column: str
    values: np.ndarray  # (b + 1,), larger is worse
    scale: float = 1.0  # reported value = scale * (values[0]); -1 for overlaps
    detail: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    gated: bool = True  # False: reported beside the gate, not part of its test


#: Families judged by their mean over components (pairs, regions, coefficients, columns): a
#: synthesizer that breaks a structure breaks it across many components, and a mean has light
#: tails, where the largest of many components would set a high bar. The worst component is
#: reported beside it.
AVERAGED = (
    "missing_rate",
    "dependence_correlation",
    "register_dependence",
    "dependence_contingency",
    "region_marginal",
    "ci_overlap_region",
    "regression_ci_overlap",
    "rare_survival",
    "within_cell_dependence",
)


#: Families also judged by their largest component (against the largest under the same swaps):
#: a synthesizer blind to one register variable breaks a few pairs, which a mean dilutes.
MAXED = ("dependence_correlation", "register_dependence", "within_cell_dependence")


def _standardised(s: Statistic) -> float:
    null = s.values[1:][np.isfinite(s.values[1:])]
    if len(null) < 2:
        return -np.inf
    return float((s.values[0] - null.mean()) / max(null.std(ddof=1), 1e-12))


def summarise(stats_: list[Statistic]) -> list[Statistic]:
    """Components of the AVERAGED families -> their mean (gated) and worst (reported)."""
    out = [s for s in stats_ if s.extra.get("group", s.family) not in AVERAGED]
    for key in AVERAGED:
        comps = [s for s in stats_ if s.extra.get("group", s.family) == key]
        if not comps:
            continue
        first = comps[0]
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = np.nanmean(np.vstack([c.values for c in comps]), axis=0)
        if key in MAXED:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                top = np.nanmax(np.vstack([c.values for c in comps]), axis=0)
            out.append(
                Statistic(
                    f"{key}_max",
                    f"{first.metric}_max",
                    f"largest of {len(comps)}",
                    top,
                    detail=f"largest of {len(comps)} components, against the largest under swaps",
                )
            )
        out.append(
            Statistic(
                first.family,
                f"{first.metric}_mean",
                f"mean of {len(comps)}",
                mean,
                scale=first.scale,
                detail=f"mean over {len(comps)} components ({first.detail or first.metric})",
            )
        )
        worst = max(comps, key=_standardised)
        out.append(
            Statistic(
                worst.family,
                f"{worst.metric}_worst",
                worst.column,
                worst.values,
                scale=worst.scale,
                detail=f"worst of {len(comps)} components by excess over its reference; report",
                gated=False,
            )
        )
    return out


def _side_sums(f: np.ndarray, wr: np.ndarray, wtot: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(features x swaps) weighted sums of each feature over the real side and the synthetic side."""
    if sparse.issparse(f):
        r = np.asarray(f.T @ wr)
        t = np.asarray(f.T @ wtot).reshape(-1, 1)
    else:
        r = f.T @ wr
        t = (f.T @ wtot).reshape(-1, 1)
    return r, t - r


def _onehot(codes: np.ndarray, k: int) -> sparse.csr_matrix:
    ok = codes >= 0
    rows = np.flatnonzero(ok)
    return sparse.csr_matrix((np.ones(len(rows)), (rows, codes[ok])), shape=(len(codes), k))


def _tv_from_sums(r: np.ndarray, s: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        pr = r / r.sum(axis=0, keepdims=True)
        ps = s / s.sum(axis=0, keepdims=True)
    return 0.5 * np.nansum(np.abs(pr - ps), axis=0)


def _ks(x: np.ndarray, ok: np.ndarray, wr: np.ndarray, wtot: np.ndarray) -> np.ndarray:
    """Weighted KS distance per swap over the rows ``ok`` (values ``x``)."""
    idx = np.flatnonzero(ok)
    if len(idx) == 0:
        return np.full(wr.shape[1], np.nan)
    o = idx[np.argsort(x[idx], kind="stable")]
    xs = x[o]
    last = np.r_[xs[1:] != xs[:-1], True]  # end of each tie group
    cr = np.cumsum(wr[o], axis=0)[last]
    ct = np.cumsum(wtot[o])[last][:, None]
    tr, tt = cr[-1:], ct[-1:]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.max(np.abs(cr / tr - (ct - cr) / (tt - tr)), axis=0)


def _codes(labels: np.ndarray) -> tuple[np.ndarray, int]:
    miss = pd.isna(labels)
    codes, uniq = pd.factorize(np.where(miss, None, labels), use_na_sentinel=True)
    return codes.astype(np.int64), len(uniq)


@dataclass
class _Column:
    name: str
    kind: str
    num: np.ndarray | None  # numeric value (numeric, binary, ordinal position), NaN missing
    codes: np.ndarray  # discrete code (numerics: pooled quintile bin), -1 missing
    k: int
    rank: np.ndarray | None  # pooled mid-rank in [0, 1] (ordered columns), NaN missing


def prepare_columns(
    frame: pd.DataFrame, columns: Sequence[str], spec: Mapping[str, Any]
) -> dict[str, _Column]:
    """Each column typed (``ss_outcomes`` form; unnamed columns by dtype) with its numeric value
    (numeric, binary, ordinal position; None for nominal), codes and pooled ranks."""
    kinds, levels = resolve_column_types(columns, spec, [frame])
    out = {}
    for c in columns:
        kind = kinds[c]
        if kind == "nominal":
            codes, k = _codes(normalise_labels(frame[c]))
            out[c] = _Column(c, kind, None, codes, k, None)
            continue
        if kind == "ordinal":
            lab = normalise_labels(frame[c])
            pos = {str(v): i for i, v in enumerate(levels[c])}
            num = np.array([np.nan if v is None else pos.get(v, np.nan) for v in lab], float)
        else:
            num = pd.to_numeric(frame[c], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        ok = ~np.isnan(num)
        rank = np.full(len(num), np.nan)
        if ok.any():
            rank[ok] = (stats.rankdata(num[ok]) - 0.5) / ok.sum()
        if kind == "numeric" and ok.any():
            edges = np.unique(np.quantile(num[ok], [0.2, 0.4, 0.6, 0.8]))
            codes = np.where(ok, np.searchsorted(edges, num, "right"), -1).astype(np.int64)
            k = len(edges) + 1
        else:
            codes, k = _codes(np.where(ok, num, np.nan).astype(object))
            codes = np.where(ok, codes, -1)
        out[c] = _Column(c, kind, num, codes, k, rank)
    return out


def _corr(
    ra: np.ndarray, rb: np.ndarray, wr: np.ndarray, wtot: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted Pearson correlation of pooled ranks on each side, per swap."""
    ok = ~(np.isnan(ra) | np.isnan(rb))
    a, b = np.where(ok, ra, 0.0), np.where(ok, rb, 0.0)
    f = np.column_stack([ok, a, b, a * a, b * b, a * b]).astype(float)
    r, s = _side_sums(f, wr * 1.0, wtot)

    def rho(m: np.ndarray) -> np.ndarray:
        n, sa, sb, saa, sbb, sab = m
        with np.errstate(invalid="ignore", divide="ignore"):
            cov = sab / n - sa * sb / n**2
            va, vb = saa / n - (sa / n) ** 2, sbb / n - (sb / n) ** 2
            return cov / np.sqrt(va * vb)

    return rho(r), rho(s)


def _centre(
    rank: np.ndarray, w: np.ndarray, cells: np.ndarray | None, min_rows: int = 6
) -> np.ndarray:
    """Ranks minus the weighted mean rank of their cell (pooled over both sides), in cells of at
    least ``min_rows`` rows (3 pairs); rows of smaller cells keep their rank, since centring a
    cell of one pair leaves nothing but the pair's own difference."""
    if cells is None:
        return rank
    ok = ~np.isnan(rank)
    k = int(cells.max()) + 1 if len(cells) else 0
    sw = np.bincount(cells[ok], weights=w[ok], minlength=k)
    swr = np.bincount(cells[ok], weights=(w * rank)[ok], minlength=k)
    size = np.bincount(cells, minlength=k)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(size >= min_rows, swr / sw, 0.0)
    return rank - mean[cells]


def _overlap(lo_o, hi_o, lo_s, hi_s) -> np.ndarray:
    """Karr et al. (2006) interval overlap, vectorised; clipped to [-1, 1]."""
    inter = np.minimum(hi_o, hi_s) - np.maximum(lo_o, lo_s)
    with np.errstate(invalid="ignore", divide="ignore"):
        a = np.where(hi_o - lo_o > 0, inter / (hi_o - lo_o), np.where(inter >= 0, 1.0, -1.0))
        b = np.where(hi_s - lo_s > 0, inter / (hi_s - lo_s), np.where(inter >= 0, 1.0, -1.0))
    return np.clip(0.5 * (a + b), -1.0, 1.0)


def _hajek_interval(m: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """Interval of a weighted mean from sums (n, sw, swy, sww, swwy, swwyy)."""
    n, sw, swy, sww, swwy, swwyy = m
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = swy / sw
        ss = swwyy - 2 * mean * swwy + mean**2 * sww
        var = np.where(n >= 2, n / (n - 1) * ss / sw**2, np.nan)
        t = stats.t.ppf(0.5 + level / 2, np.maximum(n - 1, 1))
    half = t * np.sqrt(np.maximum(var, 0.0))
    return mean - half, mean + half


def _mean_overlaps(
    y: np.ndarray, dom: np.ndarray, k: int, side: np.ndarray, w: np.ndarray, level: float
) -> np.ndarray:
    """(domains x swaps) Karr overlap of the two sides' interval for the weighted mean of y."""
    ok = ~np.isnan(y) & (dom >= 0)
    y0 = np.where(ok, y, 0.0)
    oh = _onehot(np.where(ok, dom, -1), k)
    parts = []
    for f in (np.ones_like(y0), w, w * y0, w * w, w * w * y0, w * w * y0 * y0):
        parts.append(_side_sums(oh.multiply(f[:, None]).tocsr(), side, np.ones(len(y))))
    lo_r, hi_r = _hajek_interval([p[0] for p in parts], level)
    lo_s, hi_s = _hajek_interval([p[1] for p in parts], level)
    return _overlap(lo_r, hi_r, lo_s, hi_s)


def _regression_overlaps(
    cols: dict[str, _Column],
    spec: Mapping[str, Any],
    w: np.ndarray,
    side: np.ndarray,
    level: float,
) -> tuple[list[str], np.ndarray]:
    """(coefficients x swaps) interval overlap of each WLS coefficient (sandwich variance)."""
    y = cols[spec["y"]].num
    if y is None:
        return [], np.zeros((0, side.shape[1]))
    if spec.get("log_y"):
        y = np.log1p(np.where(y > -1, y, np.nan))
    xs, names = [np.ones(len(y))], ["(intercept)"]
    ok = ~np.isnan(y)
    for c in spec.get("x") or []:
        col = cols[c]
        if col.num is not None:
            ok &= ~np.isnan(col.num)
            xs.append(np.nan_to_num(col.num))
            names.append(c)
        else:
            for lv in range(1, col.k):
                xs.append((col.codes == lv).astype(float))
                names.append(f"{c}[{lv}]")
            ok &= col.codes >= 0
    x = np.column_stack(xs)
    y = np.nan_to_num(y)
    p = x.shape[1]
    out = np.full((p, side.shape[1]), np.nan)
    for b in range(side.shape[1]):
        ests = []
        for sel in (side[:, b] > 0, side[:, b] == 0):
            m = sel & ok
            xm, ym, wm = x[m], y[m], w[m]
            if len(ym) <= p:
                ests.append(None)
                continue
            xtwx = xm.T @ (xm * wm[:, None])
            inv = np.linalg.pinv(xtwx)
            beta = inv @ (xm.T @ (wm * ym))
            e = ym - xm @ beta
            g = xm * (wm * e)[:, None]
            v = np.diag(inv @ (g.T @ g) @ inv) * len(ym) / (len(ym) - p)
            half = stats.t.ppf(0.5 + level / 2, len(ym) - p) * np.sqrt(np.maximum(v, 0))
            ests.append((beta - half, beta + half))
        if ests[0] is not None and ests[1] is not None:
            out[:, b] = _overlap(ests[0][0], ests[0][1], ests[1][0], ests[1][1])
    return names, out


def _rare_loss(
    col: _Column, side: np.ndarray, wr: np.ndarray, wtot: np.ndarray, rare_share: float
) -> np.ndarray:
    """Share of the real side's rare levels (weighted share < rare_share) absent on the
    synthetic side, per swap; NaN where the real side has no rare level."""
    oh = _onehot(col.codes, col.k)
    r, _ = _side_sums(oh, wr, wtot)
    _, s_cnt = _side_sums(oh, side, np.ones(len(wtot)))
    with np.errstate(invalid="ignore", divide="ignore"):
        share = r / r.sum(axis=0, keepdims=True)
    rare = (share > 0) & (share < rare_share)
    lost = rare & (s_cnt <= 0)
    n_rare = rare.sum(axis=0)
    return np.where(n_rare > 0, lost.sum(axis=0) / np.maximum(n_rare, 1), np.nan)


def gate_statistics(
    pooled: pd.DataFrame,
    w: np.ndarray,
    side: np.ndarray,
    outcomes: Mapping[str, Any],
    dims: Sequence[str],
    auxiliaries: Sequence[str],
    region: str | None,
    regression: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None,
    rare_share: float = 0.05,
    level: float = 0.95,
    cells: np.ndarray | None = None,
) -> list[Statistic]:
    """Every statistic of the gate on the stacked pairs ``pooled`` (real rows, then their
    synthetic partners), for each column of ``side`` (1 = on the real side).

    ``w``: each row's weight (a pair's two rows carry the respondent's weight). ``cells``: a code
    per row (cell x wave); with it, rank correlations are read within the cells of 3 pairs or more
    (ranks centred on their cell's pooled mean), where a synthesizer that ignores the register or
    draws answers independently shows whatever the differences between cells; rows of smaller
    cells keep their rank, so that a survey of thin cells still has something to compare."""
    spec = {
        **{d: "categorical" for d in dims},
        **{a: "continuous" for a in auxiliaries},
        **dict(outcomes),
    }
    sd = _Sides(prepare_columns(pooled, list(spec), spec), side, side * w[:, None], w.astype(float))
    outs = list(outcomes)
    out = _marginal_stats(sd, outs)
    out += _correlation_stats(sd, auxiliaries, _centre_ranks(sd, outs, auxiliaries, w, cells))
    out += _contingency_stats(sd, [*dims, *outs, *auxiliaries], dims, auxiliaries)
    if region is not None:
        out += _region_stats(sd, outs, pooled, region)
    out += _overlap_stats(sd, outs, pooled, region, level)
    specs = [regression] if isinstance(regression, Mapping) else list(regression or [])
    for reg_spec in specs:
        out += _regression_stats(sd, reg_spec, level)
    out += _rare_stats(sd, outs, rare_share)
    return summarise(out)


@dataclass
class _Sides:
    """The stacked pairs' prepared columns, and for each swap (columns of ``side``, 1 = on the
    real side) the real side's weights ``wr``; ``wtot`` the rows' weights."""

    cols: dict[str, _Column]
    side: np.ndarray
    wr: np.ndarray
    wtot: np.ndarray

    def distance(self, col: _Column, rows: np.ndarray | None = None) -> np.ndarray:
        """KS (numeric) or TV distance of the two sides' distributions of ``col`` on ``rows``."""
        if col.kind in _KIND_NUMERIC:
            ok = ~np.isnan(col.num) if rows is None else rows & ~np.isnan(col.num)
            return _ks(col.num, ok, self.wr, self.wtot)
        codes = col.codes if rows is None else np.where(rows, col.codes, -1)
        return _tv_from_sums(*_side_sums(_onehot(codes, col.k), self.wr, self.wtot))


def _marginal_stats(sd: _Sides, outs: list[str]) -> list[Statistic]:
    """Marginal distance and missing share of every outcome."""
    out = []
    for c in outs:
        col = sd.cols[c]
        how = "KS" if col.kind in _KIND_NUMERIC else "TV"
        out.append(Statistic("marginal", "marginal_distance", c, sd.distance(col), detail=how))
        miss = (col.codes < 0).astype(float)[:, None]
        r, s = _side_sums(np.column_stack([miss[:, 0], np.ones(len(sd.wtot))]), sd.wr, sd.wtot)
        with np.errstate(invalid="ignore", divide="ignore"):
            gap = np.abs(r[0] / r[1] - s[0] / s[1])
        if np.nanmax(np.abs(gap)) > 0 or miss.any():
            out.append(Statistic("missing_rate", "missing_rate_diff", c, gap))
    return out


def _centre_ranks(sd: _Sides, outs, auxiliaries, w, cells) -> dict[str, np.ndarray]:
    """Ranks of the ordered columns (outcomes and register auxiliaries), centred within cells."""
    ordered = [c for c in [*outs, *auxiliaries] if sd.cols[c].rank is not None]
    return {c: _centre(sd.cols[c].rank, w, cells) for c in ordered}


def _correlation_stats(sd: _Sides, auxiliaries, centred) -> list[Statistic]:
    """Rank correlations of ordered columns: outcome pairs, and outcomes with the register."""
    out = []
    ordered = list(centred)
    for i, a in enumerate(ordered):
        for b in ordered[i + 1 :]:
            if a in auxiliaries and b in auxiliaries:
                continue
            rr, rs = _corr(centred[a], centred[b], sd.wr, sd.wtot)
            gap = np.abs(rr - rs)
            if np.isfinite(gap[0]):
                fam = "register_dependence" if b in auxiliaries else "dependence_correlation"
                extra = {"real": rr[0], "synthetic": rs[0]}
                out.append(Statistic(fam, fam, f"{a} x {b}", gap, extra=extra))
    return out


def _contingency_stats(sd: _Sides, cand, dims, auxiliaries) -> list[Statistic]:
    """Contingency tables of pairs with a nominal column (cell dimensions included; not two
    dimensions, not two auxiliaries)."""
    out = []
    for i, a in enumerate(cand):
        for b in cand[i + 1 :]:
            if a in dims and b in dims or a in auxiliaries and b in auxiliaries:
                continue
            ca, cb = sd.cols[a], sd.cols[b]
            if ca.kind != "nominal" and cb.kind != "nominal":
                continue
            joint = np.where((ca.codes >= 0) & (cb.codes >= 0), ca.codes * cb.k + cb.codes, -1)
            d = _tv_from_sums(*_side_sums(_onehot(joint, ca.k * cb.k), sd.wr, sd.wtot))
            out.append(
                Statistic("dependence_contingency", "dependence_contingency", f"{a} x {b}", d)
            )
    return out


def _region_stats(sd: _Sides, outs, pooled: pd.DataFrame, region: str) -> list[Statistic]:
    """Every outcome's marginal distance within each region."""
    out = []
    reg = sd.cols[region]
    for g in range(reg.k):
        in_g = reg.codes == g
        for c in outs:
            d = sd.distance(sd.cols[c], in_g)
            if np.isfinite(d[0]):
                label = str(pooled[region].iloc[np.flatnonzero(in_g)[0]])
                out.append(Statistic("region_marginal", "region_marginal", f"{label}: {c}", d))
    return out


def _overlap_stats(sd: _Sides, outs, pooled, region, level) -> list[Statistic]:
    """Interval overlap of the weighted means of numeric and binary outcomes, overall and by
    region."""
    n = len(sd.wtot)
    doms: list[tuple[str, np.ndarray, int, list[str]]] = [
        ("(all)", np.zeros(n, dtype=np.int64), 1, ["(all)"])
    ]
    if region is not None:
        labels = pd.Series(pooled[region].astype(str).to_numpy())
        codes, uniq = pd.factorize(labels)
        doms.append((region, codes.astype(np.int64), len(uniq), [str(u) for u in uniq]))
    out = []
    for c in [c for c in outs if sd.cols[c].kind in ("numeric", "binary")]:
        for dname, dom, k, names in doms:
            ov = _mean_overlaps(sd.cols[c].num, dom, k, sd.side, sd.wtot, level)
            group = "ci_overlap" if dname == "(all)" else "ci_overlap_region"
            for g in range(k):
                if np.isfinite(ov[g, 0]):
                    label = f"{c} by {dname}" + ("" if dname == "(all)" else f" = {names[g]}")
                    out.append(
                        Statistic(
                            "ci_overlap",
                            "ci_overlap",
                            label,
                            -ov[g],
                            scale=-1.0,
                            extra={"group": group},
                        )
                    )
    return out


def _regression_stats(sd: _Sides, reg_spec: Mapping[str, Any], level: float) -> list[Statistic]:
    names, ov = _regression_overlaps(sd.cols, reg_spec, sd.wtot, sd.side, level)
    return [
        Statistic(
            "regression_ci_overlap",
            "regression_ci_overlap",
            f"{reg_spec['y']} ~ {name}",
            -ov[j],
            scale=-1.0,
        )
        for j, name in enumerate(names)
        if np.isfinite(ov[j, 0])
    ]


def _rare_stats(sd: _Sides, outs, rare_share: float) -> list[Statistic]:
    """The loss of rare levels of every discrete outcome."""
    out = []
    for c in outs:
        col = sd.cols[c]
        if col.kind in _KIND_NUMERIC:
            continue
        loss = _rare_loss(col, sd.side, sd.wr, sd.wtot, rare_share)
        if np.isfinite(loss[0]):
            out.append(Statistic("rare_survival", "rare_category_loss", c, loss))
    return out


# ------------------------------------------------------------------------------ the test


def permutations_for(alpha: float, configured: int) -> int:
    """The permutations a max-T test at ``alpha`` takes: the configured count, raised to the
    least that lets it fail. Its smallest p-value is 1 / (B + 1), so with B below 1 / alpha - 1
    no statistic can fail it (two implicates judged at the default alpha 0.01 and 199
    permutations test each at 0.0025, below 1 / 200)."""
    return max(int(configured), math.ceil(1.0 / alpha - 1e-9) - 1)


def max_t_gate(
    statistics: Sequence[Statistic], tolerances: Mapping[str, float], alpha: float
) -> tuple[pd.DataFrame, float, float]:
    """The max-T test over ``statistics``: a row per statistic (value, reference mean,
    threshold, standardised excess, passed) plus the gate's p-value and critical value."""
    rows = []
    t_obs, t_perm = [], []
    for s in statistics:
        v = np.asarray(s.values, dtype=float)
        obs, null = v[0], v[1:]
        null = null[np.isfinite(null)]
        if len(null) < 2 or not np.isfinite(obs):
            continue
        mean, sd = float(null.mean()), float(null.std(ddof=1))
        sd = max(sd, 1e-9 + 1e-6 * abs(mean))
        tol = float(tolerances.get(s.family, 0.0))
        if s.gated:
            t_obs.append((obs - tol - mean) / sd)
            tb = (v[1:] - mean) / sd
            t_perm.append(np.where(np.isfinite(tb), tb, -np.inf))
        rows.append((s, mean, sd, tol))
    if not rows:
        return pd.DataFrame(), float("nan"), float("nan")
    tb = np.max(np.vstack(t_perm), axis=0)
    t = float(np.max(t_obs))
    b = len(tb)
    p = (1.0 + float(np.sum(tb >= t))) / (b + 1.0)
    # p <= alpha  <=>  #{T_b >= T} <= K = floor(alpha (B + 1)) - 1  <=>  T > the (K+1)-th largest
    k = math.floor(alpha * (b + 1) + 1e-9) - 1
    if k < 0:
        raise ValueError(
            f"{b} permutations cannot reach alpha = {alpha:.3g} (the smallest p-value is "
            f"1 / {b + 1}): take permutations_for(alpha, B)"
        )
    crit = float(np.sort(tb)[::-1][min(k, b - 1)])
    out = []
    gated = iter(t_obs)
    for s, mean, sd, tol in rows:
        to = next(gated) if s.gated else (float(s.values[0]) - tol - mean) / sd
        thr = tol + mean + crit * sd if s.gated else float("nan")
        out.append(
            {
                "family": s.family,
                "metric": s.metric,
                "column": s.column,
                "value": s.scale * float(s.values[0]),
                "reference": s.scale * mean,
                "reference_sd": sd,
                "tolerance": tol,
                "threshold": s.scale * thr,
                "comparison": "<=" if s.scale > 0 else ">=",
                "excess_t": float(to),
                "passed": bool(to <= crit) if s.gated else True,
                "detail": s.detail,
            }
        )
    return pd.DataFrame(out), p, crit
