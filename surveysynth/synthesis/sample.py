"""SAMPLE step: the per-cell pure function and the batched pandas path.

:func:`sample_cell` takes one cell x wave x implicate group (its rows: the units to
generate, with the cell's columns of cell-effect inputs attached and constant within the
group) and returns synthetic rows. It is what Spark runs::

    sdf.groupBy("cell_id", wave, "implicate").applyInPandas(make_cell_sampler(spec), schema)

:func:`sample_batched` produces the same rows for many groups at once: it draws each
group's random numbers from the group's own stream (same calls, same order as
:func:`sample_cell`) and then applies the same elementwise transforms to all rows. Nothing
in the transforms mixes rows, so both paths are bit-identical.

Per group, with stream Generator(PCG64(SeedSequence([seed, h(cell), h(wave), implicate]))):
  1. eps ~ N(0, I_K): the cell effect of every component drawn from its posterior given
     the implicate's variance component (proper multiple synthesis);
  2. U, U2, V ~ U(0,1) (n x outcomes): the value, the spike choice and the missingness of
     every outcome.
Then, outcome by outcome in synthesis order (the pipeline of one record): features from
the register and the answers drawn so far, missing or not, a level or a spike or a
continuous value, the rules that this answer completes. The assembled rows get ranges and
rules enforced once more (``contract.rules.enforce``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise

import numpy as np
import pandas as pd
from scipy.special import expit

from surveysynth.contract.inputs import CELL_ID, SynthInputError
from surveysynth.contract.rules import enforce, isin
from surveysynth.seeding import cell_rng
from surveysynth.synthesis.features import beyond_range, design
from surveysynth.synthesis.fit import (
    CELL_CODE_COLUMN,
    CELL_SOURCE,
    LOC_COLUMNS,
    Component,
    OutcomeModel,
    SamplerSpec,
    SynthModel,
    term_column,
)
from surveysynth.synthesis.links import from_link, to_link
from surveysynth.synthesis.plan import IMPLICATE

log = logging.getLogger("surveysynth")


# ----------------------------------------------------------------------- random numbers
def draw_group(spec: SamplerSpec, rng: np.random.Generator, n: int, out: tuple | None = None):
    """The random numbers of one group, always in this order. ``out`` (eps, U, U2, V:
    C-contiguous float arrays of the shapes drawn) receives them in place: a generator fills
    an array it is given with the numbers it would return in a new one."""
    d = len(spec.outcomes)
    if out is None:
        out = (np.empty(len(spec.components)), *(np.empty((n, d)) for _ in range(3)))
    for a, draw in zip(out, (rng.standard_normal, rng.random, rng.random, rng.random)):
        draw(out=a)
    return out


def cell_effects(spec: SamplerSpec, cells: pd.DataFrame, imps: np.ndarray, eps: np.ndarray):
    """Each group's cell effects: posterior given the implicate's variance component
    sigma* and its draw of the prior mean, prior* = prior + the implicate's draws of the
    intercept and of the cell's levels (``prior_deviation``): gamma = sigma* / (sigma* + psi);
    mean = prior* + gamma (hat - prior*), variance gamma psi with data, sigma* without. Over
    the implicates a cell's draws thus have variance gamma psi + (1 - gamma)^2 a (sigma* + a
    without data), a the prior mean's variance, as before the levels' draws were shared.
    Elementwise per group."""
    out = np.empty((len(cells), len(spec.components)))
    for k, comp in enumerate(spec.components):
        hat, psi, prior, a = (cells[comp.col(w)].to_numpy(dtype=float) for w in _COLS)
        dev = prior_deviation(spec, comp.name, cells, imps, a)
        if dev is not None:
            prior, a = prior + dev, np.zeros_like(a)
        s2 = spec.sigma_draws[comp.name][imps - 1]
        has = np.isfinite(hat) & np.isfinite(psi)
        with np.errstate(invalid="ignore", divide="ignore"):
            gam = np.where(has, s2 / (s2 + np.where(has, psi, 1.0)), 0.0)
            mean = np.where(has, prior + gam * (np.where(has, hat, 0.0) - prior), prior)
            var = np.where(has, gam * np.where(has, psi, 0.0) + (1 - gam) ** 2 * a, s2 + a)
        out[:, k] = mean + np.sqrt(np.maximum(var, 0.0)) * eps[:, k]
    return out


_COLS = ("hat", "psi", "prior", "priorvar")


def prior_deviation(spec: SamplerSpec, name: str, cells: pd.DataFrame, imps, a: np.ndarray):
    """Each group's drawn departure of its prior mean in its implicate: the intercept's draw
    plus the draws of the cell's level of every term (``fit.PriorDraws``), scaled so that its
    variance is the cell's prior variance ``a`` (capped in the fit, so at most 1); None for a
    component without draws (no cell with data)."""
    pd_ = spec.prior_draws.get(name)
    if pd_ is None:
        return None
    i = imps - 1
    dev = pd_.intercept[i].copy()
    raw = np.full(len(cells), pd_.intercept_var)
    for j, (draws, var) in enumerate(pd_.terms):
        code = cells[term_column(j)].to_numpy(dtype=np.int64)
        dev += draws[code, i]
        raw += var[code]
    with np.errstate(invalid="ignore", divide="ignore"):
        ok = (raw > 0) & np.isfinite(a)
        scale = np.where(ok, np.sqrt(np.clip(a / raw, 0.0, 1.0)), 0.0)
    return dev * scale


def cell_locations(spec: SamplerSpec, cells: pd.DataFrame) -> dict[str, np.ndarray]:
    """Each group's location columns of every numeric outcome with a continuous part
    (outcome -> groups x 3: the link-scale range, ``fit._cell_ranges``, and the residuals'
    sd from their bins, ``residuals.Texture.cell_sd``)."""
    out = {}
    for om in spec.models:
        if om.loc is not None and om.relation is None:
            cols = [om.loc.col(w) for w in LOC_COLUMNS]
            out[om.spec.name] = cells[cols].to_numpy(dtype=float)
    return out


# ----------------------------------------------------------------------- one record's pipeline
class Draw:
    """The state of a batch of records while their answers are drawn in order."""

    def __init__(self, spec, rows, delta, gidx, imps, u, u2, v, cells: pd.DataFrame):
        """``cells``: each group's params row (``SynthModel.params``), in group order."""
        self.spec, self.rows, self.delta, self.gidx, self.imps = spec, rows, delta, gidx, imps
        self.u, self.u2, self.v = u, u2, v
        # outcome -> (groups x LOC_COLUMNS): each cell's link-scale range and residual bin sd
        self.locations = cell_locations(spec, cells)
        self.n = len(rows)
        self.index = {c.name: k for k, c in enumerate(spec.components)}
        # the cell's code, for the structural zeros and bounds found per cell
        self.raw: dict[str, np.ndarray] = {
            CELL_SOURCE: cells[CELL_CODE_COLUMN].to_numpy(dtype=np.int64)[gidx]
        }
        for a in spec.auxiliaries:
            if a in rows.columns:
                self.raw[a] = pd.to_numeric(rows[a], errors="coerce").to_numpy(
                    dtype=float, na_value=np.nan
                )
        self.decoded: dict[str, pd.Series] = {}
        self.columns: dict = {}  # each source's design columns, once drawn (``design``)
        self._implicate_rows: list[tuple[int, np.ndarray | None]] | None = None

    def eta(self, comp: Component, X: np.ndarray) -> np.ndarray:
        """Linear predictor with each row's implicate's slopes: the rows of one implicate at a
        time, each slope a scalar (the same sums in the same order as row by row)."""
        coef = self.spec.coef_draws[comp.name]
        out = np.empty(self.n)
        for imp, rows in self.implicate_rows():
            c = coef[imp - 1]
            Xr = X if rows is None else X[rows]
            acc, term = np.full(Xr.shape[0], c[0]), np.empty(Xr.shape[0])
            for j in range(X.shape[1]):
                acc += np.multiply(c[j + 1], Xr[:, j], out=term)
            if rows is None:
                out = acc
            else:
                out[rows] = acc
        return out + self.at(self.delta, self.index[comp.name])

    def at(self, groups: np.ndarray, k: int) -> np.ndarray:
        """Each row's value of column k of a per-group table: ``groups[gidx, k]`` as a take of
        the column (the same values, several times faster than the two-index lookup)."""
        return np.take(groups[:, k], self.gidx)

    def implicate_rows(self) -> list[tuple[int, np.ndarray | None]]:
        """(implicate, its rows) for every implicate of the batch; None for all rows."""
        if self._implicate_rows is None:
            imps = np.unique(self.imps)
            self._implicate_rows = (
                [(int(imps[0]), None)]
                if len(imps) == 1
                else [(int(i), self.imps == i) for i in imps]
            )
        return self._implicate_rows

    def bin_sd(self, om: OutcomeModel):
        """Each row's cell sd of ``om``'s residual bins (1 where none was fitted)."""
        r = self.locations.get(om.spec.name)
        return 1.0 if r is None else self.at(r, 2)

    def z_bounds(self, om: OutcomeModel):
        """Each row's link-scale range of ``om``: its cell's, else the outcome's."""
        r = self.locations.get(om.spec.name)
        if r is None:
            return om.z_range
        return self.at(r, 0), self.at(r, 1)

    def value_range(self, om: OutcomeModel) -> tuple[np.ndarray, np.ndarray]:
        """Each row's answer-scale bounds from ``om``'s structural bounds whose condition holds
        on the answers drawn so far (-inf, inf where none holds; both dropped where they
        conflict)."""
        lo, hi = np.full(self.n, -np.inf), np.full(self.n, np.inf)
        own = [b for b in om.value_bounds if b.where.column == CELL_SOURCE]
        for b in om.value_bounds:
            if b.where.column == CELL_SOURCE:
                continue
            hit = b.where.mask(self.raw[b.where.column])
            if b.side == "lo":
                lo = np.where(hit, np.maximum(lo, b.value), lo)
            else:
                hi = np.where(hit, np.minimum(hi, b.value), hi)
        cell_lo = self.by_cell([(b.where.level, b.value) for b in own if b.side == "lo"])
        cell_hi = self.by_cell([(b.where.level, b.value) for b in own if b.side == "hi"])
        lo = lo if cell_lo is None else np.fmax(lo, cell_lo)  # fmax / fmin skip the NaN
        hi = hi if cell_hi is None else np.fmin(hi, cell_hi)
        clash = lo > hi
        return np.where(clash, -np.inf, lo), np.where(clash, np.inf, hi)

    def prob(self, comp: Component, X: np.ndarray) -> np.ndarray:
        p = expit(self.eta(comp, X))
        own = []  # the cells' own zeros, last in the constraints (``fit._searched``)
        for k in comp.constraints:
            if k.of_cell:
                own.append((k.level, k.value))
                continue
            hit = np.ones(self.n, dtype=bool) if k.kind == "all" else k.mask(self.raw[k.column])
            p = np.where(hit, k.value, p)
        fixed = self.by_cell(own)
        return p if fixed is None else np.where(np.isnan(fixed), p, fixed)

    def by_cell(self, values: list[tuple[int, float]]) -> np.ndarray | None:
        """Each row's value from (cell code, value) pairs, NaN where its cell has none; None
        without pairs. One lookup instead of a mask per cell (the demo has hundreds)."""
        if not values:
            return None
        codes = self.raw[CELL_SOURCE]
        table = np.full(max(int(codes.max(initial=0)), *(c for c, _ in values)) + 1, np.nan)
        for code, value in values:
            table[code] = value
        return table[codes]


