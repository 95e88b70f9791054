"""Business rules: declared edit rules plus the outcomes' ranges, types and levels.

Synthetic rows meet every rule by construction: the synthesizer samples, then
:func:`enforce` applies the declared rules (to a fixed point) and the ranges. The
synthesizer also fits a rule's target on the rows where no rule fires, so forcing the
rule afterwards does not bias the target's distribution (see ``synthesis.fit``).
:func:`violations` is the independent check used by tests and gates.

Rule grammar (list entries of the ``ss_synth_rules`` var)::

    {name: not_trading_no_turnover,
     when: {trading_status: [paused, closed]},
     then: {turnover: {equals: 0}}}

``when`` holds when every listed column takes one of its listed values (a null never
matches). ``then`` is ``{equals: v}``, ``{in: [..]}`` or ``{is_null: true}``; a null
target fails ``equals`` and ``in``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from surveysynth.contract.config import OutcomeSpec, Rule, parse_outcomes, parse_rules

RulesLike = Sequence[Rule] | Sequence[Mapping[str, Any]]
OutcomesLike = Sequence[OutcomeSpec] | Mapping[str, Any]


def _as_rules(rules: RulesLike | None) -> tuple[Rule, ...]:
    if not rules:
        return ()
    if all(isinstance(r, Rule) for r in rules):
        return tuple(rules)  # type: ignore[arg-type]
    return parse_rules(list(rules))


def _as_outcomes(outcomes: OutcomesLike | None) -> tuple[OutcomeSpec, ...]:
    if not outcomes:
        return ()
    if isinstance(outcomes, Mapping):
        return parse_outcomes(outcomes)
    return tuple(outcomes)  # type: ignore[arg-type]


def isin(s: pd.Series, values: Sequence[Any]) -> np.ndarray:
    """Non-null entries of ``s`` equal to one of ``values`` (numbers compare as numbers).
    Short lists use elementwise comparisons, which beat hashing on millions of rows."""
    vals = list(values)
    if len(vals) > 8:
        return (s.isin(vals) & s.notna()).to_numpy(dtype=bool)
    out = np.zeros(len(s), dtype=bool)
    if pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype):
        x = s.to_numpy(dtype=float, na_value=np.nan)
        for v in vals:
            if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool):
                out |= x == float(v)
        return out
    arr = s.to_numpy(dtype=object)
    for v in vals:
        out |= np.asarray(arr == v, dtype=bool)
    return out


def when_mask(df: pd.DataFrame, rule: Rule) -> np.ndarray:
    """Rows where the rule's condition holds."""
    mask = np.ones(len(df), dtype=bool)
    for col, values in rule.when:
        if col not in df.columns:
            raise KeyError(f"rule '{rule.name}': when-column '{col}' is not in the table")
        mask &= isin(df[col], values)
    return mask


def _consequence_fails(s: pd.Series, op: str, value: Any) -> np.ndarray:
    if op == "is_null":
        return s.notna().to_numpy(dtype=bool)
    allowed = [value] if op == "equals" else list(value)
    return ~isin(s, allowed)


