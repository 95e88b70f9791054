"""Structure learned from the respondents before any model is fitted: the order of the
sequential models, exact functional relations between answers, value spikes and
structural zeros.

* Order: ``ss_synth_order`` when given; otherwise the declared order of ``ss_outcomes``,
  moved only as far as needed so that a rule's ``when`` columns and a relation's source
  come before the column they determine.
* Functional relations: an outcome that is an exact function of an earlier discrete
  outcome in the data (every level of the source maps to one value of the target, nulls
  included; e.g. education and its numeric code) is copied through that map instead of
  being modelled (declared by ``ss_synth_derived: {target: source}`` or detected: the
  source needs at least 2 levels, 20 rows and 3 rows per level on average, so a chance
  one-to-one match in a tiny sample is not taken for a relation).
* Spikes: values of a numeric outcome held by at least ``spike_share`` of the weighted
  answers (40 hours a week), up to 5, and its declared minimum when the data reach it, are
  point masses with their own probabilities, not smoothed into the continuous part.
* Structural zeros: an event (a category, or an item being missing) that never happens
  for one level of an earlier discrete answer, or outside the range of an earlier numeric
  one (children never have an employment status), where chance cannot explain it: the
  event's rate elsewhere predicts at least ``MIN_EXPECTED`` occurrences there (a chance
  zero has probability below exp(-7), about 0.1%). Its probability is then fixed at 0
  (or 1 for "always"), which a logit with a ridge penalty would only approach.
* The cell's own: the cell (pooled over the waves) is searched for zeros and bounds like a
  level of an earlier answer when it has ``MIN_CELL_ROWS`` answers at risk (``fit._searched``;
  ``_cell_bounds`` finds every cell's bounds from one sort).
* Skip cut points: a numeric answer's value below (above) which a later item is never
  answered, beyond chance (no personal income below age 16). The synthesizer then models
  the side of the cut as its own event before the continuous part (``skip_splits``), so the
  share of records on each side follows the predictors, and later answers see the side.
* Spike cut points: a continuous outcome without a skip cut whose spike lies inside its
  answers' range (a tax adjustment of 0 between refunds and payments) is cut there the same way, so
  the side of the spike follows the predictors (``spike_split``).
* Structural bounds: a numeric answer that never goes below (above) some value for one
  level of an earlier answer, where the same test says chance cannot explain it (no
  negative work experience below 13 years of schooling); the sampler draws its value from
  the conditional distribution truncated there (``value_bounds``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import special

from surveysynth.contract.config import OutcomeSpec, Rule
from surveysynth.synthesis.features import Source, more_values_than

MIN_EXPECTED = 7.0
#: the cell (pooled over the waves) as a searched source: its key in the fit's and the sampler's
#: answers
CELL_SOURCE = "__cell__"
#: a cell (searched as a source, ``fit._searched``) with fewer answers at risk than this has no
#: zero or bound of its own: a thin cell's gaps are what its random effect and the pooling are
#: for, and a bound at the largest of n answers cuts about 1 / (n + 1) of its tail (the rule of
#: the cell ranges' ``fit.MIN_LEVEL_ROWS``)
MIN_CELL_ROWS = 30
MAX_SPIKES = 5
MIN_SPIKE_ROWS = 10


@dataclass(frozen=True)
class Constraint:
    """Fix the event probability to ``value`` on rows where the source column's level code
    equals ``level`` (kind ``level``) or its value lies below / above / at ``bound`` (kinds
    ``below`` / ``above`` / ``equal``)."""

    column: str
    kind: str  # level | below | above | equal | all
    value: float
    level: int = 0
    bound: float = 0.0

    @property
    def of_cell(self) -> bool:
        """Whether this is a cell's own zero (read from one lookup, ``fit._searched``)."""
        return self.column == CELL_SOURCE and self.kind == "level"

    def mask(self, raw: np.ndarray) -> np.ndarray:
        if self.kind == "all":
            return np.ones(len(raw), dtype=bool)
        if self.kind == "level":
            return raw == self.level
        with np.errstate(invalid="ignore"):
            if self.kind == "equal":
                return raw == self.bound
            if self.kind == "below":
                return raw < self.bound
            return raw > self.bound