def generate(draw: Draw) -> None:
    """Every outcome, in synthesis order, for all rows of ``draw``."""
    spec = draw.spec
    col = {o.name: i for i, o in enumerate(spec.outcomes)}
    for om in spec.models:
        j = col[om.spec.name]
        if om.relation is not None:
            value = _related(draw, om)
        else:
            X = design(list(om.sources), draw.raw, draw.n, order="F", cache=draw.columns)
            value = _value(draw, om, X, j)
            if om.miss is not None and spec.item_missing:
                miss = draw.v[:, j] < draw.prob(om.miss, X)
                value = np.where(miss, -1 if om.spec.is_discrete else np.nan, value)
        draw.raw[om.spec.name] = _apply_rules(draw, om, value)
        draw.decoded[om.spec.name] = _decode(om, draw.raw[om.spec.name])


def _value(draw: Draw, om: OutcomeModel, X: np.ndarray, j: int) -> np.ndarray:
    if om.spec.is_discrete:
        return _level(draw, om.cats, X, draw.u[:, j])
    # one continuation-ratio chain: each spike, then a skip's side, then the other side
    spike = _level(draw, om.spike_comps + om.split_comps, X, draw.u2[:, j])
    n_sp = len(om.spikes)
    chosen = np.asarray(om.spikes + (np.nan,), dtype=float)[np.minimum(spike, n_sp)]
    on_spike = spike < n_sp
    if om.loc is None:  # every answer sits on a spike: the last one takes the rest
        cont = np.full(draw.n, om.spikes[-1] if om.spikes else np.nan)
        return np.where(on_spike, chosen, cont)
    lo, hi = _split_side(om, spike - n_sp, *draw.value_range(om))
    slo, shi = _support(om)
    within = np.maximum(lo, slo), np.minimum(hi, shi)
    cont = np.clip(_continuous_draw(draw, om, X, draw.u[:, j], *within), lo, hi)
    # a spike outside the row's structural bounds gives way to the continuous part
    return np.where(on_spike & (chosen >= lo) & (chosen <= hi), chosen, cont)


