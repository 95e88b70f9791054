"""Disclosure risk of synthetic records, measured against a real holdout.

    report = disclosure_metrics(train, holdout, synthetic, quasi_identifiers, sensitive,
                                columns_spec, thresholds)

One row per metric (``metric``, ``column``, ``value``, ``threshold``, ``comparison``,
``passed``, ``detail``), ready to be written as a dbt metrics table and gated by a data test.

Why a holdout: synthetic data that is useful resembles the population, so "how close is a
synthetic record to a real one" means nothing on its own. Every metric here is read against
what a fresh real sample of the same size would show (STATS.md, "Disclosure risk of
synthetic records"): the holdout is real data the synthesizer never saw, so anything the
synthetic data reveals about the training rows beyond what it reveals about the holdout
rows is leakage about the respondents themselves.

Distances (DCR, membership inference, attribute inference) are Euclidean on a mixed
encoding (:func:`encode_mixed`) in which every column can move a row by at most about 1:

- numeric (continuous, count): the mid-rank ECDF of the real data (train + holdout), in
  [0, 1], so a skewed magnitude such as turnover does not swamp everything else
  (``numeric_scaling="robust"`` uses (x - median) / IQR instead);
- ordinal: level position / (levels - 1); binary: 0 / 1;
- categorical: one-hot scaled by 1/sqrt(2), so a mismatch adds exactly 1 to the squared
  distance. These columns are not materialised as dimensions: rows are blocked on their
  codes and a mismatch costs 1 (see :func:`nearest_neighbours`), which keeps the search
  exact and fast where a k-d tree over one-hot columns degrades to brute force;
- missing values: a categorical NaN is a level of its own; a numeric, ordinal or binary
  NaN sits at the centre of the column's range plus a 0/1 "missing" coordinate, so missing
  vs observed costs at least 1 and missing vs missing costs 0.

Exact matching, replicated uniques and k-anonymity compare raw values (numbers as float64,
labels as strings, NaN equal to NaN), not the encoding.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree
from scipy.stats import rankdata

__all__ = [
    "DEFAULT_RISK_THRESHOLDS",
    "METRIC_COLUMNS",
    "MixedEncoding",
    "disclosure_metrics",
    "encode_mixed",
    "membership_auc",
    "nearest_neighbours",
    "normalise_labels",
    "resolve_column_types",
]

Kind = Literal["numeric", "ordinal", "binary", "nominal"]
NumericScaling = Literal["rank", "robust"]

METRIC_COLUMNS: tuple[str, ...] = (
    "metric",
    "column",
    "value",
    "threshold",
    "comparison",
    "passed",
    "detail",
)

#: Defaults for ``disclosure_metrics(thresholds=...)``. ``None`` makes a metric report-only.
DEFAULT_RISK_THRESHOLDS: dict[str, float | None] = {
    # synthetic exact-match rate <= holdout exact-match rate + this
    "exact_match_tolerance": 0.01,
    # repU of the synthetic data <= repU of the holdout + this
    "repu_tolerance": 0.01,
    # DCR share (no leak: 0.5)
    "dcr_share_max": 0.55,
    # p5(DCR synthetic->train) / p5(DCR holdout->train): report-only by default, because a
    # point mass of duplicates near the 5th percentile makes it jump (see dcr_close_ratio)
    "dcr_p5_ratio_min": None,
    # share of synthetic rows at or below the holdout's p5 nonzero DCR, over the holdout's
    # share (no leak: 1; copies: about 1 / 0.05 = 20)
    "dcr_close_ratio_max": 1.5,
    # membership-inference AUC (no leak: 0.5)
    "mia_auc_max": 0.55,
    # attribute-inference accuracy on training rows minus that on holdout rows
    "attribute_advantage_max": 0.05,
    # a numeric sensitive value counts as disclosed when guessed within this relative error
    "attribute_numeric_rel_tol": 0.10,
    # k for the k-anonymity metrics; the two gates below are report-only by default because
    # synthetic rows are not people (the measure is perceived risk, not re-identification)
    "k_anonymity_k": 3,
    "k_anonymity_min_class_min": None,
    "k_anonymity_small_class_share_max": None,
}

_SPEC_KIND: dict[str, Kind] = {
    "continuous": "numeric",
    "count": "numeric",
    "numeric": "numeric",
    "ordinal": "ordinal",
    "binary": "binary",
    "categorical": "nominal",
    "nominal": "nominal",
}

_MAX_NOMINAL_LEVELS = 5000
_TIE_RTOL = 1e-9


# ------------------------------------------------------------------------------ column types


def resolve_column_types(
    columns: Sequence[str],
    columns_spec: Mapping[str, Any] | None,
    frames: Sequence[pd.DataFrame],
) -> tuple[dict[str, Kind], dict[str, tuple[Any, ...]]]:
    """Kind (numeric / ordinal / binary / nominal) and ordinal levels of each column.

    ``columns_spec`` takes the ``ss_outcomes`` var's form (``{name: {type, levels}}`` or
    ``{name: type}``) or :class:`~surveysynth.synth_config.OutcomeSpec`-like objects. A column
    it does not name (the cell dimensions, say) is typed from its dtype: bool is binary,
    numbers are numeric, anything else is categorical."""
    spec = dict(columns_spec or {})
    kinds: dict[str, Kind] = {}
    levels: dict[str, tuple[Any, ...]] = {}
    for col in columns:
        for i, f in enumerate(frames):
            if col not in f.columns:
                raise KeyError(
                    f"column {col!r} is missing from input frame #{i} "
                    f"(columns: {list(f.columns)}); every compared column must be in all frames"
                )
        entry = spec.get(col)
        if entry is None:
            s = frames[0][col]
            if pd.api.types.is_bool_dtype(s):
                kinds[col] = "binary"
            elif pd.api.types.is_numeric_dtype(s):
                kinds[col] = "numeric"
            else:
                kinds[col] = "nominal"
            continue
        if isinstance(entry, str):
            typ, lv = entry, None
        elif isinstance(entry, Mapping):
            typ, lv = entry.get("type"), entry.get("levels")
        else:
            typ, lv = getattr(entry, "type", None), getattr(entry, "levels", None)
        if typ not in _SPEC_KIND:
            raise ValueError(
                f"column {col!r}: type {typ!r} is not one of {sorted(_SPEC_KIND)} "
                "(columns_spec follows the ss_outcomes var)"
            )
        kinds[col] = _SPEC_KIND[typ]
        if kinds[col] == "ordinal":
            if not lv:
                raise ValueError(
                    f"ordinal column {col!r} needs its levels, in order, in columns_spec"
                )
            levels[col] = tuple(lv)
    return kinds, levels


def normalise_labels(s: pd.Series) -> np.ndarray:
    """Values as comparable labels: strings, NaN kept as None.

    Integral floats print as integers, so a category stored as 1 in one frame and 1.0 in
    another (pandas upcasts integer columns that hold a NaN) is one label."""
    if pd.api.types.is_bool_dtype(s):
        out = s.astype(object).where(s.notna(), None)
        return np.asarray([None if v is None else str(bool(v)) for v in out], dtype=object)
    if pd.api.types.is_numeric_dtype(s):
        v = s.to_numpy(dtype=float, na_value=np.nan)
        ok = ~np.isnan(v)
        lab = np.empty(len(v), dtype=object)
        integral = ok & (np.abs(v) < 2**53) & (np.floor(v) == v)
        lab[integral] = v[integral].astype(np.int64).astype(str)
        other = ok & ~integral
        lab[other] = v[other].astype(str)
        lab[~ok] = None
        return lab
    arr = s.astype(object).to_numpy()
    miss = pd.isna(arr)
    lab = arr.astype(str).astype(object)
    lab[miss] = None
    return lab


def _numeric(s: pd.Series, col: str) -> np.ndarray:
    try:
        return pd.to_numeric(s, errors="raise").to_numpy(dtype=float, na_value=np.nan) + 0.0
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"column {col!r} is typed numeric/binary but holds non-numbers: {exc}"
        ) from exc


def _ordinal_codes(s: pd.Series, col: str, levels: tuple[Any, ...]) -> np.ndarray:
    lab = normalise_labels(s)
    lv = [str(x) for x in levels]
    pos = {v: i for i, v in enumerate(lv)}
    codes = np.full(len(lab), np.nan)
    present = np.array([x is not None for x in lab], dtype=bool)
    bad = sorted({x for x in lab[present] if x not in pos})
    if bad:
        raise ValueError(f"ordinal column {col!r} holds values {bad[:5]} not among its levels {lv}")
    codes[present] = [pos[x] for x in lab[present]]
    return codes


def _raw_codes(
    frames: Sequence[pd.DataFrame], columns: Sequence[str], kinds: Mapping[str, Kind]
) -> list[np.ndarray]:
    """Integer codes of raw values, shared across frames (NaN is a value): rows are equal on
    ``columns`` exactly when their code rows are equal."""
    sizes = [len(f) for f in frames]
    mats = []
    for col in columns:
        if kinds[col] in ("numeric", "binary"):
            vals = np.concatenate([_numeric(f[col], col) for f in frames])
        else:
            vals = np.concatenate([normalise_labels(f[col]) for f in frames])
        codes, _ = pd.factorize(vals, use_na_sentinel=False)
        mats.append(codes.astype(np.int64))
    full = np.column_stack(mats) if mats else np.zeros((sum(sizes), 0), dtype=np.int64)
    return list(np.split(full, np.cumsum(sizes)[:-1]))


def _row_ids(code_blocks: Sequence[np.ndarray]) -> list[np.ndarray]:
    """One integer per distinct code row, shared across the blocks."""
    sizes = [len(b) for b in code_blocks]
    full = np.concatenate(code_blocks)
    if full.shape[1] == 0:
        ids = np.zeros(len(full), dtype=np.int64)
    else:
        _, ids = np.unique(full, axis=0, return_inverse=True)
        ids = ids.reshape(-1)
    return list(np.split(ids, np.cumsum(sizes)[:-1]))


# ------------------------------------------------------------------------------ encoding


@dataclass(frozen=True)
class MixedEncoding:
    """Rows of mixed data as ``keys`` (codes of categorical columns; a mismatch adds 1 to the
    squared distance) and ``num`` (Euclidean coordinates of everything else)."""

    keys: np.ndarray  # (n, c) int64
    num: np.ndarray  # (n, p) float64

    def __len__(self) -> int:
        return len(self.num)

    def take(self, idx: np.ndarray) -> MixedEncoding:
        return MixedEncoding(self.keys[idx], self.num[idx])


def encode_mixed(
    frames: Sequence[pd.DataFrame],
    columns: Sequence[str],
    kinds: Mapping[str, Kind],
    levels: Mapping[str, tuple[Any, ...]] | None = None,
    *,
    reference: Sequence[pd.DataFrame] | None = None,
    numeric_scaling: NumericScaling = "rank",
) -> list[MixedEncoding]:
    """Encode ``frames`` on ``columns`` for distances (see the module docstring).

    ``reference`` (default: all frames) fixes the numeric scaling; pass the real frames so
    that the synthetic data cannot move the yardstick it is measured with."""
    levels = dict(levels or {})
    reference = list(reference) if reference is not None else list(frames)
    sizes = [len(f) for f in frames]
    keys: list[np.ndarray] = []
    nums: list[np.ndarray] = []
    for col in columns:
        kind = kinds[col]
        if kind == "nominal":
            vals = np.concatenate([normalise_labels(f[col]) for f in frames])
            codes, uniq = pd.factorize(vals, use_na_sentinel=False)
            if len(uniq) > _MAX_NOMINAL_LEVELS:
                raise ValueError(
                    f"categorical column {col!r} has {len(uniq)} distinct values: too many to be "
                    "a quasi-identifier or a compared column; band or recode it first"
                )
            keys.append(codes.astype(np.int64))
            continue
        if kind == "ordinal":
            lv = levels[col]
            vals = np.concatenate([_ordinal_codes(f[col], col, lv) for f in frames])
            vals = vals / max(len(lv) - 1, 1)
            centre = 0.5
        elif kind == "binary":
            vals = np.concatenate([_numeric(f[col], col) for f in frames])
            centre = 0.5
        else:
            vals = np.concatenate([_numeric(f[col], col) for f in frames])
            ref = np.concatenate([_numeric(f[col], col) for f in reference])
            ref = np.sort(ref[~np.isnan(ref)])
            if numeric_scaling == "rank":
                if len(ref):
                    lo = np.searchsorted(ref, vals, side="left")
                    hi = np.searchsorted(ref, vals, side="right")
                    scaled = (lo + hi) / (2.0 * len(ref))
                else:
                    scaled = np.zeros_like(vals)
                vals = np.where(np.isnan(vals), np.nan, scaled)
                centre = 0.5
            elif numeric_scaling == "robust":
                med = float(np.median(ref)) if len(ref) else 0.0
                iqr = float(np.subtract(*np.percentile(ref, [75, 25]))) if len(ref) else 0.0
                if not iqr > 0:
                    iqr = float(np.std(ref)) if len(ref) and np.std(ref) > 0 else 1.0
                vals = (vals - med) / iqr
                centre = 0.0
            else:
                raise ValueError(
                    f"numeric_scaling must be 'rank' or 'robust', not {numeric_scaling!r}"
                )
        miss = np.isnan(vals)
        nums.append(np.where(miss, centre, vals))
        if miss.any():
            nums.append(miss.astype(float))
    n = sum(sizes)
    k = np.column_stack(keys) if keys else np.zeros((n, 0), dtype=np.int64)
    x = np.column_stack(nums) if nums else np.zeros((n, 1))
    cuts = np.cumsum(sizes)[:-1]
    return [MixedEncoding(a, b) for a, b in zip(np.split(k, cuts), np.split(x, cuts), strict=True)]


# ------------------------------------------------------------------------------ nearest neighbours


def nearest_neighbours(
    query: MixedEncoding, ref: MixedEncoding, *, workers: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Exact nearest neighbour in ``ref`` of every ``query`` row: (distance, index).

    Squared distance = number of categorical mismatches + squared Euclidean distance of the
    numeric coordinates. Rows are blocked on their categorical codes, with one k-d tree per
    block over the numeric coordinates only (few dimensions, where k-d trees are fast). A
    query is first answered in its own block; only where that distance exceeds 1 (or the
    block is absent from ``ref``) are other blocks searched, in increasing order of
    mismatches h, and only while h is below the best squared distance found so far, so the
    answer is exact. One mismatch (the common fallback) is searched per categorical column at
    once, with rows grouped on the other columns, so a query costs a few tree look-ups
    however many blocks there are. Ties keep the first neighbour found (own block first)."""
    nq, nr = len(query), len(ref)
    if nr == 0:
        raise ValueError("nearest_neighbours: the reference set is empty")
    search = _Search.of(query, ref)
    if nq == 0:
        return search.best, search.idx
    search.own_block(workers)
    if search.uniq.shape[1]:
        search.one_mismatch()
        search.more_mismatches()
    return np.sqrt(search.best), search.idx