def synthesis_order(
    outcomes: Sequence[OutcomeSpec],
    rules: Sequence[Rule],
    derived: dict[str, str],
    declared: Sequence[str] = (),
) -> list[str]:
    """Outcome names in the order they are synthesized (a stable topological sort)."""
    names = [o.name for o in outcomes]
    if declared:
        unknown = [n for n in declared if n not in names]
        if unknown or len(set(declared)) != len(names):
            raise ValueError(
                f"ss_synth_order must list every outcome once; got {list(declared)}, "
                f"outcomes {names}"
            )
        names = list(declared)
    before: dict[str, set[str]] = {n: set() for n in names}
    for r in rules:
        for t in r.target_columns:
            if t in before:
                before[t] |= {c for c in r.when_columns if c in before and c != t}
    for t, s in derived.items():
        before[t].add(s)
    out: list[str] = []
    while len(out) < len(names):
        ready = [n for n in names if n not in out and before[n] <= set(out)]
        if not ready:
            raise ValueError(
                "ss_synth_rules / ss_synth_derived make a cycle among outcomes "
                f"{[n for n in names if n not in out]}"
            )
        out.append(ready[0])
    if declared and out != list(declared):
        raise ValueError(
            f"ss_synth_order {list(declared)} puts a column before the rule or relation that "
            f"determines it; a valid order is {out}"
        )
    return out


def find_relations(
    order: list[str],
    specs: dict[str, OutcomeSpec],
    codes: dict[str, np.ndarray],
    raw: dict[str, np.ndarray],
    declared: dict[str, str],
) -> dict[str, tuple[str, tuple]]:
    """target -> (source, ((source code, target raw value), ...)) for exact relations."""
    found: dict[str, tuple[str, tuple]] = {}
    for t, s in declared.items():
        pairs = _function_pairs(codes[s], raw[t], min_rows=1)
        if pairs is None:
            raise ValueError(
                f"ss_synth_derived says '{t}' is a function of '{s}', but the data map one "
                f"level of '{s}' to several values of '{t}'"
            )
        found[t] = (s, pairs)
    for i, t in enumerate(order):
        if t in found:
            continue
        for s in order[:i]:
            if s in found or not specs[s].is_discrete:
                continue
            pairs = _function_pairs(codes[s], raw[t], min_rows=20)
            if pairs is not None:
                found[t] = (s, pairs)
                break
    return found


def _function_pairs(src: np.ndarray, tgt: np.ndarray, min_rows: int) -> tuple | None:
    n = len(src)
    levels = _levels(src)
    if levels.size < 2 or (min_rows > 1 and (n < min_rows or n < 3 * levels.size)):
        return None
    key = np.where(np.isnan(tgt), np.inf, tgt) if tgt.dtype.kind == "f" else tgt
    if not len(key) or bool((key == key[0]).all()):  # one value (no nan left: == is exact)
        return None
    pairs = []
    for lv in levels:
        vals = np.unique(key[src == lv])
        if vals.size != 1:
            return None
        v = vals[0]
        pairs.append((int(lv), None if (isinstance(v, float) and np.isinf(v)) else v))
    return tuple(pairs)


def _levels(codes: np.ndarray) -> np.ndarray:
    """``np.unique`` of level codes, by counting instead of sorting when they are integers
    in a short range (the same sorted values and dtype)."""
    if codes.dtype.kind != "i" or not len(codes):
        return np.unique(codes)
    lo, hi = int(codes.min()), int(codes.max())
    if hi - lo > 4 * len(codes) + 1024:
        return np.unique(codes)
    return (np.flatnonzero(np.bincount(codes - lo)) + lo).astype(codes.dtype)