def _split_side(om: OutcomeModel, side: np.ndarray, lo: np.ndarray, hi: np.ndarray):
    """The rows' bounds narrowed to the side of ``om``'s skip cut point they drew: ``side``
    0 is the cut's own side (below or above its value), 1 the rest, negative a spike (left
    as it is). A count's side below 16 ends at 15. Where a structural bound leaves the side
    empty, the structural bounds stay."""
    if not om.split_comps:
        return lo, hi
    cut, step = om.splits[0], 1.0 if om.spec.type == "count" else 0.0
    near, far = (lo, np.minimum(hi, cut.bound - step)), (np.maximum(lo, cut.bound), hi)
    if cut.kind == "above":
        near, far = (np.maximum(lo, cut.bound + step), hi), (lo, np.minimum(hi, cut.bound))
    lo2 = np.where(side == 0, near[0], np.where(side == 1, far[0], lo))
    hi2 = np.where(side == 0, near[1], np.where(side == 1, far[1], hi))
    # a continuous side of zero width (a structural bound at the cut) is empty too: a draw
    # there would be the cut's value itself, which may be a spike
    ok = (lo2 <= hi2) if step else (lo2 < hi2)
    return np.where(ok, lo2, lo), np.where(ok, hi2, hi)


def _support(om: OutcomeModel) -> tuple[float, float]:
    """The answer-scale support of ``om``'s continuous part: above the declared minimum (a
    count's next value when the minimum is a spike, which holds the answers at it) and up to
    the declared maximum; for a continuous answer also never beyond a spike at the respondents'
    smallest or largest answer, a floor (an income of 0 with no negative answer) or a top code,
    not a sample's extreme (EU-SILC employee income, no minimum declared as negatives occur in
    the table: a training half with none drew 80 negative incomes, down to -11,206, from the
    range's 10% padding). Not for a count: CPS1988's schooling, top-coded at 18, lost its
    19s and 20s (53 records a split) but its S_pMSE rose on three of three splits (1.27 / 0.95
    / 1.21 to 1.42 / 0.98 / 1.28), the truncation moving every draw of the cells near the top.
    The draw is truncated there, not clipped: on an identity scale a clip piled the lower tail
    onto the bound (EU-SILC ages: 288 synthetic persons aged 0 against 75 real)."""
    o = om.spec
    lo = -np.inf if o.lower is None else o.lower
    hi = np.inf if o.max is None else o.max
    if o.type == "count":
        return lo + 1.0 * (lo in om.spikes), hi
    smallest, largest = om.answer_range
    return (
        max(lo, smallest) if smallest in om.spikes else lo,
        min(hi, largest) if largest in om.spikes else hi,
    )


