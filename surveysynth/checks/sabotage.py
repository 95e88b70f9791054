"""Planted failures of a synthesizer, as transformations of honest synthetic records (tests,
scripts/eval/eval_gate_false_alarms.py). Each must fail its gate:

- ``copy_training``: the records replaced by verbatim copies of respondents (disclosure);
- ``near_copies``: copies with a tiny relative perturbation of every numeric outcome (disclosure);
- ``shuffle_columns``: every outcome shuffled on its own across all records of an implicate, so
  each marginal survives and every dependence is gone (fidelity);
- ``break_dependence``: every outcome shuffled on its own within each cell x wave, so the cells'
  marginals survive and the dependence between answers, and on the register, is gone (fidelity);
- ``ignore_auxiliaries``: whole answer vectors shuffled among the records of each cell x wave, as
  a synthesizer that draws from the cell's distribution whatever the unit's register values
  (fidelity).

Seeded; the bookkeeping columns (ids, cell, wave, implicate, auxiliaries) are kept.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = ["SABOTAGES", "sabotage"]

SABOTAGES = (
    "copy_training",
    "near_copies",
    "shuffle_columns",
    "break_dependence",
    "ignore_auxiliaries",
)


def _groups(frame: pd.DataFrame, keys: Sequence[str]) -> list[np.ndarray]:
    return list(frame.groupby(list(keys), sort=True, dropna=False).indices.values())


def _shuffle(frame: pd.DataFrame, cols: Sequence[str], groups, rng) -> pd.DataFrame:
    """Each column permuted on its own within each group."""
    out = frame.copy()
    for c in cols:
        vals = frame[c].to_numpy()
        new = vals.copy()
        for idx in groups:
            new[idx] = vals[idx[rng.permutation(len(idx))]]
        out[c] = new
    return out


def _shuffle_together(frame: pd.DataFrame, cols: Sequence[str], groups, rng) -> pd.DataFrame:
    out = frame.copy()
    pos = np.arange(len(frame))
    for idx in groups:
        pos[idx] = idx[rng.permutation(len(idx))]
    for c in cols:
        out[c] = frame[c].to_numpy()[pos]
    return out


def _copies(
    synthetic: pd.DataFrame, responses: pd.DataFrame, outcomes: Sequence[str], rng, noise: float
) -> pd.DataFrame:
    """Each record takes the answers of a respondent of its cell x wave where there is one (else
    of any respondent), with the respondent's cell: a release of real records."""
    out = synthetic.copy()
    pick = rng.integers(0, len(responses), len(out))
    src = responses.iloc[pick].reset_index(drop=True)
    for c in [*outcomes, *[k for k in ("cell_id",) if k in src.columns and k in out.columns]]:
        out[c] = src[c].to_numpy()
    for c in synthetic.columns:
        if c in src.columns and c not in ("unit_id", "implicate", "wave") and c not in outcomes:
            out[c] = src[c].to_numpy()
    if noise:
        for c in outcomes:
            x = pd.to_numeric(out[c], errors="coerce")
            if pd.api.types.is_float_dtype(responses[c]) and x.notna().any():
                out[c] = x * (1 + noise * rng.uniform(-1, 1, len(x))) + noise
    return out


def sabotage(
    how: str,
    synthetic: pd.DataFrame,
    outcomes: Sequence[str],
    keys: Sequence[str] = ("cell_id", "wave"),
    responses: pd.DataFrame | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """``synthetic`` with the planted failure ``how`` (see the module docstring)."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0xBAD]))
    outcomes = list(outcomes)
    if how in ("copy_training", "near_copies"):
        if responses is None or len(responses) == 0:
            raise ValueError(f"sabotage {how!r} needs the responses to copy")
        noise = 1e-4 if how == "near_copies" else 0.0
        return _copies(synthetic, responses, outcomes, rng, noise)
    if how == "shuffle_columns":
        return _shuffle(synthetic, outcomes, _groups(synthetic, ["implicate"]), rng)
    if how == "break_dependence":
        groups = _groups(synthetic, ["implicate", *keys])
        return _shuffle(synthetic, outcomes, groups, rng)
    if how == "ignore_auxiliaries":
        groups = _groups(synthetic, ["implicate", *keys])
        return _shuffle_together(synthetic, outcomes, groups, rng)
    raise ValueError(f"unknown sabotage {how!r}; use one of {SABOTAGES}")
