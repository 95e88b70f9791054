"""PLAN step: which records to generate, one row per record x implicate.

Augment mode: the non-responding frame units (or all units, ``ss_synth_augment_units: all``)
of sparse and empty cells x waves, capped per cell by a seeded sample without replacement
(``synth_weight`` = units / records); with population totals only, records with synthetic
ids. Replica mode: as many records per cell x wave as it has respondents, with their design
weights and register auxiliaries, under synthetic ids. Each record is repeated for
implicates 1..m (same record, own random stream).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from surveysynth.contract.config import SynthConfig
from surveysynth.contract.inputs import (
    CELL_ID,
    Inputs,
    SynthInputError,
    take_columns,
    take_rows,
)
from surveysynth.seeding import key_str, stable_int_hash, unit_keys

IMPLICATE = "implicate"


def synthetic_ids(
    cell_ids: pd.Series, waves: pd.Series, k: np.ndarray, groups: np.ndarray | None = None
) -> np.ndarray:
    """Deterministic ids of records that stand for no frame unit: syn-<cell hash>-<wave>-<k>.
    ``groups`` (optional) labels each row's cell x wave with an integer, saving the grouping
    of the text columns."""
    if groups is None:
        cw = pd.DataFrame({"c": cell_ids.to_numpy(), "w": waves.to_numpy()})
        groups = cw.groupby(["c", "w"], sort=False).ngroup().to_numpy()
    _, first, inv = np.unique(groups, return_index=True, return_inverse=True)
    c, w = cell_ids.to_numpy()[first], waves.to_numpy()[first]
    pre = np.array(
        [f"syn-{stable_int_hash(ci):016x}"[:16] + f"-{key_str(wi)}-" for ci, wi in zip(c, w)],
        dtype=object,
    )
    k = np.asarray(k, dtype=np.int64)
    if not len(k):
        return np.array([], dtype=object)
    suffix = np.array([f"{j:07d}" for j in range(int(k.max()) + 1)], dtype=object)
    return pre[inv.reshape(-1)] + suffix[k]


def build_plan(inputs: Inputs, config: SynthConfig) -> pd.DataFrame:
    """Which records to generate: one row per record (before implicates), with unit id,
    wave, dims, cell id, auxiliaries, synth_weight and support class."""
    c = config
    s, r, f = inputs.support, inputs.responses, inputs.frame
    dims = list(c.cell_dims)
    aux = [a for a in c.auxiliaries]
    if c.mode == "replica":
        # responses are in content-hash order; a stable sort by support row keeps that
        # order within each cell x wave, so record k of a cell is reproducible and says
        # nothing about the real unit ids
        order = np.argsort(inputs.cell_wave, kind="stable")
        g = inputs.cell_wave[order]
        keep = [c.unit_id, c.wave, CELL_ID, *dims, *[a for a in aux if a in r.columns]]
        rows = take_columns(r, keep, order)
        if c.weight:
            rows["synth_weight"] = r[c.weight].to_numpy(dtype=float)[order]
        else:
            npop = pd.to_numeric(s["n_population"], errors="coerce").to_numpy(dtype=float)
            nres = s["n_respondents"].to_numpy(dtype=float)
            with np.errstate(divide="ignore", invalid="ignore"):
                rows["synth_weight"] = (npop / nres)[g]  # g only points at cells with n > 0
        rows["support_class"] = s["support_class"].to_numpy(dtype=object)[g]
        starts = np.ones(len(g), dtype=bool)
        starts[1:] = g[1:] != g[:-1]
        first = np.maximum.accumulate(np.where(starts, np.arange(len(g)), 0))
        k = np.arange(len(g)) - first
        rows[c.unit_id] = synthetic_ids(rows[CELL_ID], rows[c.wave], k, groups=g)
        return _finish(rows, c, aux)

    targets = s.loc[s["support_class"].isin(c.augment_classes), [CELL_ID, c.wave, "support_class"]]
    if f is not None:
        fu = f[[c.unit_id, CELL_ID, *dims, *[a for a in aux if a in f.columns]]]
        rows = fu.merge(targets, on=CELL_ID, how="inner")
        resp = r[[c.unit_id, c.wave]].assign(_resp=True)
        rows = rows.merge(resp, on=[c.unit_id, c.wave], how="left")
        if c.augment_units == "nonrespondents":
            # the respondents represent themselves; records stand in for the other units
            rows = rows[rows["_resp"].isna()]
        rows = rows.drop(columns="_resp")
        rows = rows.assign(_key=unit_keys(c.seed, rows[c.unit_id], rows[c.wave]))
        rows = rows.sort_values([CELL_ID, c.wave, "_key"], kind="mergesort")
        rank = rows.groupby([CELL_ID, c.wave], sort=False).cumcount().to_numpy()
        n_non = rows.groupby([CELL_ID, c.wave], sort=False)[c.unit_id].transform("size").to_numpy()
        keep = rank < c.max_records_per_cell
        kept = np.minimum(n_non, c.max_records_per_cell)
        rows = rows.assign(synth_weight=n_non / kept)[keep].drop(columns="_key")
        rows = rows.sort_values([CELL_ID, c.wave, c.unit_id], kind="mergesort")
        return _finish(rows, c, aux)

    # totals only: records with synthetic ids, no auxiliaries
    t = s.loc[s["support_class"].isin(c.augment_classes)].copy()
    npop = pd.to_numeric(t["n_population"], errors="coerce")
    if npop.isna().any():
        bad = t.loc[npop.isna(), CELL_ID].iloc[0]
        raise SynthInputError(
            f"frame is None and support.n_population is null for cell '{bad}'; "
            "set ss_population_totals (with ss_population_count) or give a frame"
        )
    n_resp = (
        t["n_respondents"].to_numpy(dtype=float) if c.augment_units == "nonrespondents" else 0.0
    )
    n_non = np.maximum(npop.to_numpy(dtype=float) - n_resp, 0.0)
    n_rec = np.minimum(np.ceil(n_non), c.max_records_per_cell).astype(np.int64)
    t = t.assign(_n_non=n_non, _n_rec=n_rec)[n_rec > 0]
    rep = t.loc[t.index.repeat(t["_n_rec"])].reset_index(drop=True)
    k = rep.groupby([CELL_ID, c.wave], sort=False).cumcount().to_numpy()
    rep[c.unit_id] = synthetic_ids(rep[CELL_ID], rep[c.wave], k)
    rep["synth_weight"] = rep["_n_non"] / rep["_n_rec"]
    return _finish(rep, c, aux)


def _finish(rows: pd.DataFrame, c: SynthConfig, aux: list[str]) -> pd.DataFrame:
    for a in aux:
        if a not in rows.columns:
            rows[a] = np.nan
        rows[a] = pd.to_numeric(rows[a], errors="coerce").astype(float)
    cols = [c.unit_id, c.wave, *c.cell_dims, CELL_ID, *aux, "synth_weight", "support_class"]
    return pd.DataFrame({k: rows[k].to_numpy() for k in cols}, copy=False)


def with_implicates(plan: pd.DataFrame, m: int, wave: str) -> pd.DataFrame:
    """The plan repeated for implicates 1..m (same records, own random streams), in
    (cell, wave, implicate, unit) order when the plan is in (cell, wave, unit) order."""
    n = len(plan)
    if n == 0:
        return plan.assign(**{IMPLICATE: np.zeros(0, dtype=np.int64)})
    if m == 1:  # the plan itself: its columns shared, not copied
        out = plan.copy(deep=False)
        out.index = pd.RangeIndex(n)
        out[IMPLICATE] = np.ones(n, dtype=np.int64)
        return out
    cell = plan[CELL_ID].to_numpy()
    wv = plan[wave].to_numpy()
    start = np.ones(n, dtype=bool)
    start[1:] = (cell[1:] != cell[:-1]) | (wv[1:] != wv[:-1])
    starts = np.flatnonzero(start)
    lens = np.diff(np.append(starts, n))
    block = lens * m
    pos = np.arange(n * m) - np.repeat(np.cumsum(block) - block, block)
    L = np.repeat(lens, block)
    idx = np.repeat(starts, block) + pos % L
    return take_rows(plan, idx, **{IMPLICATE: (pos // L + 1).astype(np.int64)})
