"""Shared data and builds for the design-layer tests (test_design_*.py import these fixtures).

Demo-like data come from scripts/demo/generate_demo.py at a small size (a few seconds of dbt per
build); planted variants are written next to it. Builds select the design, calibration and
estimation models and their parents only, so the tests do not depend on the synthesis layer.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from harness import DbtResult, demo_vars, generate_demo, run_dbt

DESIGN_SELECT = "+direct_estimates +calibration_margin_check +calibration_convergence"
CAUTIOUS = ["--indirect-selection", "cautious"]

DIMS = ["region", "sector", "size_band"]

# Vars of other layers that name demo columns and are checked when the project is parsed; a
# configuration with other columns sets them to neutral values.
OTHER_LAYERS_NEUTRAL = {"ss_sdc_tables": []}


def build(
    workdir: Path, vars_: dict, command: str = "build", select: str = DESIGN_SELECT
) -> DbtResult:
    """dbt build of the design subgraph (tests whose parents are all selected run too)."""
    return run_dbt(workdir, vars=vars_, command=command, select=select, extra_args=CAUTIOUS)


@pytest.fixture(scope="session")
def demo_data(tmp_path_factory) -> Path:
    """A small demo world: 30,000 businesses, about 1,500 respondents in each of 2 waves."""
    return generate_demo(
        tmp_path_factory.mktemp("design_demo_data"),
        *("--seed", "11", "--frame-size", "30000", "--target-responses-per-wave", "1500"),
        *("--waves", "2"),
    )


@pytest.fixture(scope="session")
def demo_build(demo_data, tmp_path_factory) -> tuple[DbtResult, dict]:
    """The default configuration on the demo world, raking to a tight tolerance (1e-12) so that
    weights can be compared with other implementations that stop on their own rule."""
    work = tmp_path_factory.mktemp("design_demo_build")
    vars_ = demo_vars(demo_data, ss_rake_tol=1e-12, ss_rake_max_iter=200)
    res = build(work, vars_)
    assert res.ok, res.output[-5000:]
    return res, vars_


def frame_counts(frame: pd.DataFrame, dims: list[str]) -> pd.Series:
    key = frame[dims[0]].astype(str)
    for d in dims[1:]:
        key = key + "|" + frame[d].astype(str)
    return key.value_counts()


def margin_arrays(units: pd.DataFrame, frame: pd.DataFrame, margins: list[list[str]]):
    """Category codes of the units and targets (frame counts) of each count margin, as Margin."""
    from design_reference import Margin

    out = []
    for dims in margins:
        key = units[dims[0]].astype(str)
        fkey = frame[dims[0]].astype(str)
        for d in dims[1:]:
            key = key + "|" + units[d].astype(str)
            fkey = fkey + "|" + frame[d].astype(str)
        cats = sorted(set(fkey))
        index = {c: i for i, c in enumerate(cats)}
        codes = key.map(index).to_numpy()
        assert not np.isnan(codes.astype(float)).any(), f"unit category missing from frame: {dims}"
        counts = fkey.value_counts()
        target = np.array([counts[c] for c in cats], dtype=float)
        out.append(Margin(codes=codes.astype(int), target=target))
    return out


def cell_codes(units: pd.DataFrame, dims: list[str]) -> np.ndarray:
    key = units[dims[0]].astype(str)
    for d in dims[1:]:
        key = key + "|" + units[d].astype(str)
    return np.asarray(pd.Categorical(key).codes)


def rel_diff(a, b) -> float:
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-300)))