def _extrapolation(draw: Draw, om: OutcomeModel, eta: np.ndarray) -> np.ndarray | None:
    """How far the register auxiliaries carry each row's location ``eta`` beyond the
    respondents' range: eta - eta(x clamped to the range the fit saw), on the link scale; None
    when no row's register is outside it. The cell effects cancel; the earlier answers are
    clamped in both."""
    if not any(beyond_range(s, draw.raw[s.column]) for s in om.sources if not s.clamp):
        return None
    Xc = design(list(om.sources), draw.raw, draw.n, order="F", clamp=True)
    return eta - draw.eta(om.loc, Xc)


def _continuous_draw(draw: Draw, om: OutcomeModel, X, u, lo, hi) -> np.ndarray:
    """The continuous part by the inverse CDF of the residual distribution of the row's
    location's bin (``residuals.Texture``), truncated to the row's structural bounds
    ``lo``/``hi``: mass that is impossible there is spread over what is allowed, in proportion.
    The cell scale is divided by the sd the bins give the cell's answers (``Draw.bin_sd``), so
    the cell's spread is its fitted scale whatever bins its answers fall in. Then clipped to
    the cell's range (``fit._cell_ranges``): that range only stops extrapolation, so a tail
    beyond it is kept, at its edge (truncating there too lowered the EU-SILC domain means'
    interval coverage from 0.948 to 0.915 in scripts/eval/eval_real_sae.py). A row whose
    register lies beyond the respondents' has that range moved by ``shift``
    (``_extrapolation``): the range bounds the residual's tail, not the location the register
    gives (a commune twice the size of the largest sampled one is not capped at its income).
    Elementwise per row."""
    o = om.spec
    eta = draw.eta(om.loc, X)
    scale = np.exp(draw.at(draw.delta, draw.index[om.logscale.name])) / draw.bin_sd(om)
    half = 0.5 if o.type == "count" else 0.0
    zlo, zhi = to_link(lo - half, o), to_link(hi + half, o)
    bins = om.texture.bins(eta)
    p_lo, p_hi = (om.texture.cdf((z - eta) / scale, bins) for z in (zlo, zhi))
    v = p_lo + u * np.maximum(p_hi - p_lo, 0.0)
    z = np.clip(eta + scale * om.texture.quantile(v, bins), zlo, zhi)
    blo, bhi = draw.z_bounds(om)
    shift = _extrapolation(draw, om, eta)
    if shift is not None:
        blo, bhi = blo + np.minimum(shift, 0.0), bhi + np.maximum(shift, 0.0)
    return _continuous(om, np.clip(z, blo, bhi))


