"""Synthetic numeric values respect the range of each cell dimension's level, not only the range
of all respondents: an empty cell of a level with small values draws no value that level never
comes near (fit._cell_ranges)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from surveysynth.contract.config import SynthConfig
from surveysynth.contract.inputs import support_table
from surveysynth.synthesis.api import synthesize

REGIONS, SECTORS, SIZES = ("r0", "r1", "r2", "r3"), ("s0", "s1", "s2"), ("micro", "large")
EMPTY = ("r3", "s1", "micro")  # no respondent; its frame units are synthesized
MICRO_ONLY = "s2"  # a sector whose respondents are all micro businesses
N_RESP, N_FRAME, N_EMPTY = 8, 30, 400


def _config() -> SynthConfig:
    return SynthConfig.from_vars(
        {
            "ss_unit_id": "unit",
            "ss_wave": "period",
            "ss_cell_dims": ["region", "sector", "size"],
            "ss_design_weight": "weight",
            "ss_outcomes": {"staff": {"type": "continuous", "min": 0}},
            "ss_synth_m": 5,
            "ss_seed": 11,
        }
    )


def _median(region: str, size: str) -> float:
    """Micro businesses have a few staff everywhere; large ones of region r3 are 100x larger."""
    if size == "micro":
        return 4.0
    return 50_000.0 if region == "r3" else 500.0


def _world(seed: int = 3) -> dict:
    rng = np.random.default_rng(seed)
    frame, resp = [], []
    for r in REGIONS:
        for s in SECTORS:
            for z in SIZES:
                n_frame = N_EMPTY if (r, s, z) == EMPTY else N_FRAME
                ids = [f"{r}{s}{z}{i:03d}" for i in range(n_frame)]
                frame.append(pd.DataFrame({"unit": ids, "region": r, "sector": s, "size": z}))
                if (r, s, z) == EMPTY or (s, z) == (MICRO_ONLY, "large"):
                    continue
                y = _median(r, z) * np.exp(rng.normal(0.0, 0.5, N_RESP))
                cell = {"region": r, "sector": s, "size": z, "weight": n_frame / N_RESP}
                resp.append(pd.DataFrame({"unit": ids[:N_RESP], "period": 1, "staff": y, **cell}))
    frame, responses = pd.concat(frame, ignore_index=True), pd.concat(resp, ignore_index=True)
    config = _config()
    support = support_table(responses, config, frame=frame)
    return {"responses": responses, "frame": frame, "support": support, "config": config}


@pytest.fixture(scope="module")
def world() -> dict:
    return _world()


@pytest.fixture(scope="module")
def synthetic(world) -> pd.DataFrame:
    return synthesize(world["responses"], world["frame"], world["support"], world["config"])


def _allowed(values: pd.Series) -> tuple[float, float]:
    """A level's range as documented: its respondents' range widened by 10% of its width."""
    lo, hi = float(values.min()), float(values.max())
    pad = 0.1 * (hi - lo)
    return max(lo - pad, 0.0), hi + pad


def test_empty_cell_stays_within_its_size_levels_range(world, synthetic):
    r = world["responses"]
    lo, hi = _allowed(r.loc[r["size"] == "micro", "staff"])
    region, sector, size = EMPTY
    cell = synthetic[
        (synthetic["region"] == region)
        & (synthetic["sector"] == sector)
        & (synthetic["size"] == size)
    ]["staff"].dropna()
    assert len(cell) >= N_EMPTY  # the empty cell is synthesized (every implicate)
    assert cell.min() >= lo - 1e-9 and cell.max() <= hi + 1e-9, (cell.describe(), lo, hi)


def test_a_level_bounds_only_the_levels_its_respondents_meet(world, synthetic):
    """Sector s2 has only micro respondents: its range does not cap its large businesses (with
    a plain intersection over dimensions they would all sit below the micro range's top)."""
    r = world["responses"]
    _, hi_micro = _allowed(r.loc[r["size"] == "micro", "staff"])
    large = synthetic[(synthetic["sector"] == MICRO_ONLY) & (synthetic["size"] == "large")]
    assert len(large) > 0
    assert large["staff"].median() > 10 * hi_micro