def find_spikes(x: np.ndarray, w: np.ndarray, o: OutcomeSpec, share: float) -> tuple[float, ...]:
    """Point masses of a numeric outcome: its minimum when hit, and values with weighted
    share >= ``share`` (at most 5, largest first), the declared max included (a top code: a
    share of answers held at it had been left to the continuous part, which drew none there)."""
    ok = np.isfinite(x)
    if not ok.any():
        return ()
    spikes: list[float] = []
    if o.lower is not None and np.any(x[ok] <= o.lower):
        spikes.append(float(o.lower))
    vals, inv = np.unique(x[ok], return_inverse=True)
    wsum = np.bincount(inv, weights=w[ok])
    cnt = np.bincount(inv)
    frac = wsum / wsum.sum()
    for k in np.argsort(-frac, kind="stable"):
        v = float(vals[k])
        if len(spikes) > MAX_SPIKES or frac[k] < share or cnt[k] < MIN_SPIKE_ROWS:
            break
        if v not in spikes and (o.max is None or v <= o.max):  # a top code is a spike too
            spikes.append(v)
    return tuple(spikes[: MAX_SPIKES + 1])


def structural_constraints(
    event: np.ndarray, at_risk: np.ndarray, sources: list[Source], raw: dict[str, np.ndarray]
) -> tuple[Constraint, ...]:
    """Levels / ranges of earlier answers where ``event`` never (or always) happens beyond
    chance, among ``at_risk`` rows. (Counts per level come from one bincount of the level
    codes; the rule reads only the counts.)"""
    out: list[Constraint] = []
    rows = _positions(at_risk)
    e = event if rows is None else np.take(event, rows)
    if e.size and (e.all() or not e.any()):  # the event is constant where it can happen
        return (Constraint(sources[0].column if sources else "", "all", float(e[0])),)
    if e.size == 0:
        return ()
    n, k = int(e.size), int(np.count_nonzero(e))
    hits = np.flatnonzero(e)
    for s in sources:
        x = raw[s.column] if rows is None else np.take(raw[s.column], rows)
        if s.kind in ("discrete", "cell"):
            few = MIN_CELL_ROWS if s.kind == "cell" else 1
            lo = int(x.min()) if x.dtype.kind in "iu" else 0
            if x.dtype.kind in "iu" and int(x.max()) - lo <= 4 * n + 1024:
                cnt = np.bincount(x - lo)
                hit = np.bincount(np.take(x, hits) - lo, minlength=len(cnt))
                # only a level where the event never (always) happens can be a zero (a one)
                for j in np.flatnonzero((cnt >= few) & ((hit == 0) | (hit == cnt))):
                    out += _check(
                        int(cnt[j]), int(hit[j]), n, k, s.column, "level", level=int(j) + lo
                    )
                continue
            for lv in np.unique(x):
                sel = x == lv
                n_in, k_in = int(np.count_nonzero(sel)), int(np.count_nonzero(sel & e))
                if n_in >= few:
                    out += _check(n_in, k_in, n, k, s.column, "level", level=int(lv))
        else:
            fin = np.isfinite(x)
            if fin.sum() < 2 or not (fin & e).any() or not (fin & ~e).any():
                continue
            for value, sel in ((0.0, e), (1.0, ~e)):
                xs = np.take(x, np.flatnonzero(fin & sel))
                lo, hi = xs.min(), xs.max()
                for kind, bound, part in (("below", lo, x < lo), ("above", hi, x > hi)):
                    part &= fin
                    n_in, k_in = int(np.count_nonzero(part)), int(np.count_nonzero(part & e))
                    out += _check(n_in, k_in, n, k, s.column, kind, bound=bound, value=value)
    return tuple(out)


def _positions(at_risk: np.ndarray) -> np.ndarray | None:
    """The positions of the ``at_risk`` rows (a mask or positions already); None for every row
    (the sources as they are). Rows are taken by position: the same values as by the mask,
    several times faster for a mask of scattered rows."""
    if at_risk.dtype != bool:
        return at_risk
    return None if at_risk.all() else np.flatnonzero(at_risk)