def _level(draw: Draw, comps, X, u) -> np.ndarray:
    """Continuation-ratio draw: the first k with u below the cumulative probability."""
    code = np.zeros(draw.n, dtype=np.int64)
    surv = np.ones(draw.n)
    cum = np.zeros(draw.n)
    done = np.zeros(draw.n, dtype=bool)
    for comp in comps:
        h = draw.prob(comp, X)
        cum = cum + h * surv
        surv = surv * (1.0 - h)
        hit = ~done & (u < cum)
        done |= hit
        code = code + ~done
    return code


def _continuous(om: OutcomeModel, z: np.ndarray) -> np.ndarray:
    o = om.spec
    y = from_link(z, o)
    if o.type == "count":
        y = _off_spikes(np.round(y), y, om.spikes, om.answer_range)
        if o.lower is not None:
            y = np.maximum(y, o.lower + (1.0 if o.lower in om.spikes else 0.0))
    return y


def _off_spikes(k: np.ndarray, y: np.ndarray, spikes: tuple[float, ...], span) -> np.ndarray:
    """A count's continuous draws that round onto a spike value, moved to the nearest value
    off the run of consecutive spikes it falls in, on the side of the run's middle the draw
    lies. The continuous part is fitted on the answers off the spikes, so its smooth density
    spreads the values beside a spike (11 and 15 years of schooling beside 12, 13, 14) into
    the gap; rounding them onto the spike added to the spike's own share (CPS1988: 0.389 of
    synthetic men with 12 years against 0.375) and drew too few of the values beside it. A
    side beyond the answers' ``span`` (a run at the largest answer) is not taken."""
    for a, b in _runs(spikes):
        below_ok, above_ok = a - 1 >= span[0], b + 1 <= span[1]
        if not (below_ok or above_ok):
            continue
        down = below_ok & ((y < (a + b) / 2) | (not above_ok))
        k = np.where((k >= a) & (k <= b), np.where(down, a - 1, b + 1), k)
    return k


def _runs(spikes: tuple[float, ...]) -> list[tuple[float, float]]:
    """Runs of consecutive integer spike values, as (first, last)."""
    vals = sorted(v for v in spikes if float(v).is_integer())
    out: list[tuple[float, float]] = []
    for v in vals:
        if out and v == out[-1][1] + 1:
            out[-1] = (out[-1][0], v)
        else:
            out.append((v, v))
    return out


