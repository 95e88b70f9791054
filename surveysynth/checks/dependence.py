"""Dependence checks: does synthetic microdata keep the joint structure of the real survey?

    kinds = column_kinds(columns_spec, real)
    noise = split_noise(real_all, kinds, n_splits=20, seed=0)       # real-vs-real reference
    pairs = association_check(train, {"synthetic": syn}, noise)
    skips = missingness_check(train, {"synthetic": syn}, noise)
    zeros = find_zeros(train, kinds)                                 # impossible combinations
    n_bad = violations(syn, zeros, kinds)

Every statistic is compared with what two real samples of the same size show, the *noise
floor*: the full real table is cut into random halves ``n_splits`` times and the statistic is
computed on each pair of halves. A synthetic table is then compared with the real rows it was
trained on (same size as a half), so a synthesizer that draws fresh rows from the population
would sit inside the floor, and one that copies its training rows would sit below it.

* Pairwise association of every two columns: Spearman correlation when neither column is
  nominal (binary answers as 0/1; pairwise-complete rows), else Cramer's V of the
  contingency table (numeric columns cut at the reference's quintiles, missing as a level).
  A pair is within the floor when |a_syn - a_real| <= z* sd, sd the root mean square of the
  real-vs-real differences and z* the two-sided Bonferroni quantile at familywise level
  ``alpha`` over all pairs (so a fresh real sample passes every pair with probability about
  1 - alpha).
* Conditional missingness (skips): for each column with missing values and each other column,
  the TV distance between the real and synthetic P(missing | other column's level or
  quintile bin), averaged over the bins with the real shares as weights. Within the floor
  when at most mean + z* sd of the real-vs-real distances (one-sided Bonferroni z*).
* Structural zeros ("impossible combinations"): an event of one column (a level, missing,
  zero, positive or negative) that never occurs with a level of another column, or outside
  the range of a numeric one, although the event's rate elsewhere predicts at least
  ``min_expected`` occurrences (a chance zero has probability below exp(-min_expected)).
  ``violations`` counts the rows of another table that show such a combination.
* Functional relations: a column that is an exact function of a column with few levels
  (each source value maps to one target value), and the share of another table's rows that
  follow the same map.
* Value spikes: values of a numeric column held by at least 5% of its answers, and their share
  in another table.
* Regression: OLS coefficients of one column on others, real vs synthetic: sign and the
  confidence-interval overlap of Karr et al. (2006).

Unweighted throughout: these compare records, so pass the rows the synthetic ones stand for.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from surveysynth.checks.fidelity import ci_overlap

__all__ = [
    "Relation",
    "Zero",
    "association_check",
    "associations",
    "column_kinds",
    "find_relations",
    "find_spikes",
    "find_zeros",
    "missingness_check",
    "regression_check",
    "relation_share",
    "split_noise",
    "violations",
]

MISSING = "<missing>"
N_BINS = 5
_KIND_OF_TYPE = {
    "continuous": "numeric",
    "count": "numeric",
    "binary": "binary",
    "categorical": "nominal",
    "ordinal": "nominal",
}


# ------------------------------------------------------------------------------ column values
def column_kinds(spec: Mapping[str, Any], frame: pd.DataFrame) -> dict[str, str]:
    """numeric / binary / nominal for each column of ``spec`` (the ``ss_outcomes`` form, or a
    bare type string); a column given as None is typed from its dtype (text is nominal)."""
    kinds = {}
    for col, entry in spec.items():
        typ = entry.get("type") if isinstance(entry, Mapping) else entry
        if typ is None:
            s = frame[col]
            typ = "continuous" if pd.api.types.is_numeric_dtype(s) else "categorical"
        if typ not in _KIND_OF_TYPE:
            raise ValueError(f"column {col!r}: type {typ!r} is not one of {sorted(_KIND_OF_TYPE)}")
        kinds[col] = _KIND_OF_TYPE[typ]
    return kinds


def _numbers(s: pd.Series) -> np.ndarray:
    return pd.to_numeric(s, errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def _labels(s: pd.Series) -> np.ndarray:
    """Text labels, missing as MISSING; numbers that are whole print without '.0'."""
    if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
        x = _numbers(s)
        whole = np.isfinite(x) & (np.abs(x) < 2**53) & (x == np.round(x))
        ints = np.round(np.where(whole, x, 0.0)).astype("int64").astype(str)
        out = np.where(whole, ints, x.astype(str))
        return np.where(np.isnan(x), MISSING, out).astype(object)
    v = s.astype(object).to_numpy()
    return np.where(pd.isna(v), MISSING, v.astype(str)).astype(object)


@dataclass
class Coding:
    """How columns become contingency codes, fixed by a reference frame so that codes mean
    the same level in every frame: numeric columns by the reference's quintile edges,
    others by the reference's labels (a label the reference lacks gets a code of its own)."""

    kinds: dict[str, str]
    edges: dict[str, np.ndarray]
    levels: dict[str, dict[str, int]]