def with_marginal_zeros(
    cons: tuple[Constraint, ...],
    values: Sequence[tuple[np.ndarray, float]],
    answered: np.ndarray,
    sources: list[Source],
    raw: dict[str, np.ndarray],
) -> tuple[Constraint, ...]:
    """A continuation-logit step's constraints ``cons`` (found among its at-risk rows) with, put
    first, the zeros of the values it decides found among every ``answered`` row: a level (or
    range) of an earlier answer where the value never occurs at all while its rate elsewhere
    predicts at least ``MIN_EXPECTED`` occurrences. ``values`` pairs each value's event with the
    step's probability where it never occurs (0 for the step's own value; 1 for the last level,
    decided at the last step as its complement). Among the at-risk rows alone (those past the
    earlier values) the same zero can be below the rule's reach: EU-SILC has no household of
    equivalence scale 3.5 in Vienna, where about 10 are expected, but few of Vienna's households
    reach 3.5 at all, so the step's own test expected under 7 there, and the records held 5. A
    value that never occurs at a level has probability 0 there, whatever the earlier steps give,
    so the step's probability is exact. The step's own constraints come after, so where both
    hold theirs is applied last."""
    if any(k.kind == "all" for k in cons):
        return cons
    extra: list[Constraint] = []
    seen = set(cons)  # frozen constraints: a set, not a scan of the tuple per candidate
    for event, value in values:
        for k in structural_constraints(event, answered, sources, raw):
            if k.value == 0.0 and k.kind != "all":
                fixed = Constraint(k.column, k.kind, value, k.level, k.bound)
                if fixed not in seen:
                    seen.add(fixed)
                    extra.append(fixed)
    return (*extra, *cons)


def _check(n_in, k_in, n, k, column, kind, level=0, bound=0.0, value=None) -> list[Constraint]:
    """The chance rule on counts: ``n_in`` of the ``n`` rows are selected, ``k_in`` of the
    ``k`` events fall among them."""
    if n_in == 0 or n_in == n:
        return []
    rate = (k - k_in) / (n - n_in)  # the event's rate outside the selection
    if value in (None, 0.0) and k_in == 0 and rate * n_in >= MIN_EXPECTED:
        return [Constraint(column, kind, 0.0, level, float(bound))]
    if value in (None, 1.0) and k_in == n_in and (1 - rate) * n_in >= MIN_EXPECTED:
        return [Constraint(column, kind, 1.0, level, float(bound))]
    return []


# ----------------------------------------------------------------------- skip cut points
#: each side of a cut point needs this many answers for the cut to be modelled
MIN_SPLIT_ROWS = 20


def skip_splits(
    order: Sequence[str],
    specs: dict[str, OutcomeSpec],
    raw: dict[str, np.ndarray],
    free: dict[str, np.ndarray],
) -> dict[str, tuple[Constraint, ...]]:
    """Per numeric outcome, at most one cut point: a range below (above) some value where a
    later outcome is always missing beyond chance (``structural_constraints`` on the later
    outcome's missingness), the cut shared by most later outcomes (first found on a tie).
    The cut is a ``Constraint`` (kind below / above, its ``bound``) whose mask is the side
    where the later items are skipped."""
    out: dict[str, tuple[Constraint, ...]] = {}
    for i, name in enumerate(order):
        if specs[name].is_discrete:
            continue
        x = raw[name]
        votes: dict[tuple[str, float], int] = {}
        for later in order[i + 1 :]:
            for k in _skip_cuts(x, name, raw[later], specs[later], free[later]):
                votes[(k.kind, k.bound)] = votes.get((k.kind, k.bound), 0) + 1
        cuts = sorted(votes, key=lambda kb: -votes[kb])
        for kind, bound in cuts[:1]:
            cut = Constraint(name, kind, 1.0, bound=bound)
            side = cut.mask(x) & np.isfinite(x)
            if min(int(side.sum()), int((np.isfinite(x) & ~side).sum())) >= MIN_SPLIT_ROWS:
                out[name] = (cut,)
    return out


