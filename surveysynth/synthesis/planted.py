"""Planted survey worlds with known structure, for tests and benchmarks of the synthesizer.

``planted_survey`` builds a frame (every population unit, with a register auxiliary), a
stratified sample of respondents per cell x wave (sizes as asked), the support map and a
matching :class:`SynthConfig`. Outcomes: a 3-level status (non-trading units have zero
turnover: a business rule), an ordinal change, a zero-inflated log-normal turnover tied to
the register value, an integer employee count and a 0/1 flag. Cell effects include a
region x size interaction. Everything is vectorised and seeded.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from surveysynth.contract.config import SynthConfig
from surveysynth.contract.inputs import make_cell_id, support_table

STATUS = ("trading", "paused", "closed")
CHANGE = ("down", "same", "up")


def planted_config(**overrides) -> SynthConfig:
    vars_ = {
        "ss_unit_id": "unit",
        "ss_wave": "period",
        "ss_cell_dims": ["region", "sector", "size"],
        "ss_design_weight": "weight",
        "ss_outcomes": {
            "status": {"type": "categorical", "levels": list(STATUS)},
            "change": {"type": "ordinal", "levels": list(CHANGE)},
            "sales": {"type": "continuous", "min": 0},
            "staff": {"type": "count", "min": 0},
            "flag": {"type": "binary"},
        },
        "ss_frame_auxiliaries": ["reg_sales"],
        "ss_seed": 7,
        # the package's default is 20; these worlds are for tests and benchmarks, run many times
        "ss_synth_m": 5,
        "ss_synth_rules": [
            {
                "name": "idle_no_sales",
                "when": {"status": ["paused", "closed"]},
                "then": {"sales": {"equals": 0}},
            },
            {
                "name": "closed_no_staff",
                "when": {"status": ["closed"]},
                "then": {"staff": {"equals": 0}},
            },
        ],
    }
    return SynthConfig.from_vars(vars_, **overrides)


def planted_survey(
    n_regions: int = 6,
    n_sectors: int = 4,
    sizes: Sequence[str] = ("small", "medium", "large"),
    waves: int = 2,
    n_per_cell: int | np.ndarray = 20,
    N_per_cell: int | np.ndarray = 200,
    seed: int = 0,
    missing_rate: float = 0.05,
    sparse_below_n: int = 10,
    cell_sd: float = 0.3,
) -> dict:
    """A planted world. ``n_per_cell`` / ``N_per_cell`` may be arrays over cells (region-major,
    then sector, then size) to plant cells of chosen sizes; ``cell_sd`` is the sd of the
    cells' own effects beyond main effects and the interaction. Returns a dict with
    ``responses``, ``frame``, ``support``, ``config`` and ``truth`` (cell x wave expected
    values of the planted model)."""
    rng = np.random.default_rng(seed)
    R, S, Z = n_regions, n_sectors, len(sizes)
    C = R * S * Z
    cells = _planted_cells(rng, R, S, Z, cell_sd)
    Nc = np.broadcast_to(np.asarray(N_per_cell), (C,)).astype(np.int64)
    nc = np.minimum(np.broadcast_to(np.asarray(n_per_cell), (C,)).astype(np.int64), Nc)
    frame, unit_cell, reg_sales = _planted_frame(rng, cells, Nc, R, S, sizes)
    units = (unit_cell, rng.normal(0, 0.5, len(frame)), reg_sales)  # each unit's effect
    rows = []
    truth = []
    for t in range(1, waves + 1):
        rows.append(_planted_wave(rng, t, cells, frame, units, Nc, nc, missing_rate))
        truth.append(
            pd.DataFrame(
                {"cell": np.arange(C), "period": t, "distress": cells["distress"] + 0.1 * t}
            )
        )
    responses = pd.concat(rows, ignore_index=True)
    responses["staff"] = responses["staff"].astype("Int64")
    responses["flag"] = responses["flag"].astype("Int64")
    config = planted_config()
    support = support_table(responses, config, frame=frame, sparse_below_n=sparse_below_n)
    responses["cell_id"] = make_cell_id(responses, list(config.cell_dims))
    return {
        "responses": responses,
        "frame": frame,
        "support": support,
        "config": config,
        "truth": pd.concat(truth, ignore_index=True),
    }


def _planted_cells(rng, R: int, S: int, Z: int, cell_sd: float) -> dict[str, np.ndarray]:
    """Each cell's region, sector and size codes (region-major), its distress (main effects + a
    region x size interaction, the last region's smallest size band apart, + the cell's own
    effect) and its size scale."""
    C = R * S * Z
    reg = np.repeat(np.arange(R), S * Z)
    sec = np.tile(np.repeat(np.arange(S), Z), R)
    siz = np.tile(np.arange(Z), R * S)
    eff_r = rng.normal(0, 0.3, R)
    eff_s = rng.normal(0, 0.3, S)
    eff_z = np.linspace(0.4, -0.4, Z)
    inter = np.zeros((R, Z))
    inter[R - 1, 0] = 1.0
    distress = eff_r[reg] + eff_s[sec] + eff_z[siz] + inter[reg, siz] + rng.normal(0, cell_sd, C)
    size_scale = np.linspace(0.0, 3.0, Z)[siz]
    return {"reg": reg, "sec": sec, "siz": siz, "distress": distress, "size_scale": size_scale}


def _planted_frame(rng, cells, Nc, R: int, S: int, sizes):
    """The register: N_c units per cell with their registered sales (rounded); each unit's
    cell, and its sales before rounding (the answers follow those)."""
    unit_cell = np.repeat(np.arange(len(Nc)), Nc)
    n_units = unit_cell.size
    ids = np.char.add("u", np.char.zfill(np.arange(n_units).astype(str), 8)).astype(object)
    reg_sales = np.exp(10.0 + cells["size_scale"][unit_cell] + rng.normal(0, 0.8, n_units))
    frame = pd.DataFrame(
        {
            "unit": ids,
            "region": np.asarray([f"r{i:02d}" for i in range(R)], dtype=object)[
                cells["reg"][unit_cell]
            ],
            "sector": np.asarray([f"s{i:02d}" for i in range(S)], dtype=object)[
                cells["sec"][unit_cell]
            ],
            "size": np.asarray(list(sizes), dtype=object)[cells["siz"][unit_cell]],
            "reg_sales": np.round(reg_sales),
        }
    )
    return frame, unit_cell, reg_sales


def _planted_wave(rng, t, cells, frame, units, Nc, nc, missing_rate) -> pd.DataFrame:
    """One wave's responses: n_c units per cell (a random permutation within each cell), their
    answers from a latent distress, then item missingness at ``missing_rate``."""
    unit_cell, unit_re, reg_sales = units
    n_units = len(frame)
    key = rng.random(n_units)
    order = np.lexsort((key, unit_cell))
    rank = np.empty(n_units, dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(Nc)[:-1]])
    rank[order] = np.arange(n_units) - np.repeat(starts, Nc)
    u = np.flatnonzero(rank < nc[unit_cell])
    c = unit_cell[u]
    size_scale = cells["size_scale"]
    lat = cells["distress"][c] + 0.1 * t + unit_re[u] + rng.normal(0, 0.5, u.size)
    p_closed = 1 / (1 + np.exp(-(lat - 2.5)))
    p_paused = 1 / (1 + np.exp(-(lat - 1.5))) - p_closed
    uu = rng.random(u.size)
    status = np.where(uu < p_closed, 2, np.where(uu < p_closed + np.maximum(p_paused, 0), 1, 0))
    change = np.digitize(-lat + rng.normal(0, 0.7, u.size), [-0.5, 0.5])
    sales = np.exp(np.log(reg_sales[u]) - 2.5 - 0.3 * lat + rng.normal(0, 0.5, u.size))
    sales = np.where(status > 0, 0.0, np.round(sales))
    sales = np.where((status == 0) & (rng.random(u.size) < 0.03), 0.0, sales)
    staff = np.round(np.exp(0.5 + size_scale[c] - 0.2 * lat + rng.normal(0, 0.4, u.size)))
    staff = np.where(status == 2, 0, staff)
    flag = (rng.random(u.size) < 1 / (1 + np.exp(-(lat - 1.0)))).astype(float)
    df = pd.DataFrame(
        {
            "unit": frame["unit"].to_numpy()[u],
            "period": np.int64(t),
            "region": frame["region"].to_numpy()[u],
            "sector": frame["sector"].to_numpy()[u],
            "size": frame["size"].to_numpy()[u],
            "weight": (Nc / np.maximum(nc, 1))[c].astype(float),
            "status": np.asarray(STATUS, dtype=object)[status],
            "change": np.asarray(CHANGE, dtype=object)[change],
            "sales": sales,
            "staff": staff,
            "flag": flag,
        }
    )
    for col in ("status", "change", "sales", "staff", "flag"):
        miss = rng.random(len(df)) < missing_rate
        df.loc[miss, col] = None if df[col].dtype == object else np.nan
    return df