def coding(reference: pd.DataFrame, kinds: Mapping[str, str]) -> Coding:
    edges, levels = {}, {}
    for c, k in kinds.items():
        if k == "numeric":
            x = _numbers(reference[c])
            x = x[np.isfinite(x)]
            q = np.quantile(x, np.linspace(0, 1, N_BINS + 1)[1:-1]) if x.size else np.zeros(0)
            edges[c] = np.unique(q)
        else:
            levels[c] = {lv: i for i, lv in enumerate(np.unique(_labels(reference[c]).astype(str)))}
    return Coding(dict(kinds), edges, levels)


@dataclass
class Encoded:
    """A frame as the association statistics see it: numbers of the non-nominal columns,
    contingency codes (missing is code 0 for numeric columns, a label otherwise) and
    missingness masks of every column."""

    numbers: pd.DataFrame
    codes: dict[str, np.ndarray]
    missing: dict[str, np.ndarray]

    def take(self, idx: np.ndarray) -> Encoded:
        return Encoded(
            self.numbers.iloc[idx].reset_index(drop=True),
            {c: v[idx] for c, v in self.codes.items()},
            {c: v[idx] for c, v in self.missing.items()},
        )


def encode(frame: pd.DataFrame, cd: Coding) -> Encoded:
    codes, missing, nums = {}, {}, {}
    for c, k in cd.kinds.items():
        if k == "numeric":
            x = _numbers(frame[c])
            missing[c] = np.isnan(x)
            codes[c] = np.where(missing[c], 0, 1 + np.searchsorted(cd.edges[c], x, side="right"))
        else:
            lab = _labels(frame[c]).astype(str)
            missing[c] = lab == MISSING
            known = pd.Series(lab).map(cd.levels[c])
            extra = len(cd.levels[c]) + pd.factorize(lab)[0]
            codes[c] = np.where(known.notna(), known.fillna(0).to_numpy(), extra).astype(np.int64)
        if k != "nominal":
            nums[c] = _numbers(frame[c])
    return Encoded(pd.DataFrame(nums), codes, missing)


def _cramers_v(a: np.ndarray, b: np.ndarray) -> float:
    _, ia = np.unique(a, return_inverse=True)
    _, ib = np.unique(b, return_inverse=True)
    ka, kb = ia.max() + 1, ib.max() + 1
    if ka < 2 or kb < 2:
        return 0.0
    tab = np.bincount(ia * kb + ib, minlength=ka * kb).reshape(ka, kb).astype(float)
    n = tab.sum()
    expected = tab.sum(1, keepdims=True) * tab.sum(0, keepdims=True) / n
    chi2 = float(np.sum((tab - expected) ** 2 / expected))
    return float(np.sqrt(chi2 / (n * (min(ka, kb) - 1))))


# ------------------------------------------------------------------------------ associations
def associations(enc: Encoded, kinds: Mapping[str, str]) -> pd.Series:
    """Association of every pair of columns, indexed 'a ~ b' (see the module docstring)."""
    cols = list(kinds)
    corr = enc.numbers.corr(method="spearman")
    out = {}
    for i, a in enumerate(cols):
        for b in cols[i + 1 :]:
            if kinds[a] != "nominal" and kinds[b] != "nominal":
                value = corr.loc[a, b]
                out[f"{a} ~ {b}"] = 0.0 if pd.isna(value) else float(value)
            else:
                out[f"{a} ~ {b}"] = _cramers_v(enc.codes[a], enc.codes[b])
    return pd.Series(out, dtype=float)


