"""The synthesizer on the demo world against its known truth (scripts/eval_synth.py).

Sparse cells x waves x indicators, on the cells where both a direct and a synthetic
estimate exist. Errors are pooled over indicators after dividing by each indicator's
spread of true values (the same divisor for every method).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import eval_synth

from surveysynth.synth_eval import ALL, ALL_MINORITY


@pytest.fixture(scope="module")
def result() -> dict:
    return eval_synth.run(eval_synth.demo_config(), eval_synth.load_demo())


def test_sparse_cells_beat_direct_estimates(result):
    t = result["by_indicator"].set_index("indicator")
    print("\n" + result["by_indicator"].to_string(index=False))
    # augmented microdata (respondents + synthetic records for the non-respondents)
    assert t.loc[ALL, "ratio_augmented"] <= 0.7
    # synthetic records alone, where they stand for most of the cell
    assert t.loc[ALL_MINORITY, "ratio_synth"] <= 0.7
    # and no indicator gets worse with augmentation
    per = t.drop(index=[ALL, ALL_MINORITY])
    assert (per["ratio_augmented"] < 1.0).all(), per["ratio_augmented"]


def test_every_empty_cell_gets_an_estimate(result):
    e = result["empty"]
    assert e.attrs["n_empty_cell_waves"] > 0
    assert e.attrs["n_empty_with_estimate"] == e.attrs["n_empty_cell_waves"]
    assert (e["coverage"] == 1.0).all()
    assert np.isfinite(e["rmse_synth"]).all()


def test_demo_synthetic_rows_meet_every_rule(result):
    assert result["n_synthetic"] > 0
    assert result["violations"] == 0