def _related(draw: Draw, om: OutcomeModel) -> np.ndarray:
    source, pairs = om.relation
    src = draw.raw[source]
    discrete = om.spec.is_discrete
    out = np.full(draw.n, -1 if discrete else np.nan, dtype=np.int64 if discrete else float)
    for code, value in pairs:
        out = np.where(src == code, (-1 if discrete else np.nan) if value is None else value, out)
    return out


def _apply_rules(draw: Draw, om: OutcomeModel, value: np.ndarray) -> np.ndarray:
    """Rules whose target is this outcome and whose condition is known: outcomes already drawn,
    and the record's cell dimensions, wave and auxiliaries (read from its plan row). A rule on a
    dimension had waited for the final enforce, after the answers drawn later (and an exact
    relation copied from its target) had read the value it overwrote."""
    o = om.spec
    for rule in draw.spec.rules:
        if o.name not in rule.target_columns:
            continue
        known = {c: _when_values(draw, c) for c in rule.when_columns}
        if any(v is None for v in known.values()):
            continue
        mask = np.ones(draw.n, dtype=bool)
        for c, vals in rule.when:
            mask &= isin(known[c], vals)
        for t in rule.then:
            if t.column != o.name or t.op == "in":
                continue  # 'in' is settled by the final enforce
            if t.op == "is_null":
                fill = -1 if o.is_discrete else np.nan
            elif o.is_discrete:
                fill = list(o.category_levels).index(t.value)
            else:
                fill = float(t.value)
            value = np.where(mask, fill, value)
    return value


def _when_values(draw: Draw, column: str):
    """A rule condition's column for every record, or None while it is an outcome not yet
    drawn: the drawn answers, else a column of the plan rows (cell dimensions, wave,
    auxiliaries)."""
    if column in draw.decoded:
        return draw.decoded[column]
    if column in draw.spec.order or column not in draw.rows.columns:
        return None
    return draw.rows[column].reset_index(drop=True)


def _decode(om: OutcomeModel, raw: np.ndarray) -> pd.Series:
    o = om.spec
    if o.type in ("categorical", "ordinal"):
        arr = np.asarray(o.category_levels, dtype=object)[np.maximum(raw, 0)]
        arr[raw < 0] = None
        return pd.Series(arr, copy=False)
    if o.type == "binary":
        return pd.Series(np.where(raw < 0, np.nan, raw.astype(float)), copy=False)
    return pd.Series(raw, copy=False)


# ----------------------------------------------------------------------- assemble
def assemble(spec: SamplerSpec, rows: pd.DataFrame, draw: Draw) -> pd.DataFrame:
    """Output rows in the final column order, ranges and rules enforced."""
    n = len(rows)
    cols: dict[str, object] = {}
    for c in (spec.unit_id, spec.wave, *spec.cell_dims, CELL_ID):
        cols[c] = rows[c].to_numpy()
    for o in spec.outcomes:
        raw = draw.raw[o.name]
        if o.type in ("categorical", "ordinal"):
            cols[o.name] = draw.decoded[o.name].to_numpy()
        elif o.type in ("binary", "count"):
            miss = (raw < 0) if o.type == "binary" else ~np.isfinite(raw)
            vals = np.where(miss, 0, raw).astype(np.int64)
            cols[o.name] = pd.arrays.IntegerArray(vals, miss.copy())
        else:
            cols[o.name] = raw.astype(float)
    for a in spec.auxiliaries:
        cols[a] = draw.raw.get(a, np.full(n, np.nan))
    cols["synth_weight"] = rows["synth_weight"].to_numpy(dtype=float)
    cols["is_synthetic"] = np.ones(n, dtype=bool)
    cols[IMPLICATE] = rows[IMPLICATE].to_numpy(dtype=np.int64)
    cols["synth_run_id"] = _repeated(spec.run_id, n)
    cols["synth_method"] = _repeated(spec.method, n)
    cols["support_class"] = rows["support_class"].to_numpy(dtype=object)
    df = pd.DataFrame(cols, copy=False)
    enforce(df, spec.rules, spec.outcomes)
    return df[spec.output_columns] if list(df.columns) != spec.output_columns else df