@dataclass
class _Search:
    """The state of :func:`nearest_neighbours`: the best squared distance and index found so
    far for every query row, the rows' blocks (distinct categorical codes, ``uniq``) and the
    k-d trees of the reference blocks built so far."""

    query: MixedEncoding
    ref: MixedEncoding
    best: np.ndarray
    idx: np.ndarray
    uniq: np.ndarray
    qb: np.ndarray  # block of each query row
    rb: np.ndarray  # block of each reference row
    trees: dict[int, tuple[cKDTree, np.ndarray]]
    # the reference and query rows sorted by block: order, block ids, starts and counts
    r_order: np.ndarray = field(init=False)
    r_blocks: np.ndarray = field(init=False)
    r_start: np.ndarray = field(init=False)
    r_count: np.ndarray = field(init=False)
    q_order: np.ndarray = field(init=False)
    q_blocks: np.ndarray = field(init=False)
    q_start: np.ndarray = field(init=False)
    q_count: np.ndarray = field(init=False)

    @classmethod
    def of(cls, query: MixedEncoding, ref: MixedEncoding) -> _Search:
        nq, nr = len(query), len(ref)
        allkeys = np.concatenate([query.keys, ref.keys])
        if allkeys.shape[1]:
            uniq, inv = np.unique(allkeys, axis=0, return_inverse=True)
            inv = inv.reshape(-1)
        else:
            uniq, inv = np.zeros((1, 0), dtype=np.int64), np.zeros(nq + nr, dtype=np.int64)
        best, idx = np.full(nq, np.inf), np.full(nq, -1, dtype=np.int64)
        s = cls(query, ref, best, idx, uniq, inv[:nq], inv[nq:], {})
        s.r_order = np.argsort(s.rb, kind="stable")
        s.r_blocks, s.r_start, s.r_count = np.unique(
            s.rb[s.r_order], return_index=True, return_counts=True
        )
        s.q_order = np.argsort(s.qb, kind="stable")
        s.q_blocks, s.q_start, s.q_count = np.unique(
            s.qb[s.q_order], return_index=True, return_counts=True
        )
        return s

    def tree(self, pos: int) -> tuple[cKDTree, np.ndarray]:
        """The k-d tree of reference block ``pos`` (built once) and its members."""
        if pos not in self.trees:
            members = self.r_order[self.r_start[pos] : self.r_start[pos] + self.r_count[pos]]
            self.trees[pos] = (cKDTree(self.ref.num[members]), members)
        return self.trees[pos]

    def own_block(self, workers: int) -> None:
        """Stage 0: every query row in its own block."""
        block_pos = np.full(len(self.uniq), -1, dtype=np.int64)
        block_pos[self.r_blocks] = np.arange(len(self.r_blocks))
        for b, s, c in zip(self.q_blocks, self.q_start, self.q_count, strict=True):
            pos = block_pos[b]
            if pos < 0:
                continue
            rows = self.q_order[s : s + c]
            t, members = self.tree(int(pos))
            d, j = t.query(self.query.num[rows], k=1, workers=workers if c > 5000 else 1)
            self.best[rows] = d * d
            self.idx[rows] = members[j]

    def improve(self, live: np.ndarray, members: np.ndarray, t: cKDTree, cost: float) -> None:
        """Rows ``live`` against the reference rows ``members`` (tree ``t``) at ``cost``
        mismatches, searched only within the distance that could still improve them."""
        best = self.best
        bound = (
            math.sqrt(float(best[live].max()) - cost) if np.isfinite(best[live]).all() else np.inf
        )
        d, j = t.query(self.query.num[live], k=1, distance_upper_bound=bound * (1 + 1e-9))
        d2 = np.where(np.isfinite(d), d * d + cost, np.inf)
        better = d2 < best[live]
        best[live[better]] = d2[better]
        self.idx[live[better]] = members[j[better]]

    def one_mismatch(self) -> None:
        """Stage 1: for each categorical column, rows grouped on all the other columns: a group
        holds the query's own block (true cost 0, counted as 1: never wrongly better) and every
        block that differs in that column only (cost exactly 1)."""
        n_cat = self.ref.keys.shape[1]
        for col in range(n_cat):
            hard = np.flatnonzero(self.best > 1.0)
            if len(hard) == 0:
                break
            self._one_mismatch_on(col, hard, [k for k in range(n_cat) if k != col])

    def _one_mismatch_on(self, col: int, hard: np.ndarray, other: list[int]) -> None:
        nr = len(self.ref)
        if other:
            both = np.concatenate([self.ref.keys[:, other], self.query.keys[hard][:, other]])
            _, part = np.unique(both, axis=0, return_inverse=True)
            part = part.reshape(-1)
        else:
            part = np.zeros(nr + len(hard), dtype=np.int64)
        r_part, q_part = part[:nr], part[nr:]
        r_ord = np.argsort(r_part, kind="stable")
        g_ids, g_start, g_count = np.unique(r_part[r_ord], return_index=True, return_counts=True)
        q_ord = np.argsort(q_part, kind="stable")
        qg, qg_start, qg_count = np.unique(q_part[q_ord], return_index=True, return_counts=True)
        where = np.searchsorted(g_ids, qg)
        for g, s, c, w in zip(qg, qg_start, qg_count, where, strict=True):
            if w >= len(g_ids) or g_ids[w] != g:
                continue
            live = hard[q_ord[s : s + c]]
            live = live[self.best[live] > 1.0]
            if len(live) == 0:
                continue
            members = r_ord[g_start[w] : g_start[w] + g_count[w]]
            self.improve(live, members, cKDTree(self.ref.num[members]), 1.0)

    def more_mismatches(self) -> None:
        """Stage 2: two or more mismatches, block by block in increasing order of mismatches
        (rare: only rows with no reference row within one mismatch and a short distance)."""
        ref_keys = self.uniq[self.r_blocks]
        for b, s, c in zip(self.q_blocks, self.q_start, self.q_count, strict=True):
            rows = self.q_order[s : s + c]
            rows = rows[self.best[rows] > 2.0]
            if len(rows) == 0:
                continue
            h = (ref_keys != self.uniq[b]).sum(axis=1)
            for pos in np.argsort(h, kind="stable"):
                hp = float(h[pos])
                if hp <= 1:
                    continue
                live = rows[self.best[rows] > hp]
                if len(live) == 0:
                    break
                t, members = self.tree(int(pos))
                self.improve(live, members, t, hp)


