"""Input checks and canonical forms for the synthesizer (pandas).

In the dbt flow the staging and design layers deliver these tables; the helpers here make
the library usable on its own (tests, scripts, notebooks) and make every error name the
table, column and offending value.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from surveysynth.contract.config import SUPPORT_CLASSES, SynthConfig
from surveysynth.seeding import content_hash, key_str, row_hashes

CELL_ID = "cell_id"

#: provenance columns that close every synthetic record, in output order
PROVENANCE_COLUMNS = (
    "synth_weight",
    "is_synthetic",
    "implicate",
    "synth_run_id",
    "synth_method",
    "support_class",
)


def record_columns(unit_id, wave, cell_dims, outcome_names, auxiliaries) -> list[str]:
    """The columns of a synthetic record, in output order (every backend writes these)."""
    return [
        unit_id,
        wave,
        *cell_dims,
        CELL_ID,
        *outcome_names,
        *auxiliaries,
        *PROVENANCE_COLUMNS,
    ]


SUPPORT_COLUMNS = ("n_respondents", "n_population", "support_class")


class SynthInputError(ValueError):
    """An input table does not meet the contract; the message names table and column."""


def make_cell_id(df: pd.DataFrame, dims: tuple[str, ...] | list[str]) -> pd.Series:
    """Cell id: the dimension values as text joined with '|'."""
    missing = [d for d in dims if d not in df.columns]
    if missing:
        raise SynthInputError(f"cell dimension column(s) {missing} missing from the table")
    out = df[dims[0]].astype(str)
    for d in dims[1:]:
        out = out + "|" + df[d].astype(str)
    return out.rename(CELL_ID)


def take_rows(df: pd.DataFrame, idx: np.ndarray, **extra: object) -> pd.DataFrame:
    """Rows ``idx`` of ``df`` as a new frame with a fresh RangeIndex (one copy per column,
    no consolidation, no chained-assignment flags), plus ``extra`` columns."""
    return take_columns(df, list(df.columns), idx, **extra)


def take_columns(df: pd.DataFrame, columns: list, idx: np.ndarray, **extra: object) -> pd.DataFrame:
    """Rows ``idx`` of the ``columns`` of ``df``, as :func:`take_rows` (only those columns are
    copied)."""
    cols: dict[str, object] = {}
    for c in columns:
        s = df[c]
        if isinstance(s.dtype, pd.api.extensions.ExtensionDtype):
            cols[c] = s.array.take(idx)
        else:
            cols[c] = s.to_numpy()[idx]
    cols.update(extra)
    return pd.DataFrame(cols, copy=False)


def _require(df: pd.DataFrame, cols: list[str], table: str, var_hint: str = "") -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        hint = f" (check {var_hint})" if var_hint else ""
        raise SynthInputError(f"{table} is missing column(s) {missing}{hint}")


def _no_null_dims(df: pd.DataFrame, cols: list[str], table: str) -> None:
    for c in cols:
        n = _n_null(df[c])
        if n:
            raise SynthInputError(
                f"{table}.{c} has {n} null value(s); cell dimensions and the wave must be "
                "complete (staging quarantines such rows)"
            )


def _n_null(s: pd.Series) -> int:
    """Null values in a column (a text-only object column, the usual id or dimension, is
    recognised by one type scan instead of a null test per value)."""
    if s.dtype == object and pd.api.types.infer_dtype(s.to_numpy(), skipna=False) == "string":
        return 0
    return int(s.isna().sum())


@dataclass
class Inputs:
    """Canonical inputs: sorted, typed, with cell ids; ``frame`` may be None."""

    responses: pd.DataFrame
    frame: pd.DataFrame | None
    support: pd.DataFrame
    use_aux: bool
    cell_wave: np.ndarray  # support row of each response row
    hashes: dict[str, str]  # content hashes of the inputs as given


def prepare_inputs(
    responses: pd.DataFrame,
    frame: pd.DataFrame | None,
    support: pd.DataFrame,
    config: SynthConfig,
) -> Inputs:
    """Validate and canonicalise. Responses are put in the order of their row content
    hashes, so sums in the fit do not depend on input row order and outputs are
    bit-identical for the same content (the frame's order never matters)."""
    c = config
    dims = list(c.cell_dims)
    rh = row_hashes(responses)
    hashes = {
        "responses": content_hash(responses, rh),
        "frame": content_hash(frame),
        "support": content_hash(support),
    }
    r = _checked_responses(take_rows(responses, np.argsort(rh, kind="stable")), c, dims)
    f, use_aux = _checked_frame(frame, r, c, dims)
    s = _checked_support(support, c, dims)
    _frame_cells_in_support(f, s, c)
    key = pd.MultiIndex.from_frame(s[[CELL_ID, c.wave]])
    g = key.get_indexer(pd.MultiIndex.from_frame(r[[CELL_ID, c.wave]]))
    if (g < 0).any():
        orphan = r.loc[g < 0, [CELL_ID, c.wave]].drop_duplicates()
        raise SynthInputError(
            f"{len(orphan)} (cell_id, {c.wave}) pair(s) in responses are missing from support, "
            f"e.g. {orphan.iloc[0].tolist()}"
        )
    return Inputs(responses=r, frame=f, support=s, use_aux=use_aux, cell_wave=g, hashes=hashes)


def unit_text(ids: pd.Series) -> pd.Series:
    """Unit ids as text, an integral number written as the integer (1.0 -> '1'): ids read as
    float64 on one side (a column with nulls elsewhere, a CSV) and int64 on the other still join
    (as '1.0' and '1' they did not, and the responses lost their register values unnoticed)."""
    if ids.dtype.kind == "f":
        v = ids.to_numpy(dtype=float)
        if np.isfinite(v).all() and (v == np.floor(v)).all() and (np.abs(v) < 2**53).all():
            return pd.Series(v.astype(np.int64).astype(str), index=ids.index)
        return ids.map(key_str)
    if ids.dtype == object and pd.api.types.infer_dtype(ids, skipna=False) in (
        "floating",
        "mixed-integer-float",
    ):
        return ids.map(key_str)
    return ids.astype(str)


def _checked_responses(r: pd.DataFrame, c: SynthConfig, dims: list[str]) -> pd.DataFrame:
    """The responses' required columns, positive finite weights, no null keys, the cell id and
    no duplicate unit x wave (``r`` is the hash-ordered copy, changed in place)."""
    _require(r, [c.unit_id, c.wave, *dims], "responses", "ss_unit_id / ss_wave / ss_cell_dims")
    _require(r, list(c.outcome_names), "responses", "ss_outcomes")
    if c.weight:
        _require(r, [c.weight], "responses", "ss_design_weight")
        wt = pd.to_numeric(r[c.weight], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        bad = ~np.isfinite(wt) | (wt <= 0)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise SynthInputError(
                f"responses.{c.weight} must be positive and finite; {int(bad.sum())} row(s) are "
                f"not (first: {c.unit_id}={r[c.unit_id].iloc[i]!r}, value={r[c.weight].iloc[i]!r})"
            )
        r[c.weight] = wt
    _no_null_dims(r, [c.unit_id, c.wave, *dims], "responses")
    if CELL_ID not in r.columns:
        r[CELL_ID] = make_cell_id(r, dims)
    r[c.unit_id] = unit_text(r[c.unit_id])
    dup = r.duplicated([c.unit_id, c.wave])
    if dup.any():
        ex = r.loc[dup, [c.unit_id, c.wave]].iloc[0].tolist()
        raise SynthInputError(
            f"responses has {int(dup.sum())} duplicate ({c.unit_id}, {c.wave}) row(s), e.g. {ex}"
        )
    return r


def _checked_frame(frame, r: pd.DataFrame, c: SynthConfig, dims: list[str]):
    """The frame's checks (unique unit ids, no null keys), its cell id in augment mode and its
    auxiliaries as floats, joined onto the responses that lack them (``r`` changed in place);
    returns the frame (None without one) and whether the auxiliaries are used."""
    use_aux = frame is not None and bool(c.auxiliaries)
    if frame is None:
        return None, use_aux
    f = frame.copy(deep=False)  # new columns only; the caller's frame is untouched
    _require(f, [c.unit_id, *dims], "frame", "ss_frame_unit_id / ss_cell_dims")
    _no_null_dims(f, [c.unit_id, *dims], "frame")
    f[c.unit_id] = unit_text(f[c.unit_id])
    units = pd.Index(f[c.unit_id])
    if not units.is_unique:
        ex = f.loc[f[c.unit_id].duplicated(), c.unit_id].iloc[0]
        raise SynthInputError(f"frame.{c.unit_id} is not unique (e.g. {ex!r})")
    if CELL_ID not in f.columns and c.mode == "augment":  # replica never reads frame cells
        f[CELL_ID] = make_cell_id(f, dims)
    if use_aux:
        _require(f, list(c.auxiliaries), "frame", "ss_frame_auxiliaries")
        for a in c.auxiliaries:
            f[a] = pd.to_numeric(f[a], errors="coerce").astype(float)
        missing_aux = [a for a in c.auxiliaries if a not in r.columns]
        if missing_aux:  # join the register values on the unit id
            pos = units.get_indexer(r[c.unit_id])
            for a in missing_aux:
                vals = f[a].to_numpy(dtype=float)
                r[a] = np.where(pos >= 0, vals[np.maximum(pos, 0)], np.nan)
        for a in c.auxiliaries:
            r[a] = pd.to_numeric(r[a], errors="coerce").astype(float)
    if isinstance(f.index, pd.RangeIndex) and f.index.start == 0 and f.index.step == 1:
        return f, use_aux  # numbered already: no copy of every column
    return f.reset_index(drop=True), use_aux


def _frame_cells_in_support(f: pd.DataFrame | None, s: pd.DataFrame, c: SynthConfig) -> None:
    """In augment mode every frame cell must be in the support map: records are planned for
    the frame's units by their cell's support rows, and a cell missing there got none, silently
    (a support built from the responses alone leaves out the empty cells)."""
    if f is None or c.mode != "augment" or CELL_ID not in f.columns:
        return
    missing = pd.Index(f[CELL_ID].unique()).difference(pd.Index(s[CELL_ID].unique()))
    if len(missing):
        n_units = int(f[CELL_ID].isin(missing).sum())
        raise SynthInputError(
            f"{len(missing)} frame cell(s) ({n_units} units) are not in the support map, e.g. "
            f"{missing[0]!r}: build it with support_table(responses, config, frame=frame), or "
            "drop those units from the frame"
        )


def _checked_support(support: pd.DataFrame, c: SynthConfig, dims: list[str]) -> pd.DataFrame:
    """The support map's columns and classes checked, one row per cell x wave, its dimensions
    recovered from the cell id where absent, sorted by cell and wave."""
    s = support.copy(deep=False)
    _require(s, [CELL_ID, c.wave, *SUPPORT_COLUMNS], "support")
    bad = ~s["support_class"].isin(SUPPORT_CLASSES)
    if bad.any():
        raise SynthInputError(
            f"support.support_class has values {sorted(s.loc[bad, 'support_class'].unique())}; "
            f"allowed {SUPPORT_CLASSES}"
        )
    if s.duplicated([CELL_ID, c.wave]).any():
        raise SynthInputError(f"support has duplicate (cell_id, {c.wave}) rows")
    for d in dims:
        if d not in s.columns:  # recover dims from the cell id
            s[d] = s[CELL_ID].str.split("|", regex=False).str[dims.index(d)]
    return s.sort_values([CELL_ID, c.wave], kind="mergesort").reset_index(drop=True)


def support_table(
    responses: pd.DataFrame,
    config: SynthConfig,
    frame: pd.DataFrame | None = None,
    totals: pd.DataFrame | None = None,
    count_column: str = "n_population",
    sparse_below_n: int = 10,
    sparse_below_neff: float = 5.0,
) -> pd.DataFrame:
    """The support map (every cell x wave of the frame or totals, and of the responses):
    n respondents, N population, Kish n_eff, support class. The dbt design layer builds the
    same table in SQL; this is the library's stand-alone version."""
    c = config
    dims = list(c.cell_dims)
    r = responses.copy()
    r[CELL_ID] = make_cell_id(r, dims)
    w = r[c.weight].astype(float) if c.weight else pd.Series(1.0, index=r.index)
    r["_w"], r["_w2"] = w, w * w
    agg = r.groupby([CELL_ID, c.wave], sort=True).agg(
        n_respondents=(c.unit_id, "size"), sum_w=("_w", "sum"), sum_w2=("_w2", "sum")
    )
    agg["n_eff"] = agg["sum_w"] ** 2 / agg["sum_w2"]
    agg = agg.reset_index()
    if frame is not None:
        pop = frame.assign(**{CELL_ID: make_cell_id(frame, dims)}).groupby(CELL_ID).size()
        pop = pop.rename("n_population").reset_index()
    elif totals is not None:
        pop = totals.assign(**{CELL_ID: make_cell_id(totals, dims)})[[CELL_ID, count_column]]
        pop = pop.rename(columns={count_column: "n_population"})
    else:
        pop = pd.DataFrame({CELL_ID: agg[CELL_ID].unique(), "n_population": np.nan})
    waves = pd.DataFrame({c.wave: np.sort(r[c.wave].unique())})
    grid = pd.concat([pop[[CELL_ID]], agg[[CELL_ID]]]).drop_duplicates().merge(waves, how="cross")
    s = grid.merge(pop, on=CELL_ID, how="left").merge(agg, on=[CELL_ID, c.wave], how="left")
    s["n_respondents"] = s["n_respondents"].fillna(0).astype("int64")
    s["n_eff"] = s["n_eff"].fillna(0.0)
    s["support_class"] = np.where(
        s["n_respondents"] == 0,
        "empty",
        np.where(
            (s["n_respondents"] < sparse_below_n) | (s["n_eff"] < sparse_below_neff),
            "sparse",
            "supported",
        ),
    )
    sources = [r[[CELL_ID, *dims]]]
    if frame is not None:
        sources.append(frame.assign(**{CELL_ID: make_cell_id(frame, dims)})[[CELL_ID, *dims]])
    if totals is not None:
        sources.append(totals.assign(**{CELL_ID: make_cell_id(totals, dims)})[[CELL_ID, *dims]])
    lookup = pd.concat(sources).drop_duplicates(CELL_ID)
    s = s.merge(lookup, on=CELL_ID, how="left")
    cols = [CELL_ID, *dims, c.wave, "n_respondents", "n_population", "n_eff", "support_class"]
    return s[cols].sort_values([CELL_ID, c.wave]).reset_index(drop=True)