def missing_tv(real: Encoded, other: Encoded, columns: Sequence[str]) -> pd.Series:
    """Conditional missingness, indexed 'missing(a) | b' for each a in ``columns`` and every
    other column b: the TV distance between P(a missing | b = k) in ``real`` and in ``other``
    (|p_real(k) - p_other(k)| for a yes/no event), averaged over the levels or quintile bins
    k of b with the real shares as weights. Bins ``other`` lacks are left out: they are a
    difference in b's distribution, which the pairwise and marginal checks see."""
    out = {}
    for a in columns:
        for b in real.codes:
            if b == a:
                continue
            k = 1 + max(int(real.codes[b].max()), int(other.codes[b].max()))
            n_r = np.bincount(real.codes[b], minlength=k).astype(float)
            m_r = np.bincount(real.codes[b], weights=real.missing[a], minlength=k)
            n_o = np.bincount(other.codes[b], minlength=k).astype(float)
            m_o = np.bincount(other.codes[b], weights=other.missing[a], minlength=k)
            both = (n_r > 0) & (n_o > 0)
            gap = np.abs(m_r[both] / n_r[both] - m_o[both] / n_o[both])
            out[f"missing({a}) | {b}"] = float(np.sum(n_r[both] * gap) / max(n_r.sum(), 1.0))
    return pd.Series(out, dtype=float)


def missing_columns(enc: Encoded) -> list[str]:
    """Columns with some but not all values missing."""
    return [c for c, m in enc.missing.items() if 0 < m.sum() < len(m)]


@dataclass
class Noise:
    """Real-vs-real reference: per split, association differences and missingness TVs."""

    assoc_diff: pd.DataFrame  # splits x pairs, a(B) - a(A)
    miss_tv: pd.DataFrame  # splits x (missing column, other column)
    coding: Coding
    miss_cols: list[str]


def split_noise(
    real: pd.DataFrame, kinds: Mapping[str, str], n_splits: int = 20, seed: int = 0
) -> Noise:
    """The statistics between two random halves of ``real``, ``n_splits`` times."""
    cd = coding(real, kinds)
    enc = encode(real, cd)
    miss_cols = missing_columns(enc)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0xDE9]))
    diffs, tvs = [], []
    half = len(real) // 2
    for _ in range(n_splits):
        perm = rng.permutation(len(real))
        a, b = enc.take(perm[:half]), enc.take(perm[half : 2 * half])
        diffs.append(associations(b, kinds) - associations(a, kinds))
        tvs.append(missing_tv(a, b, miss_cols))
    return Noise(pd.DataFrame(diffs), pd.DataFrame(tvs), cd, miss_cols)


def _z(alpha: float, n: int, sides: int) -> float:
    return float(stats.norm.ppf(1 - alpha / (sides * max(n, 1))))


def association_check(
    real: pd.DataFrame,
    candidates: Mapping[str, pd.DataFrame],
    noise: Noise,
    alpha: float = 0.05,
    min_sd: float = 1e-3,
) -> pd.DataFrame:
    """One row per pair: the real association, the noise sd and threshold, and per candidate
    its association, difference from the real one and whether it is within the threshold."""
    kinds = noise.coding.kinds
    base = associations(encode(real, noise.coding), kinds)
    sd = np.sqrt((noise.assoc_diff**2).mean()).reindex(base.index).clip(lower=min_sd)
    z = _z(alpha, len(base), 2)
    out = pd.DataFrame({"real": base, "noise_sd": sd, "threshold": z * sd})
    for name, frame in candidates.items():
        a = associations(encode(frame, noise.coding), kinds)
        out[name] = a
        out[f"{name}_diff"] = a - base
        out[f"{name}_within"] = (a - base).abs() <= out["threshold"]
    return out


