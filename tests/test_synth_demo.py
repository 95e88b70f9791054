"""The synthesizer on the demo world against its known truth (scripts/eval/eval_synth.py).

Sparse cells x waves x indicators with non-respondents (census cells, where the direct
estimate is the truth, are not scored). Errors are pooled over indicators after dividing
by each indicator's spread of true values (the same divisor for every method).

Reference estimators come from the demo's true model (scripts/demo/demo_oracle.py): the oracle
floor (the model's exact conditional expectation, which no synthetic-only estimate beats
on average) and a perfect synthesizer (m fresh draws of every unit from the true model).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts" / "eval"))

import eval_synth

from surveysynth.synthesis.evaluate import ALL, ALL_MINORITY

M_DEFAULT, M_LARGE = 5, 20


@pytest.fixture(scope="module")
def data() -> dict:
    return eval_synth.load_demo()


@pytest.fixture(scope="module")
def reference(data) -> dict[int, dict]:
    first = eval_synth.oracle_estimates(100, data, M_DEFAULT)
    large = eval_synth.oracle_estimates(100, data, M_LARGE, floor=first["oracle"])
    return {M_DEFAULT: first, M_LARGE: large}


@pytest.fixture(scope="module")
def result(data, reference) -> dict:
    """The project default: records for the non-respondents of sparse and empty cells."""
    return eval_synth.run(eval_synth.demo_config(), data, reference[M_DEFAULT])


@pytest.fixture(scope="module")
def synthetic_only(data, reference) -> dict[int, dict]:
    """A record for every frame unit of a sparse cell: synthetic records alone stand for it."""
    return {
        m: eval_synth.run(eval_synth.demo_config(augment_units="all", m=m), data, reference[m])
        for m in (M_DEFAULT, M_LARGE)
    }


def _all(res: dict):
    return res["by_indicator"].set_index("indicator").loc[ALL]


def test_augmented_sparse_cells_beat_direct_estimates(result):
    t = result["by_indicator"].set_index("indicator")
    print("\n" + result["by_indicator"].to_string(index=False))
    # augmented microdata (respondents + synthetic records for the non-respondents)
    assert t.loc[ALL, "ratio_augmented"] <= 0.7
    # synthetic records alone, where they stand for most of the cell
    assert t.loc[ALL_MINORITY, "ratio_synth"] <= 0.7
    # and no indicator gets worse with augmentation
    per = t.drop(index=[ALL, ALL_MINORITY])
    assert (per["ratio_augmented"] < 1.0).all(), per["ratio_augmented"]


def test_oracle_references_agree_with_theory(synthetic_only):
    """The perfect synthesizer's error is the oracle floor inflated by the draws' own noise,
    about floor * sqrt(1 + 1/m): the harness measures what it claims to."""
    for m, res in synthetic_only.items():
        row = _all(res)
        theory = row["ratio_oracle"] * np.sqrt(1 + 1 / m)
        assert abs(row["ratio_perfect"] / theory - 1) < 0.03, (m, row.to_dict())
        assert row["ratio_oracle"] < row["ratio_perfect"]


def test_synthetic_only_estimates_near_the_perfect_synthesizer(synthetic_only):
    """Synthetic records alone: within 6% of a synthesizer that knew the true model, at the
    default m and at a large m; at m = 20 below 0.7x the direct RMSE."""
    for m, res in synthetic_only.items():
        row = _all(res)
        print(
            f"\nm={m}: synthetic only {row['ratio_synth']:.3f}, perfect "
            f"{row['ratio_perfect']:.3f}, oracle floor {row['ratio_oracle']:.3f}"
        )
        assert row["ratio_synth"] <= 1.06 * row["ratio_perfect"], (m, row.to_dict())
        assert row["ratio_synth"] < 1.0
    assert _all(synthetic_only[M_LARGE])["ratio_synth"] <= 0.7
    assert (
        _all(synthetic_only[M_LARGE])["ratio_synth"]
        < _all(synthetic_only[M_DEFAULT])["ratio_synth"]
    )


def test_synthetic_only_wins_where_the_cell_is_thin(synthetic_only):
    """Where respondents are at most a quarter of the cell, synthetic records alone cut the
    direct estimate's RMSE by at least 40%; the edge shrinks as respondents fill the cell."""
    f = synthetic_only[M_DEFAULT]["by_fraction"].set_index("indicator")["ratio_synth"]
    print("\n" + f.to_string())
    assert f.loc["n/N in (0.0, 0.1]"] <= 0.6
    assert f.loc["n/N in (0.1, 0.25]"] <= 0.6
    assert f.is_monotonic_increasing


def test_every_empty_cell_gets_an_estimate(result):
    e = result["empty"]
    assert e.attrs["n_empty_cell_waves"] > 0
    assert e.attrs["n_empty_with_estimate"] == e.attrs["n_empty_cell_waves"]
    assert (e["coverage"] == 1.0).all()
    assert np.isfinite(e["rmse_synth"]).all()


def test_demo_synthetic_rows_meet_every_rule(result, synthetic_only):
    for res in (result, *synthetic_only.values()):
        assert res["n_synthetic"] > 0
        assert res["violations"] == 0