def spike_split(name: str, x: np.ndarray, spikes: Sequence[float]) -> tuple[Constraint, ...]:
    """A cut at a spike inside the answers' range, for a continuous outcome with no skip
    cut (a count's inner spikes are its common values, years of schooling: cut at one of
    them, CPS1988's synthetic education lost its relation to wage): the
    answers off the spikes ``x`` (nan elsewhere) lie on both sides of it, each side with at
    least ``MIN_SPLIT_ROWS`` answers (a tax adjustment of 0 between refunds and payments).
    One location-scale model cannot put a mass on each side of a spike, so the sampler's
    sign of such an answer followed the residual, not the predictors (EU-SILC hy145n: 14%
    positive synthetic answers against 5% real); with the cut the side is its own event.
    Of several such spikes, the one whose smaller side is largest; () when there is none."""
    best, best_rows = (), MIN_SPLIT_ROWS - 1
    ok = np.isfinite(x)
    for s in spikes:
        rows = min(int(np.sum(ok & (x < s))), int(np.sum(ok & (x > s))))
        if rows > best_rows:
            best, best_rows = (Constraint(name, "below", 1.0, bound=float(s)),), rows
    return best


def _skip_cuts(x, name, y, o: OutcomeSpec, free) -> list[Constraint]:
    """The below / above ranges of ``x`` where outcome ``o`` (values ``y``) is always missing."""
    missing = (y < 0) if o.is_discrete else ~np.isfinite(y)
    rows = free & np.isfinite(x)
    if not (missing & rows).any() or (missing & rows).sum() == rows.sum():
        return []
    found = structural_constraints(missing, rows, [Source(name, "numeric")], {name: x})
    return [k for k in found if k.kind in ("below", "above") and k.value == 1.0]


# ----------------------------------------------------------------------- structural bounds
#: a numeric outcome used as a source of bounds when it takes at most this many values (a
#: count such as years of schooling); its values are then read as levels
MAX_BOUND_LEVELS = 30


@dataclass(frozen=True)
class ValueBound:
    """On rows where ``where`` holds (a ``Constraint`` used for its mask only), a numeric
    answer stays at or above ``value`` (side ``lo``) or at or below it (side ``hi``)."""

    where: Constraint
    side: str  # lo | hi
    value: float


def value_bounds(
    y: np.ndarray, at_risk: np.ndarray, sources: list[Source], raw: dict[str, np.ndarray]
) -> tuple[ValueBound, ...]:
    """Structural bounds of a numeric answer ``y`` (answer scale, spikes included) given the
    levels of earlier answers, among the ``at_risk`` rows that answered.

    A level of an earlier discrete answer (or a value of an earlier numeric answer with at
    most ``MAX_BOUND_LEVELS`` values; else its spikes and either side of each, a housing
    allowance of 0 or more) whose answers never go below their minimum b (above
    their maximum) while the other rows' do, beyond chance (``_log_chance``: the other rows'
    answers below b would all fall outside the level with probability below exp(-7) were the
    level like the rest), keeps its answers >= b
    (<= b): no household member below 14 in a household of equivalence scale 2.5, no
    negative experience below 13 years of schooling. The register auxiliaries bound nothing:
    tried as sources (cut points of a continuous register), the test took the tail that a
    strong smooth relation thins for a structural limit, and truncating there cut the spread
    of the Swiss domain means' synthetic records (interval coverage 0.91 -> 0.86 in
    scripts/eval/eval_real_sae.py); the conditional model carries such relations."""
    rows = at_risk & np.isfinite(y)
    if rows.sum() < 2:
        return ()
    yr = y[rows]
    out: list[ValueBound] = []
    for s in sources:
        x = raw[s.column][rows]
        if s.kind == "cell":
            out += _cell_bounds(yr, x, s.column)
        elif s.kind == "discrete":
            out += _level_bounds(yr, x, s.column, "level")
        elif s.kind == "numeric" and not more_values_than(x[np.isfinite(x)], MAX_BOUND_LEVELS):
            out += _level_bounds(yr, x, s.column, "equal")
        elif s.kind == "numeric":
            out += _spike_side_bounds(yr, x, s)
    return tuple(out)