def violations(
    df: pd.DataFrame, rules: RulesLike | None, outcomes: OutcomesLike | None = None
) -> pd.DataFrame:
    """Every failing (row, check): columns ``row`` (positional), ``rule``, ``column``,
    ``value``. Checks: declared rules, then for each outcome its range (min/max),
    integrality (counts), 0/1 (binary) and levels (categorical/ordinal). Empty when clean."""
    parts: list[pd.DataFrame] = []

    def add(name: str, col: str, bad: np.ndarray) -> None:
        idx = np.flatnonzero(bad)
        if idx.size:
            parts.append(
                pd.DataFrame(
                    {
                        "row": idx,
                        "rule": name,
                        "column": col,
                        "value": df[col].iloc[idx].astype(object).to_numpy(),
                    }
                )
            )

    for rule in _as_rules(rules):
        mask = when_mask(df, rule)
        for t in rule.then:
            if t.column not in df.columns:
                raise KeyError(f"rule '{rule.name}': then-column '{t.column}' is not in the table")
            add(rule.name, t.column, mask & _consequence_fails(df[t.column], t.op, t.value))

    for o in _as_outcomes(outcomes):
        if o.name not in df.columns:
            raise KeyError(f"outcome '{o.name}' is not in the table")
        s = df[o.name]
        present = s.notna().to_numpy(dtype=bool)
        if o.is_numeric:
            x = pd.to_numeric(s, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
            add(f"{o.name}:numeric", o.name, present & ~np.isfinite(x))
            if o.lower is not None:
                add(f"{o.name}:min", o.name, present & (x < o.lower))
            if o.max is not None:
                add(f"{o.name}:max", o.name, present & (x > o.max))
            if o.type == "count":
                add(f"{o.name}:integer", o.name, present & np.isfinite(x) & (x != np.round(x)))
        else:
            add(f"{o.name}:levels", o.name, present & ~isin(s, o.category_levels))
    if not parts:
        return pd.DataFrame(
            {
                "row": pd.Series(dtype="int64"),
                "rule": pd.Series(dtype=object),
                "column": pd.Series(dtype=object),
                "value": pd.Series(dtype=object),
            }
        )
    return pd.concat(parts, ignore_index=True)


def _set(df: pd.DataFrame, col: str, mask: np.ndarray, value: Any) -> None:
    if not mask.any():
        return
    s = df[col]
    if value is None:
        if isinstance(s.dtype, pd.api.extensions.ExtensionDtype) or s.dtype == object:
            df.loc[mask, col] = pd.NA if s.dtype != object else None
        else:
            df.loc[mask, col] = np.nan
    else:
        df.loc[mask, col] = value


def _nearest_allowed(s: pd.Series, o: OutcomeSpec | None, allowed: Sequence[Any]) -> pd.Series:
    """Map values outside ``allowed`` to the nearest allowed one: by level order for
    categorical/ordinal outcomes (ties to the lower level), by value for numbers."""
    if o is not None and o.type in ("categorical", "ordinal"):
        order = {lv: i for i, lv in enumerate(o.category_levels)}
        pos = np.array([order[a] for a in allowed], dtype=float)
        cur = s.map(order).to_numpy(dtype=float, na_value=np.nan)
        best = np.argmin(np.abs(cur[:, None] - pos[None, :]) + 1e-9 * pos[None, :], axis=1)
        fixed = np.asarray(allowed, dtype=object)[best]
    else:
        vals = np.asarray(allowed, dtype=float)
        cur = pd.to_numeric(s, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        best = np.argmin(np.abs(cur[:, None] - vals[None, :]) + 1e-12 * vals[None, :], axis=1)
        fixed = vals[best]
    out = s.copy()
    nulls = s.isna().to_numpy()
    fill = fixed.copy()
    if nulls.any():  # a null target takes the first allowed value
        fill[nulls] = allowed[0]
    out[:] = fill
    return out


def apply_rules(
    df: pd.DataFrame, rules: RulesLike | None, outcomes: OutcomesLike | None = None
) -> pd.DataFrame:
    """Apply the declared rules in place until none fires a change (at most
    ``len(rules) + 1`` passes; rules that keep undoing each other raise)."""
    _apply_rules(df, rules, outcomes)
    return df


def _apply_rules(df: pd.DataFrame, rules: RulesLike | None, outcomes: OutcomesLike | None) -> bool:
    """``apply_rules``, telling whether any rule changed a value."""
    rs = _as_rules(rules)
    if not rs:
        return False
    by_name = {o.name: o for o in _as_outcomes(outcomes)}
    for rnd in range(len(rs) + 1):
        changed = False
        for rule in rs:
            mask = when_mask(df, rule)
            if not mask.any():
                continue
            for t in rule.then:
                bad = mask & _consequence_fails(df[t.column], t.op, t.value)
                if not bad.any():
                    continue
                changed = True
                if t.op == "equals":
                    _set(df, t.column, bad, t.value)
                elif t.op == "is_null":
                    _set(df, t.column, bad, None)
                else:
                    fixed = _nearest_allowed(df.loc[bad, t.column], by_name.get(t.column), t.value)
                    df.loc[bad, t.column] = fixed.to_numpy()
        if not changed:
            return rnd > 0
    left = violations(df, rs)
    raise ValueError(
        "business rules conflict (applying them does not converge): "
        f"{sorted(set(left['rule']))}; check ss_synth_rules for rules that undo each other"
    )


def enforce_ranges(df: pd.DataFrame, outcomes: OutcomesLike) -> pd.DataFrame:
    """Clip numeric outcomes to [min, max], round counts, null out-of-level categories.
    Counts and binaries come out as nullable Int64."""
    for o in _as_outcomes(outcomes):
        s = df[o.name]
        if o.is_numeric:
            x = pd.to_numeric(s, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
            if o.type == "count":
                x = np.round(x)
            lo = -np.inf if o.lower is None else o.lower
            hi = np.inf if o.max is None else o.max
            x = np.clip(x, lo, hi)
            if o.type == "count":
                nan = np.isnan(x)
                df[o.name] = pd.arrays.IntegerArray(np.where(nan, 0, x).astype(np.int64), nan)
            else:
                df[o.name] = x
        elif o.type == "binary":
            x = pd.to_numeric(s, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
            ok = (x == 0.0) | (x == 1.0)
            df[o.name] = pd.arrays.IntegerArray(np.where(ok, x, 0).astype(np.int64), ~ok)
        else:
            out = ~isin(s, o.category_levels)  # the null test only where a value is no level
            if out.any() and (bad := out & s.notna().to_numpy(dtype=bool)).any():
                df.loc[bad, o.name] = None
    return df


def enforce(df: pd.DataFrame, rules: RulesLike | None, outcomes: OutcomesLike) -> pd.DataFrame:
    """Ranges, then rules, then ranges again where a rule changed a value (rule values are
    validated to lie in range; the ranges hold already where no rule fired)."""
    enforce_ranges(df, outcomes)
    if _apply_rules(df, rules, outcomes):
        enforce_ranges(df, outcomes)
    return df