def _repeated(value: object, n: int) -> np.ndarray:
    """An object column holding ``value`` n times (a repeat: ``np.full`` fills object arrays
    one element at a time, ten times slower)."""
    return np.array([value], dtype=object).repeat(n)


# ----------------------------------------------------------------------- the per-cell function
def sample_cell(pdf: pd.DataFrame, spec: SamplerSpec) -> pd.DataFrame:
    """Synthetic rows for one cell x wave x implicate group. Pure: output depends only on
    the group's rows (in any order) and ``spec``."""
    if len(pdf) == 0:
        return empty_output(spec)
    for k in (CELL_ID, spec.wave, IMPLICATE):
        if pdf[k].nunique(dropna=False) != 1:
            raise ValueError(f"sample_cell got a group with several values of '{k}'")
    pdf = pdf.sort_values(spec.unit_id, kind="mergesort").reset_index(drop=True)
    imp = int(pdf[IMPLICATE].iat[0])
    rng = cell_rng(spec.seed, pdf[CELL_ID].iat[0], pdf[spec.wave].iat[0], imp)
    eps, u, u2, v = draw_group(spec, rng, len(pdf))
    delta = cell_effects(spec, pdf.iloc[:1], np.array([imp]), eps[None, :])
    imps = np.full(len(pdf), imp, dtype=np.int64)
    gidx = np.zeros(len(pdf), dtype=np.int64)
    draw = Draw(spec, pdf, delta, gidx, imps, u, u2, v, pdf.iloc[:1])
    generate(draw)
    return assemble(spec, pdf, draw)


def make_cell_sampler(spec: SamplerSpec) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """The function to hand to ``applyInPandas`` (a closure over the small, picklable spec)."""

    def _fn(pdf: pd.DataFrame) -> pd.DataFrame:
        return sample_cell(pdf, spec)

    return _fn


def empty_output(spec: SamplerSpec) -> pd.DataFrame:
    dtypes: dict[str, str] = {spec.unit_id: "object", spec.wave: "int64", CELL_ID: "object"}
    for d in spec.cell_dims:
        dtypes[d] = "object"
    for o in spec.outcomes:
        dtypes[o.name] = {"continuous": "float64", "count": "Int64", "binary": "Int64"}.get(
            o.type, "object"
        )
    for a in spec.auxiliaries:
        dtypes[a] = "float64"
    dtypes.update(
        synth_weight="float64",
        is_synthetic="bool",
        implicate="int64",
        synth_run_id="object",
        synth_method="object",
        support_class="object",
    )
    return pd.DataFrame({c: pd.Series(dtype=dtypes[c]) for c in spec.output_columns})


# ----------------------------------------------------------------------- batched path
def _group_bounds(plan: pd.DataFrame, spec: SamplerSpec):
    keys = plan[[CELL_ID, spec.wave, IMPLICATE]]
    bound = np.zeros(len(plan), dtype=bool)
    bound[0] = True
    for k in keys.columns:
        a = keys[k].to_numpy()
        bound[1:] |= a[1:] != a[:-1]
    starts = np.flatnonzero(bound)
    return starts, np.append(starts[1:], len(plan))


def _group_cells(plan: pd.DataFrame, starts: np.ndarray, model: SynthModel) -> pd.DataFrame:
    spec = model.spec
    ptab = model.params
    pkey = pd.MultiIndex.from_frame(ptab[[CELL_ID, spec.wave]])
    grows = pkey.get_indexer(pd.MultiIndex.from_frame(plan.loc[starts, [CELL_ID, spec.wave]]))
    if (grows < 0).any():
        bad = plan.loc[starts[np.flatnonzero(grows < 0)[0]], [CELL_ID, spec.wave]].tolist()
        raise SynthInputError(f"no fitted parameters for cell x wave {bad}")
    return ptab.iloc[grows].reset_index(drop=True)


#: threads that sample parts of a large plan at once (parts split at group boundaries)
SAMPLE_THREADS = 2
#: plans smaller than this are sampled in one part
MIN_PART_ROWS = 20_000