def missingness_check(
    real: pd.DataFrame,
    candidates: Mapping[str, pd.DataFrame],
    noise: Noise,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """One row per (missing column, other column): the real-vs-real TV mean and threshold, and
    per candidate its TV from ``real`` and whether it is within the threshold."""
    mean, sd = noise.miss_tv.mean(), noise.miss_tv.std(ddof=1).fillna(0.0)
    out = pd.DataFrame({"floor": mean, "threshold": mean + _z(alpha, len(mean), 1) * sd})
    enc = encode(real, noise.coding)
    for name, frame in candidates.items():
        tv = missing_tv(enc, encode(frame, noise.coding), noise.miss_cols)
        out[name] = tv.reindex(out.index)
        out[f"{name}_within"] = out[name] <= out["threshold"]
    return out


# ------------------------------------------------------------------------------ structural zeros
@dataclass(frozen=True)
class Zero:
    """``target`` shows ``event`` never when ``source`` is ``level`` (kind 'level'), below /
    above ``bound`` (kinds 'below' / 'above'), or never at all (kind 'all')."""

    target: str
    event: str  # a level, MISSING, '=0', '>0' or '<0'
    source: str
    kind: str
    level: str = ""
    bound: float = 0.0
    expected: float = 0.0

    def describe(self) -> str:
        if self.kind == "all":
            return f"{self.target} never {self.event} (in {self.expected:.0f} rows)"
        cond = {
            "level": f"{self.source} = {self.level}",
            "below": f"{self.source} < {self.bound:g}",
            "above": f"{self.source} > {self.bound:g}",
        }[self.kind]
        return f"{self.target} {self.event} with {cond} (expected {self.expected:.0f})"


class _Columns:
    """Labels and numbers of a frame's columns, each computed once."""

    def __init__(self, frame: pd.DataFrame):
        self.frame, self._lab, self._num = frame, {}, {}

    def labels(self, c: str) -> np.ndarray:
        if c not in self._lab:
            self._lab[c] = _labels(self.frame[c])
        return self._lab[c]

    def numbers(self, c: str) -> np.ndarray:
        if c not in self._num:
            self._num[c] = _numbers(self.frame[c])
        return self._num[c]

    def events(self, c: str, kind: str) -> dict[str, np.ndarray]:
        if kind != "numeric":
            lab = self.labels(c)
            return {str(v): lab == v for v in np.unique(lab)}
        x = self.numbers(c)
        with np.errstate(invalid="ignore"):
            return {MISSING: np.isnan(x), "=0": x == 0, ">0": x > 0, "<0": x < 0}

    def broken(self, z: Zero, kinds: Mapping[str, str]) -> np.ndarray:
        """Rows that show the zero's event under its condition."""
        event = self.events(z.target, kinds[z.target])
        e = event.get(z.event, np.zeros(len(self.frame), dtype=bool))
        if z.kind == "all":
            return e
        if z.kind == "level":
            return e & (self.labels(z.source) == z.level)
        x = self.numbers(z.source)
        with np.errstate(invalid="ignore"):
            return e & (x < z.bound if z.kind == "below" else x > z.bound)


def find_zeros(
    real: pd.DataFrame, kinds: Mapping[str, str], min_expected: float = 10.0
) -> list[Zero]:
    """Structural zeros of ``real`` (module docstring): events that never happen for a level
    or outside a range of another column where at least ``min_expected`` were due."""
    cols, out = _Columns(real), []
    for t, kt in kinds.items():
        events = cols.events(t, kt)
        if not events.get(MISSING, np.zeros(1, bool)).any() and len(real) >= min_expected:
            out.append(Zero(t, MISSING, "", "all", expected=float(len(real))))
        for name, e in events.items():
            if e.any() and not e.all():
                for s, ks in kinds.items():
                    if s != t:
                        out += _zeros_on(cols, t, name, e, s, ks, min_expected)
    return out


def _zeros_on(cols: _Columns, t, name, e, s, ks, min_expected) -> list[Zero]:
    out = []
    lab = cols.labels(s)
    for lv in np.unique(lab) if ks != "numeric" else np.array([MISSING]):
        sel = lab == lv
        n_in = int(sel.sum())
        if 0 < n_in < len(sel) and not e[sel].any():
            expected = n_in * float(e[~sel].mean())
            if expected >= min_expected:
                out.append(Zero(t, name, s, "level", level=str(lv), expected=expected))
    if ks == "numeric":
        x = cols.numbers(s)
        fin = np.isfinite(x)
        if (fin & e).any():
            rate = float(e[fin].mean())
            lo, hi = x[fin & e].min(), x[fin & e].max()
            for kind, bound, sel in (("below", lo, fin & (x < lo)), ("above", hi, fin & (x > hi))):
                if sel.sum() * rate >= min_expected:
                    z = Zero(t, name, s, kind, bound=float(bound), expected=sel.sum() * rate)
                    out.append(z)
    return out


def violations(frame: pd.DataFrame, zeros: Sequence[Zero], kinds: Mapping[str, str]) -> np.ndarray:
    """Rows of ``frame`` that break each zero."""
    cols = _Columns(frame)
    return np.array([int(cols.broken(z, kinds).sum()) for z in zeros], dtype=np.int64)


def violating_rows(frame: pd.DataFrame, zeros: Sequence[Zero], kinds: Mapping[str, str]) -> int:
    """Rows of ``frame`` that break at least one of ``zeros``."""
    cols, bad = _Columns(frame), np.zeros(len(frame), dtype=bool)
    for z in zeros:
        bad |= cols.broken(z, kinds)
    return int(bad.sum())


# ------------------------------------------------------------------------------ relations, spikes
@dataclass(frozen=True)
class Relation:
    """``target`` is a function of ``source``: source label -> target label."""

    source: str
    target: str
    mapping: tuple[tuple[str, str], ...]

    def describe(self) -> str:
        return f"{self.target} = f({self.source}) ({len(self.mapping)} source values)"


def find_relations(
    real: pd.DataFrame, columns: Sequence[str], max_levels: int = 100, min_per_level: float = 3.0
) -> list[Relation]:
    """Exact functional relations target = f(source) among ``columns`` in ``real``: the source
    has 2..max_levels values and at least ``min_per_level`` rows per value on average, and the
    target is not constant."""
    labels = {c: _labels(real[c]).astype(str) for c in columns}
    out = []
    for s in columns:
        ls, _ = np.unique(labels[s], return_counts=True)
        if not 2 <= ls.size <= max_levels or len(real) < min_per_level * ls.size:
            continue
        for t in columns:
            if t == s or np.unique(labels[t]).size < 2:
                continue
            pairs = pd.DataFrame({"s": labels[s], "t": labels[t]}).drop_duplicates()
            if len(pairs) == ls.size:
                out.append(Relation(s, t, tuple(map(tuple, pairs.sort_values("s").to_numpy()))))
    return out


def relation_share(frame: pd.DataFrame, rel: Relation) -> float:
    """Share of rows whose (source, target) pair is one the relation's map holds."""
    mapping = dict(rel.mapping)
    s, t = _labels(frame[rel.source]).astype(str), _labels(frame[rel.target]).astype(str)
    expected = pd.Series(s).map(mapping).to_numpy()
    return float(np.mean(expected == t)) if len(t) else float("nan")


def find_spikes(
    real: pd.DataFrame, kinds: Mapping[str, str], min_share: float = 0.05, per_column: int = 5
) -> list[tuple[str, float, float]]:
    """(column, value, share of answers) for values of numeric columns held by at least
    ``min_share`` of the non-missing answers, the largest ``per_column`` per column."""
    out = []
    for c, k in kinds.items():
        if k != "numeric":
            continue
        x = _numbers(real[c])
        x = x[np.isfinite(x)]
        if not x.size:
            continue
        vals, cnt = np.unique(x + 0.0, return_counts=True)  # + 0.0 merges -0.0 into 0.0
        order = np.argsort(-cnt, kind="stable")[:per_column]
        out += [(c, float(vals[i]), cnt[i] / x.size) for i in order if cnt[i] / x.size >= min_share]
    return out


def spike_share(frame: pd.DataFrame, col: str, value: float) -> float:
    x = _numbers(frame[col])
    x = x[np.isfinite(x)]
    return float(np.mean(x == value)) if x.size else float("nan")


# ------------------------------------------------------------------------------ regression
def ols(
    frame: pd.DataFrame, y: str, terms: Mapping[str, Callable[[pd.DataFrame], np.ndarray]]
) -> pd.DataFrame:
    """OLS of column ``y`` on the named terms (functions of the frame) with an intercept, on
    complete rows: coefficient, classical SE and 95% interval per term."""
    x = np.column_stack(
        [np.ones(len(frame))] + [np.asarray(f(frame), float) for f in terms.values()]
    )
    yy = _numbers(frame[y])
    ok = np.isfinite(yy) & np.all(np.isfinite(x), axis=1)
    x, yy = x[ok], yy[ok]
    xtx_inv = np.linalg.pinv(x.T @ x)
    beta = xtx_inv @ x.T @ yy
    resid = yy - x @ beta
    dof = max(len(yy) - x.shape[1], 1)
    se = np.sqrt(np.diag(xtx_inv) * float(resid @ resid) / dof)
    q = float(stats.t.ppf(0.975, dof))
    names = ["(intercept)", *terms]
    return pd.DataFrame(
        {"coef": beta, "se": se, "lo": beta - q * se, "hi": beta + q * se}, index=names
    )


def regression_check(
    real: pd.DataFrame,
    candidates: Mapping[str, pd.DataFrame],
    y: str,
    terms: Mapping[str, Callable[[pd.DataFrame], np.ndarray]],
    transform: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
) -> pd.DataFrame:
    """Per slope: the real coefficient, and per candidate its coefficient, whether the sign
    agrees and the CI overlap with the real interval."""
    prep = transform or (lambda f: f)
    base = ols(prep(real), y, terms).iloc[1:]
    out = base[["coef", "lo", "hi"]].rename(columns=lambda c: f"real_{c}")
    for name, frame in candidates.items():
        fit = ols(prep(frame), y, terms).iloc[1:]
        out[name] = fit["coef"]
        out[f"{name}_same_sign"] = np.sign(fit["coef"]) == np.sign(base["coef"])
        out[f"{name}_overlap"] = [
            ci_overlap(b.lo, b.hi, f.lo, f.hi) for b, f in zip(base.itertuples(), fit.itertuples())
        ]
    return out
