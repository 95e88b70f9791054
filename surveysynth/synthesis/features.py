"""Predictors of the sequential conditional models: the register auxiliaries and the
outcomes synthesized before the one being modelled.

Each source column becomes a few numeric features, learned once from the respondents
(centres, scales, knots, levels) and then built the same way for real rows in the fit and
for synthetic rows in the sampler, so a model fitted on real answers is applied to
synthetic ones without any mismatch:

* auxiliary or numeric outcome: the value on its link scale (log of a positive register,
  the outcome's own link), standardised, plus hinge functions max(0, x - k) at its
  weighted quartiles, so a conditional mean may bend (a piecewise-linear spline); a
  numeric outcome also gets one indicator per spike value (a point mass such as 0 or 40
  hours) and one for "missing". An earlier outcome is clamped to the range seen in the fit
  (a synthetic value is not extrapolated along its slope). A register auxiliary is not: it
  is known for every unit, and its largest units are those a sample most often misses (a
  business register's largest firms, a country's largest communes), so beyond the
  respondents the spline goes on with its last segment's slope, for as far again as the
  range the fit saw (a register value far outside, say a 0 under a log, is not extrapolated
  without end);
* discrete outcome: one indicator per level after the first, and one for "missing"; an
  ordinal one of many levels (``fit.SCORE_MIN_LEVELS``) also its standardised rank, a source
  of its own (``learn_score``): the slopes are penalised a source at a time, and with many
  levels (an equivalence scale of 30 values) the indicators of the rare ones shrink toward no
  effect and a monotone trend with them.

Missing values enter as 0 with their indicator, so a structural skip (hours missing when
not employed) is a predictor of what follows. All transforms are elementwise: building the
features of a row never looks at another row.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from surveysynth.contract.config import OutcomeSpec
from surveysynth.synthesis.links import to_link

N_KNOTS = 3


@dataclass(frozen=True)
class Source:
    """One source column and how it becomes features."""

    column: str
    kind: str  # aux | numeric | discrete | score (an ordinal's rank) | cell (searched only)
    transform: str = "identity"  # aux: identity | log | log1p
    outcome: OutcomeSpec | None = None  # numeric / discrete outcomes
    center: float = 0.0
    scale: float = 1.0
    knots: tuple[float, ...] = ()
    levels: tuple = ()
    spikes: tuple[float, ...] = ()
    cuts: tuple[tuple[str, float], ...] = ()  # (below | above, value): a skip's side
    has_missing: bool = False
    low: float = -np.inf  # standardised range seen in the fit: synthetic values of an
    high: float = np.inf  # earlier outcome are clamped to it
    clamp: bool = True  # False for a register auxiliary: its spline goes on beyond the range

    @property
    def names(self) -> list[str]:
        c = self.column
        if self.kind == "discrete":
            out = [f"{c}=={lv}" for lv in self.levels[1:]]
        elif self.kind == "score":
            out = [f"{c}#score"]
        else:
            out = [f"{c}", *(f"{c}>k{i}" for i in range(len(self.knots)))]
            out += [f"{c}=={s:g}" for s in self.spikes]
            out += [f"{c}{'<' if k == 'below' else '>'}{b:g}" for k, b in self.cuts]
        if self.has_missing:
            out.append(f"{c} is null")
        return out

    @property
    def width(self) -> int:
        return len(self.names)


def aux_transform_of(values: np.ndarray) -> str:
    """log for strictly positive registers, log1p for non-negative ones, else identity."""
    v = values[np.isfinite(values)]
    if v.size and v.min() > 0:
        return "log"
    if v.size and v.min() >= 0:
        return "log1p"
    return "identity"


def _aux_values(x: np.ndarray, how: str) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        if how == "log":
            return np.log(np.where(x > 0, x, np.nan))
        if how == "log1p":
            return np.log1p(np.where(x >= 0, x, np.nan))
    return x.astype(float)


def numeric_link_values(x: np.ndarray, source: Source) -> np.ndarray:
    """The link-scale value of a numeric source; nan where missing or at a spike."""
    if source.kind == "aux":
        return _aux_values(x, source.transform)
    o = source.outcome
    ok = np.isfinite(x)
    for s in source.spikes:
        ok &= x != s
    if o.lower is not None:
        ok &= x > o.lower
    safe = np.where(ok, x, (o.lower or 0.0) + 1.0)
    return np.where(ok, to_link(safe, o), np.nan)


def _weighted_quantiles(x: np.ndarray, w: np.ndarray, qs: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="stable")
    cw = np.cumsum(w[order])
    return np.interp(qs * cw[-1], cw, x[order])


def more_values_than(x: np.ndarray, k: int) -> bool:
    """Whether ``x`` holds more than ``k`` distinct values: a head that already does settles
    it without sorting every value."""
    return np.unique(x[:1024]).size > k or np.unique(x).size > k


def learn_numeric(column: str, kind: str, x: np.ndarray, w: np.ndarray, **extra) -> Source:
    """Centre, scale and knots of a numeric source from its values ``x`` (raw scale)."""
    proto = Source(column, kind, **extra)
    z = numeric_link_values(x, proto)
    ok = np.isfinite(z)
    missing = bool((~np.isfinite(x)).any())
    if ok.sum() < 2:
        return Source(column, kind, has_missing=missing, **extra)
    zc, wc = z[ok], w[ok]
    center = float(np.average(zc, weights=wc))
    scale = float(np.sqrt(np.average((zc - center) ** 2, weights=wc))) or 1.0
    std = (zc - center) / scale
    knots: tuple[float, ...] = ()
    if more_values_than(zc, 2 * N_KNOTS):
        q = _weighted_quantiles(std, wc, np.arange(1, N_KNOTS + 1) / (N_KNOTS + 1))
        knots = tuple(float(k) for k in np.unique(np.round(q, 9)))
    return Source(
        column,
        kind,
        center=center,
        scale=scale,
        knots=knots,
        has_missing=missing,
        low=float(std.min()),
        high=float(std.max()),
        clamp=kind != "aux",
        **extra,
    )


def learn_score(column: str, o: OutcomeSpec, codes: np.ndarray, w: np.ndarray) -> Source:
    """An ordinal answer's score: its level's rank, standardised over the answers (0 where
    missing; the levels' source has the missing indicator). With many levels (an equivalence
    scale of 30 values) the level indicators, penalised as one group, shrink toward no effect,
    and so does a monotone trend across them; the score carries the trend in one slope."""
    ok = codes >= 0
    if ok.sum() < 2:
        return Source(column, "score", outcome=o)
    c = codes[ok].astype(float)
    center = float(np.average(c, weights=w[ok]))
    scale = float(np.sqrt(np.average((c - center) ** 2, weights=w[ok]))) or 1.0
    return Source(column, "score", outcome=o, center=center, scale=scale)


def learn_discrete(column: str, o: OutcomeSpec, present: np.ndarray) -> Source:
    return Source(
        column,
        "discrete",
        outcome=o,
        levels=tuple(o.category_levels),
        has_missing=bool((~present).any()),
    )


def _standardised(source: Source, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A numeric source's standardised link-scale values (0 where missing) and where known."""
    z = numeric_link_values(values, source)
    ok = np.isfinite(z)
    return np.where(ok, (z - source.center) / source.scale, 0.0), ok


