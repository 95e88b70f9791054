"""The within-cell dependence family of the fidelity gate (surveysynth.checks.within_cell): its
false-alarm rate when respondents and records come from the same process, and its power when the
records lose the within-cell relation of an answer to the register or to another answer."""

from __future__ import annotations

import numpy as np
import pandas as pd

from surveysynth.checks.reference import DEFAULT_TOLERANCES, max_t_gate, summarise
from surveysynth.checks.within_cell import within_cell_statistics

OUTCOMES = {"y": {"type": "continuous"}, "flag": {"type": "binary"}}


def _units(effect: np.ndarray, per_cell: int, rng, blind: bool = False) -> pd.DataFrame:
    """``per_cell`` units in each cell (``effect``: the cells' effects). Within a cell, y follows
    the log of the register value x and flag follows y. ``blind``: y drawn from its cell's
    distribution whatever the unit's x (the same cell mean and spread), flag still following y."""
    cell = np.repeat(np.arange(len(effect)), per_cell)
    e = effect[cell]
    x = np.exp(rng.normal(e, 0.5))
    noise = rng.normal(0, 1, len(cell))
    y = 1.8 * e + (
        np.sqrt(0.4**2 + 0.8**2 * 0.25) * noise if blind else 0.8 * (np.log(x) - e) + 0.4 * noise
    )
    flag = (y + rng.normal(0, 0.7, len(cell)) > 1.8 * e).astype(int)
    return pd.DataFrame(
        {
            "cell_id": cell.astype(str),
            "wave": 1,
            "unit_id": [f"u{i}" for i in range(len(cell))],
            "x": x,
            "y": y,
            "flag": flag,
        }
    )


def _p_value(seed: int, blind: bool, cells: int = 200, respondents: int = 150) -> float:
    """A thin survey: one respondent in each of ``respondents`` cells, 12 records per cell standing
    for the cells' other units (the same cell effects)."""
    rng = np.random.default_rng(seed)
    effect = rng.normal(0, 1, cells)
    real = _units(effect, 1, rng).iloc[:respondents].reset_index(drop=True)
    syn = _units(effect, 12, rng, blind)
    wc = within_cell_statistics(real, syn, OUTCOMES, ["x"], ["cell_id", "wave"], "x", 999, seed)
    _, p, _ = max_t_gate(summarise(wc.statistics), DEFAULT_TOLERANCES, 0.005)
    return p


def test_records_from_the_same_process_rarely_fail():
    ps = np.array([_p_value(s, blind=False) for s in range(40)])
    # stated level 0.005 (half of ss_gate_alpha 0.01); 40 honest replicates: none may fail at it
    # and at most 5 (binomial 95% bound for a true 5%) even at 0.05
    assert (ps <= 0.005).sum() == 0, ps
    assert (ps <= 0.05).sum() <= 5, ps


def test_records_blind_to_the_register_within_the_cell_fail():
    ps = np.array([_p_value(s, blind=True) for s in range(10)])
    assert (ps <= 0.005).all(), ps