def _spike_side_bounds(y: np.ndarray, x: np.ndarray, s: Source) -> list[ValueBound]:
    """A numeric answer's spikes split it into natural regions (an allowance of 0, or some):
    each spike and each side of it is tested as a level."""
    out = []
    for v in s.spikes:
        for kind, sel in (("equal", x == v), ("below", x < v), ("above", x > v)):
            out += _bounded(y, sel, Constraint(s.column, kind, 0.0, bound=float(v)))
    return out


def _level_bounds(y: np.ndarray, x: np.ndarray, column: str, kind: str) -> list[ValueBound]:
    out = []
    for lv in np.unique(x[np.isfinite(x)]) if kind == "equal" else _levels(x):
        if kind == "level":
            where = Constraint(column, "level", 0.0, level=int(lv))
        else:
            where = Constraint(column, "equal", 0.0, bound=float(lv))
        out += _bounded(y, x == lv, where)
    return out


def _cell_bounds(y: np.ndarray, x: np.ndarray, column: str) -> list[ValueBound]:
    """``_level_bounds`` of the cells (integer codes, thousands of them): every cell's extremes
    and the count of answers beyond them from one sort, the chance of ``_log_chance`` in closed
    form, so the search does not scan the rows once per cell."""
    if not x.size:
        return []
    lo0 = int(x.min())
    c = x - lo0
    n_in = np.bincount(c)
    y_min, y_max = np.full(n_in.size, np.inf), np.full(n_in.size, -np.inf)
    np.minimum.at(y_min, c, y)
    np.maximum.at(y_max, c, y)
    ys, n = np.sort(y), y.size
    beyond = {
        "lo": (np.searchsorted(ys, y_min, "left"), y_min),  # every such answer is outside
        "hi": (n - np.searchsorted(ys, y_max, "right"), y_max),
    }
    out = []
    for side, (k, value) in beyond.items():
        n_out = n - n_in
        with np.errstate(invalid="ignore"):
            chance = (
                special.gammaln(n_out + 1)
                - special.gammaln(n_out - k + 1)
                - special.gammaln(n + 1)
                + special.gammaln(n - k + 1)
            )
        hits = (n_in >= MIN_CELL_ROWS) & (n_out > 0) & (k > 0) & (chance <= -MIN_EXPECTED)
        for j in np.flatnonzero(hits):
            where = Constraint(column, "level", 0.0, level=int(j) + lo0)
            out.append(ValueBound(where, side, float(value[j])))
    return out


def _bounded(y: np.ndarray, sel: np.ndarray, where: Constraint) -> list[ValueBound]:
    """Bounds of y on the rows ``sel`` that chance cannot explain (see ``value_bounds``)."""
    n_in = int(sel.sum())
    if n_in == 0 or n_in == len(y):
        return []
    inside, outside = y[sel], y[~sel]
    lo, hi = inside.min(), inside.max()
    out = []
    if _log_chance(int(np.sum(outside < lo)), outside.size, y.size) <= -MIN_EXPECTED:
        out.append(ValueBound(where, "lo", float(lo)))
    if _log_chance(int(np.sum(outside > hi)), outside.size, y.size) <= -MIN_EXPECTED:
        out.append(ValueBound(where, "hi", float(hi)))
    return out


def _log_chance(k: int, n_out: int, n: int) -> float:
    """log P(the k most extreme of n exchangeable answers all fall among the n_out outside
    the level): how likely the level's bound is if the level were like the rest. About
    -k n_in / n, the rule of ``structural_constraints`` (rate outside x n_in), when the
    outside is large; a handful of extreme values in a small outside group is no evidence."""
    if k == 0:
        return 0.0
    i = np.arange(k)
    return float(np.sum(np.log(n_out - i) - np.log(n - i)))