def sample_batched(
    plan: pd.DataFrame, model: SynthModel, progress_seconds: float = 5.0
) -> pd.DataFrame:
    """All groups of ``plan`` at once; identical to :func:`sample_cell` per group. A large
    plan is cut at group boundaries into parts sampled in threads: nothing mixes rows or
    groups, so the parts put together are the rows of one pass."""
    spec = model.spec
    if len(plan) == 0:
        return empty_output(spec)
    order = [CELL_ID, spec.wave, IMPLICATE, spec.unit_id]
    if not is_sorted(plan, order):
        plan = plan.sort_values(order, kind="mergesort")
    plan = _renumbered(plan)
    starts, _ = _group_bounds(plan, spec)
    cuts = _part_cuts(starts, len(plan))
    if len(cuts) == 2:
        return _sample_part(plan, starts, model, progress_seconds)
    parts = [
        (_renumbered(plan.iloc[a:b]), starts[(starts >= a) & (starts < b)] - a)
        for a, b in pairwise(cuts)
    ]
    with ThreadPoolExecutor(max_workers=SAMPLE_THREADS) as pool:
        outs = list(pool.map(lambda p: _sample_part(*p, model, progress_seconds), parts))
    return pd.concat(outs, ignore_index=True)


def _renumbered(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with a RangeIndex, sharing its columns (the sampler only reads the plan; a
    reset_index copied every column of a 100k-row plan, twice)."""
    out = df.copy(deep=False)
    out.index = pd.RangeIndex(len(out))
    return out


def _part_cuts(starts: np.ndarray, n: int) -> list[int]:
    """Row offsets cutting the plan into SAMPLE_THREADS parts of about equal rows, each at
    the start of a group ([0, n] for a small plan)."""
    if n < MIN_PART_ROWS * SAMPLE_THREADS:
        return [0, n]
    want = [n * k // SAMPLE_THREADS for k in range(1, SAMPLE_THREADS)]
    inner = sorted({int(starts[np.searchsorted(starts, w)]) for w in want if w <= starts[-1]})
    return [0, *[c for c in inner if 0 < c < n], n]


def _sample_part(
    plan: pd.DataFrame, starts: np.ndarray, model: SynthModel, progress_seconds: float
) -> pd.DataFrame:
    """The rows of a sorted plan (RangeIndex) whose groups are whole and start at ``starts``."""
    spec = model.spec
    t0 = last = time.monotonic()
    ends = np.append(starts[1:], len(plan))
    n_groups = len(starts)
    cells = _group_cells(plan, starts, model)
    d = len(spec.outcomes)
    eps = np.empty((n_groups, len(spec.components)))
    u, u2, v = (np.empty((len(plan), d)) for _ in range(3))
    cid, wv, im = (plan[k].to_numpy() for k in (CELL_ID, spec.wave, IMPLICATE))
    for i, (s, e) in enumerate(zip(starts, ends)):
        rng = cell_rng(spec.seed, cid[s], wv[s], int(im[s]))
        draw_group(spec, rng, e - s, out=(eps[i], u[s:e], u2[s:e], v[s:e]))
        now = time.monotonic()
        if now - last > progress_seconds:
            log.info("synth sample: %d/%d groups drawn, %.1fs elapsed", i + 1, n_groups, now - t0)
            last = now
    imps = im.astype(np.int64)
    delta = cell_effects(spec, cells, imps[starts], eps)
    gidx = np.repeat(np.arange(n_groups), ends - starts)
    draw = Draw(spec, plan, delta, gidx, imps, u, u2, v, cells)
    generate(draw)
    out = assemble(spec, plan, draw)
    log.info("synth sample: %d rows in %d groups, %.1fs", len(out), n_groups, time.monotonic() - t0)
    return out


def attach_params(plan: pd.DataFrame, model: SynthModel) -> pd.DataFrame:
    """The plan with each row's cell x wave columns of cell-effect inputs (the Spark input)."""
    spec = model.spec
    return plan.merge(
        model.params[[CELL_ID, spec.wave, *spec.param_columns]], on=[CELL_ID, spec.wave], how="left"
    )


def is_sorted(df: pd.DataFrame, keys: list[str]) -> bool:
    """Whether rows are in lexicographic order of ``keys`` (cheaper than sorting)."""
    n = len(df)
    if n < 2:
        return True
    lt = np.zeros(n - 1, dtype=bool)
    eq = np.ones(n - 1, dtype=bool)
    for k in keys:
        a = df[k].to_numpy()
        lt |= eq & (a[:-1] < a[1:])
        eq &= a[:-1] == a[1:]
    return bool((lt | eq).all())