# ------------------------------------------------------------------------------ metric helpers


def membership_auc(member_scores: np.ndarray, nonmember_scores: np.ndarray) -> float:
    """AUC of "member" scores vs "non-member" scores (Mann-Whitney, ties count 1/2)."""
    n1, n0 = len(member_scores), len(nonmember_scores)
    if n1 == 0 or n0 == 0:
        return float("nan")
    r = rankdata(np.concatenate([member_scores, nonmember_scores]))
    return float((r[:n1].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def _auc_se_null(n1: int, n0: int) -> float:
    return math.sqrt((n1 + n0 + 1) / (12.0 * n1 * n0)) if n1 and n0 else float("nan")


def _row(
    metric: str,
    value: float,
    threshold: float | None,
    comparison: str,
    detail: str,
    column: str | None = None,
    passed: bool | None = None,
) -> dict[str, Any]:
    thr = float("nan") if threshold is None else float(threshold)
    val = float(value)
    if passed is None:
        if math.isnan(thr):
            passed = True
            detail = f"{detail}; report only (no threshold)"
        elif math.isnan(val):
            passed = False
            detail = f"{detail}; value undefined, so the gate fails"
        else:
            passed = val <= thr if comparison == "<=" else val >= thr
    return {
        "metric": metric,
        "column": column,
        "value": val,
        "threshold": thr,
        "comparison": comparison,
        "passed": bool(passed),
        "detail": detail,
    }


def _frame(rows: Iterable[dict[str, Any]]) -> pd.DataFrame:
    out = pd.DataFrame(list(rows), columns=list(METRIC_COLUMNS))
    out["column"] = out["column"].astype(object)
    out["passed"] = out["passed"].astype(bool)
    return out


def _merge_thresholds(
    defaults: Mapping[str, float | None], given: Mapping[str, float | None] | None
) -> dict[str, float | None]:
    out = dict(defaults)
    for k, v in (given or {}).items():
        if k not in defaults:
            raise KeyError(f"unknown threshold {k!r}; valid keys: {sorted(defaults)}")
        out[k] = v
    return out


def _equal_size(n_train: int, n_hold: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Row positions of train and holdout cut to the same size by a seeded subsample of the
    larger one (positions kept in order), so that "closer to train than to holdout" is a fair
    coin without leakage (STATS.md, DCR share)."""
    n = min(n_train, n_hold)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x5EC]))

    def cut(m: int) -> np.ndarray:
        return np.arange(m) if m == n else np.sort(rng.choice(m, size=n, replace=False))

    return cut(n_train), cut(n_hold)


def _hits(kind: Kind, y: np.ndarray, yhat: np.ndarray, rel_tol: float) -> np.ndarray:
    if kind == "numeric":
        return np.abs(yhat - y) <= rel_tol * np.abs(y)
    return yhat == y


# ------------------------------------------------------------------------------ entry point


def disclosure_metrics(
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    synthetic: pd.DataFrame,
    quasi_identifiers: Sequence[str],
    sensitive: Sequence[str],
    columns_spec: Mapping[str, Any] | None = None,
    thresholds: Mapping[str, float | None] | None = None,
    *,
    seed: int = 0,
    numeric_scaling: NumericScaling = "rank",
    workers: int = 1,
) -> pd.DataFrame:
    """Disclosure-risk metrics of ``synthetic`` (made from ``train``) read against ``holdout``.

    Compared columns: the quasi-identifiers, then the ``columns_spec`` columns, then the
    sensitive columns (bookkeeping columns of the synthetic data are ignored). Call it once
    per implicate: every rate is per released row, but replicated uniques and k-anonymity
    depend on how many rows are released together (repU is compared at equal size).

    Metrics (one row each; STATS.md formulas):

    - ``exact_match_rate``: share of synthetic rows equal on every compared column to some
      training row. Passes when <= the same share for holdout rows + ``exact_match_tolerance``
      (real data has duplicates of its own: the holdout rate is what chance gives).
    - ``replicated_uniques``: repU (synthpop): training rows unique on the quasi-identifiers
      whose combination appears in the synthetic data, over all training rows. Passes when <=
      repU of the holdout (as if it were released) + ``repu_tolerance``. A bigger release
      replicates more by chance, so the synthetic and holdout rows are cut to the same size
      (seeded subsample of the larger) for both numbers; the detail gives the whole set's.
    - ``dcr_share``: with train and holdout cut to equal size, the share of synthetic rows
      nearer to train than to holdout, ties 1/2; no leak about 0.5.
    - ``dcr_p5_ratio``: p5 of the synthetic rows' DCR to train over p5 of the holdout rows'
      DCR to train; < 1 means the synthetic data sits closer to respondents than new real
      data does. Undefined (NaN, passes) when the holdout p5 is 0. Report-only by default:
      where duplicates put a point mass near the 5th percentile it jumps between runs.
    - ``dcr_close_ratio``: the same question asked robustly. With tau the 5th percentile of
      the holdout rows' nonzero DCRs to train (nonzero, so that duplicates in the real data
      do not pin tau at 0 and hide near-copies), the share of synthetic rows with DCR <= tau
      over the share of holdout rows with DCR <= tau (which is >= 0.05 by construction, so
      never 0/0); no leak about 1, copies or near-copies of training rows far above (about
      1 / that share: 20 without duplicates).
    - ``membership_auc``: score each (equal-size) train and holdout row by minus its distance
      to the nearest synthetic row; AUC of members vs non-members; no leak 0.5.
    - ``attribute_inference_advantage`` (per sensitive column): an intruder who knows a real
      row's quasi-identifiers takes the sensitive value of the nearest synthetic row (on the
      quasi-identifiers only). Accuracy = share guessed right (numeric: within
      ``attribute_numeric_rel_tol`` relative error); advantage = accuracy on training rows
      minus accuracy on holdout rows (what the synthetic data teaches about anybody is not a
      leak about respondents; Stadler et al. 2022, Giomi et al. 2023). Rows whose true value is
      missing are left out.
    - ``k_anonymity_min_class`` and ``k_anonymity_small_class_share``: size of the smallest
      class of synthetic rows sharing the quasi-identifiers, and share of synthetic rows in
      classes smaller than ``k_anonymity_k`` (report-only by default).
    """
    thr = _merge_thresholds(DEFAULT_RISK_THRESHOLDS, thresholds)
    rx = _RiskInputs.of(
        [train, holdout, synthetic],
        quasi_identifiers,
        sensitive,
        columns_spec,
        thr,
        seed,
        numeric_scaling,
        workers,
    )
    codes = _raw_codes([train, holdout, synthetic], rx.columns, rx.kinds)
    rows = [_exact_match_row(rx, codes)]
    qpos = [rx.columns.index(c) for c in rx.qis]
    tq, hq, sq = _row_ids([c[:, qpos] for c in codes])
    rows.append(_replicated_uniques_row(rx, tq, hq, sq))
    rows += _distance_rows(rx)
    rows += _attribute_rows(rx)
    rows += _k_anonymity_rows(rx, sq)
    return _frame(rows)


@dataclass
class _RiskInputs:
    """The three frames and what every family of risk metrics reads of them. ``real_ref`` are
    the training and holdout rows cut to equal size (``_equal_size``)."""

    train: pd.DataFrame
    holdout: pd.DataFrame
    synthetic: pd.DataFrame
    qis: list[str]
    sens: list[str]
    columns: list[str]
    kinds: dict[str, Kind]
    levels: dict[str, tuple]
    thr: dict[str, float | None]
    seed: int
    real_ref: list[pd.DataFrame]
    numeric_scaling: NumericScaling
    workers: int  # nearest_neighbours' workers

    @classmethod
    def of(
        cls, frames, quasi_identifiers, sensitive, spec, thr, seed, numeric_scaling, workers
    ) -> _RiskInputs:
        """Checked column lists and kinds of ``frames`` (train, holdout, synthetic)."""
        train, holdout, synthetic = frames
        qis = list(dict.fromkeys(quasi_identifiers))
        sens = list(dict.fromkeys(sensitive))
        both = sorted(set(qis) & set(sens))
        if both:
            raise ValueError(
                f"columns {both} are both quasi-identifiers and sensitive; an intruder who knows "
                "a value cannot be said to infer it: take them out of one list"
            )
        if not qis:
            raise ValueError("quasi_identifiers is empty: name the columns an intruder could know")
        columns = list(dict.fromkeys([*qis, *(spec or {}), *sens]))
        for name, f in zip(("train", "holdout", "synthetic"), frames, strict=True):
            if len(f) == 0:
                raise ValueError(f"disclosure_metrics: the {name} frame has no rows")
        kinds, levels = resolve_column_types(columns, spec, frames)
        t_pos, h_pos = _equal_size(len(train), len(holdout), seed)
        real_ref = [train.iloc[t_pos], holdout.iloc[h_pos]]
        return cls(
            train,
            holdout,
            synthetic,
            qis,
            sens,
            columns,
            kinds,
            levels,
            thr,
            seed,
            real_ref,
            numeric_scaling,
            workers,
        )

    def encode(self, columns: list[str]) -> list[MixedEncoding]:
        """The equal-size training and holdout rows and the synthetic rows on ``columns``."""
        return encode_mixed(
            [self.real_ref[0], self.real_ref[1], self.synthetic],
            columns,
            self.kinds,
            self.levels,
            reference=self.real_ref,
            numeric_scaling=self.numeric_scaling,
        )


def _exact_match_row(rx: _RiskInputs, codes) -> dict[str, Any]:
    """``exact_match_rate`` over the full training set, against the holdout's rate."""
    tr_id, ho_id, sy_id = _row_ids(codes)
    syn_rate = float(np.isin(sy_id, tr_id).mean())
    hold_rate = float(np.isin(ho_id, tr_id).mean())
    tol = rx.thr["exact_match_tolerance"]
    return _row(
        "exact_match_rate",
        syn_rate,
        None if tol is None else hold_rate + tol,
        "<=",
        f"{round(syn_rate * len(sy_id))} of {len(sy_id)} synthetic rows equal a training row "
        f"on all {len(rx.columns)} compared columns; holdout rate {hold_rate:.4f} "
        f"(tolerance {tol})",
    )


def _replicated_uniques_row(rx: _RiskInputs, tq, hq, sq) -> dict[str, Any]:
    """``replicated_uniques`` on the quasi-identifiers (row ids ``tq``, ``hq``, ``sq``), the
    synthetic and holdout rows compared at equal size: a bigger release replicates more by
    chance."""
    counts = np.bincount(tq, minlength=int(max(tq.max(), hq.max(), sq.max())) + 1)
    unique_train = counts[tq] == 1
    repu_full = float((unique_train & np.isin(tq, sq)).mean())
    s_pos, h_pos_u = _equal_size(len(sq), len(hq), rx.seed + 1)
    repu = float((unique_train & np.isin(tq, sq[s_pos])).mean())
    repu_hold = float((unique_train & np.isin(tq, hq[h_pos_u])).mean())
    tol = rx.thr["repu_tolerance"]
    size_note = (
        f"; both cut to {len(s_pos)} rows (synthetic {len(sq)}, holdout {len(hq)}); repU of "
        f"the whole synthetic set {repu_full:.4f}"
        if len(sq) != len(hq)
        else ""
    )
    return _row(
        "replicated_uniques",
        repu,
        None if tol is None else repu_hold + tol,
        "<=",
        f"{int(unique_train.sum())} training rows unique on {rx.qis}, "
        f"{round(repu * len(tq))} of them replicated in the synthetic data; "
        f"holdout repU {repu_hold:.4f} (tolerance {tol}){size_note}",
    )


def _distance_rows(rx: _RiskInputs) -> list[dict[str, Any]]:
    """``dcr_share``, ``dcr_p5_ratio``, ``dcr_close_ratio`` and ``membership_auc``, on every
    compared column of the equal-size training and holdout rows."""
    enc_t, enc_h, enc_s = rx.encode(rx.columns)
    d_st, _ = nearest_neighbours(enc_s, enc_t, workers=rx.workers)
    d_sh, _ = nearest_neighbours(enc_s, enc_h, workers=rx.workers)
    d_ht, _ = nearest_neighbours(enc_h, enc_t, workers=rx.workers)
    rows = [_dcr_share_row(rx, d_st, d_sh), *_dcr_ratio_rows(rx, d_st, d_ht)]
    d_real = nearest_neighbours(
        MixedEncoding(
            np.concatenate([enc_t.keys, enc_h.keys]), np.concatenate([enc_t.num, enc_h.num])
        ),
        enc_s,
        workers=rx.workers,
    )[0]
    n1 = len(enc_t)
    auc = membership_auc(-d_real[:n1], -d_real[n1:])
    rows.append(
        _row(
            "membership_auc",
            auc,
            rx.thr["mia_auc_max"],
            "<=",
            f"distance attack, {n1} members vs {len(d_real) - n1} non-members; null 0.5, "
            f"se {_auc_se_null(n1, len(d_real) - n1):.4f}",
        )
    )
    return rows


def _dcr_share_row(rx: _RiskInputs, d_st: np.ndarray, d_sh: np.ndarray) -> dict[str, Any]:
    tie = np.isclose(d_st, d_sh, rtol=_TIE_RTOL, atol=1e-12)
    share = float(np.where(tie, 0.5, (d_st < d_sh).astype(float)).mean())
    se = math.sqrt(0.25 / len(d_st))
    n_t, n_h = len(rx.real_ref[0]), len(rx.real_ref[1])
    return _row(
        "dcr_share",
        share,
        rx.thr["dcr_share_max"],
        "<=",
        f"{len(d_st)} synthetic rows vs {n_t} training and {n_h} holdout rows "
        f"(equal size); ties {tie.mean():.3f}; null 0.5, se {se:.4f}",
    )


def _dcr_ratio_rows(rx: _RiskInputs, d_st: np.ndarray, d_ht: np.ndarray) -> list[dict[str, Any]]:
    """The synthetic rows' distances to respondents against the holdout rows' (``d_ht``)."""
    p5_s, p5_h = float(np.percentile(d_st, 5)), float(np.percentile(d_ht, 5))
    zero_note = (
        f"; {float((d_ht == 0).mean()):.3f} of holdout rows duplicate a training row, so the "
        "holdout p5 is 0 and the ratio is undefined (dcr_close_ratio still applies)"
        if p5_h == 0
        else ""
    )
    p5 = _row(
        "dcr_p5_ratio",
        p5_s / p5_h if p5_h > 0 else float("nan"),
        rx.thr["dcr_p5_ratio_min"],
        ">=",
        f"p5 DCR synthetic->train {p5_s:.5g}, holdout->train {p5_h:.5g}{zero_note}",
        passed=True if p5_h == 0 else None,
    )
    positive = d_ht[d_ht > 0]
    tau = float(np.percentile(positive, 5)) if len(positive) else 0.0
    close_s, close_h = float((d_st <= tau).mean()), float((d_ht <= tau).mean())
    n_close = max(round(close_h * len(d_ht)), 1)
    close = _row(
        "dcr_close_ratio",
        close_s / close_h,
        rx.thr["dcr_close_ratio_max"],
        "<=",
        f"share of synthetic rows at DCR <= tau = {tau:.5g} (p5 of the holdout rows' nonzero "
        "DCR to train) "
        f"{close_s:.4f}, of holdout rows {close_h:.4f}; null 1, se about "
        f"{math.sqrt(1 / n_close + 1 / max(close_s * len(d_st), 1)):.3f}",
    )
    return [p5, close]


def _attribute_rows(rx: _RiskInputs) -> list[dict[str, Any]]:
    """``attribute_inference_advantage`` of every sensitive column: the nearest synthetic row on
    the quasi-identifiers as the intruder's guess, on training against holdout rows."""
    if not rx.sens:
        return []
    qt, qh, qs = rx.encode(rx.qis)
    _, nn = nearest_neighbours(
        MixedEncoding(np.concatenate([qt.keys, qh.keys]), np.concatenate([qt.num, qh.num])),
        qs,
        workers=rx.workers,
    )
    n1 = len(qt)
    rel_tol = float(rx.thr["attribute_numeric_rel_tol"] or 0.0)
    return [_attribute_row(rx, col, nn, n1, rel_tol) for col in rx.sens]


def _attribute_hits(rx: _RiskInputs, col: str, nn: np.ndarray, n1: int, rel_tol: float):
    """(the guess is right, the marginal guess is right, the true value is observed) for the
    equal-size training rows then the holdout rows."""
    kind, real_ref = rx.kinds[col], rx.real_ref
    if kind in ("numeric", "binary"):
        conv = lambda f: _numeric(f[col], col)
    elif kind == "ordinal":
        conv = lambda f: _ordinal_codes(f[col], col, rx.levels[col])
    else:
        lab = np.concatenate(
            [normalise_labels(real_ref[0][col]), normalise_labels(real_ref[1][col])]
        )
        pred = normalise_labels(rx.synthetic[col])[nn]
        obs = np.array([v is not None for v in lab], dtype=bool)
        tl = pd.Series(lab[:n1][obs[:n1]])
        base = tl.mode().iloc[0] if len(tl) else None
        return (lab == pred) & obs, lab == base, obs
    y = np.concatenate([conv(real_ref[0]), conv(real_ref[1])])
    yhat = conv(rx.synthetic)[nn]
    obs = ~np.isnan(y)
    hit = _hits(kind, y, yhat, rel_tol) & ~np.isnan(yhat)
    train_y = y[:n1][obs[:n1]]
    if kind == "numeric":
        base = np.median(train_y) if len(train_y) else np.nan
    else:
        vals, cnt = np.unique(train_y, return_counts=True)
        base = vals[np.argmax(cnt)] if len(vals) else np.nan
    return hit, _hits(kind, y, np.full_like(y, base), rel_tol), obs


def _attribute_row(rx: _RiskInputs, col: str, nn, n1: int, rel_tol: float) -> dict[str, Any]:
    hit, base_hit, obs = _attribute_hits(rx, col, nn, n1, rel_tol)
    m_t, m_h = obs[:n1], obs[n1:]
    if m_t.sum() == 0 or m_h.sum() == 0:
        return _row(
            "attribute_inference_advantage",
            float("nan"),
            rx.thr["attribute_advantage_max"],
            "<=",
            "no observed values of this column among training or holdout rows",
            column=col,
            passed=True,
        )
    acc_t, acc_h = float(hit[:n1][m_t].mean()), float(hit[n1:][m_h].mean())
    acc_m = float(base_hit[n1:][m_h].mean())
    se = math.sqrt(acc_t * (1 - acc_t) / m_t.sum() + acc_h * (1 - acc_h) / m_h.sum())
    how = f"within {rel_tol:.0%}" if rx.kinds[col] == "numeric" else "exactly"
    return _row(
        "attribute_inference_advantage",
        acc_t - acc_h,
        rx.thr["attribute_advantage_max"],
        "<=",
        f"nearest synthetic row on {rx.qis} guesses {col} {how}: training rows "
        f"{acc_t:.4f}, holdout rows {acc_h:.4f} (se of difference {se:.4f}); "
        f"marginal guess on holdout {acc_m:.4f}",
        column=col,
    )


def _k_anonymity_rows(rx: _RiskInputs, sq: np.ndarray) -> list[dict[str, Any]]:
    """Classes of synthetic rows sharing the quasi-identifiers (row ids ``sq``)."""
    k = int(rx.thr["k_anonymity_k"] or 1)
    _, sizes = np.unique(sq, return_counts=True)
    class_size = sizes[np.unique(sq, return_inverse=True)[1].reshape(-1)]
    min_class = int(sizes.min())
    small = float((class_size < k).mean())
    return [
        _row(
            "k_anonymity_min_class",
            float(min_class),
            rx.thr["k_anonymity_min_class_min"],
            ">=",
            f"{len(sizes)} classes of synthetic rows on {rx.qis}; smallest has {min_class} rows",
        ),
        _row(
            "k_anonymity_small_class_share",
            small,
            rx.thr["k_anonymity_small_class_share_max"],
            "<=",
            f"share of synthetic rows in classes smaller than k={k} on {rx.qis}",
        ),
    ]