def beyond_range(source: Source, values: np.ndarray) -> bool:
    """Whether any of ``values`` lies outside the range the fit saw (numeric sources)."""
    s, ok = _standardised(source, values)
    return bool(np.any(ok & ((s < source.low) | (s > source.high))))


def source_columns(
    source: Source, values: np.ndarray, clamp: bool | None = None
) -> list[np.ndarray]:
    """The feature columns of one source for raw ``values`` (float array for numeric
    sources, integer level codes with -1 for missing for discrete ones). ``clamp`` overrides
    the source's own choice (True: every numeric source clamped to the fit's range)."""
    if source.kind == "discrete":
        code = values
        cols = [(code == j).astype(float) for j in range(1, len(source.levels))]
        if source.has_missing:
            cols.append((code < 0).astype(float))
        return cols
    if source.kind == "score":
        return [np.where(values >= 0, (values - source.center) / source.scale, 0.0)]
    s, ok = _standardised(source, values)
    if source.clamp if clamp is None else clamp:
        s = np.clip(s, source.low, source.high)
    else:  # a register goes on beyond the fit's range, up to that range's width again
        width = source.high - source.low
        s = np.clip(s, source.low - width, source.high + width)
    cols = [s]
    for k in source.knots:
        cols.append(np.where(ok, np.maximum(s - k, 0.0), 0.0))
    for sp in source.spikes:
        cols.append((values == sp).astype(float))
    for kind, b in source.cuts:
        cols.append(((values < b) if kind == "below" else (values > b)).astype(float))
    if source.has_missing:
        cols.append((~np.isfinite(values)).astype(float))
    return cols


def cached_columns(
    cache: dict, source: Source, values: dict[str, np.ndarray], clamp: bool | None = None
) -> list[np.ndarray]:
    """``source_columns`` kept in ``cache`` (see ``design``)."""
    if id(source) not in cache:  # the source is kept with its columns: its id stays its own
        cache[id(source)] = (source, source_columns(source, values[source.column], clamp))
    return cache[id(source)][1]


def design(
    sources: list[Source],
    values: dict[str, np.ndarray],
    n: int,
    order: str = "C",
    clamp: bool | None = None,
    cache: dict | None = None,
) -> np.ndarray:
    """The design matrix (no intercept) of ``sources`` for rows whose raw values are in
    ``values`` (column -> array). ``order="F"`` stores it column by column: the sampler
    reads it a column at a time (the fit's matrix products keep the row-major layout their
    sums were fixed with). ``clamp=True`` clamps every numeric source to the fit's range,
    register auxiliaries too (the sampler's reference for how far they extrapolate).
    ``cache`` (a dict kept by the caller for one ``values`` and ``clamp``) keeps each source's
    columns: every outcome's design holds the sources of the answers before it."""
    cols: list[np.ndarray] = []
    for s in sources:
        if cache is None:
            cols.extend(source_columns(s, values[s.column], clamp))
        else:
            cols.extend(cached_columns(cache, s, values, clamp))
    out = np.empty((n, len(cols)), order=order)
    for j, c in enumerate(cols):
        out[:, j] = c
    return out


def raw_values(df: pd.DataFrame, source: Source) -> np.ndarray:
    """Raw values of a source column of a DataFrame: floats (nan for null) for numeric
    sources, level codes (-1 for null) for discrete ones."""
    s = df[source.column]
    if source.kind not in ("discrete", "score"):
        return pd.to_numeric(s, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    return level_codes(s, source.outcome)


def level_codes(s: pd.Series, o: OutcomeSpec) -> np.ndarray:
    """Integer codes of a discrete outcome's levels; -1 for null or an unknown level."""
    if o.type == "binary":
        x = pd.to_numeric(s, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        return np.where(np.isin(x, [0.0, 1.0]), np.nan_to_num(x), -1).astype(np.int64)
    mapping = {lv: i for i, lv in enumerate(o.category_levels)}
    return s.map(mapping).fillna(-1).to_numpy(dtype=np.int64)
