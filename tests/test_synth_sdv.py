"""SDV whole-table backends: rows for the requested cells, rules enforced, reproducible."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from surveysynth.contract.rules import violations
from surveysynth.seeding import content_hash
from surveysynth.synthesis.api import synthesize
from surveysynth.synthesis.planted import planted_survey


@pytest.fixture(scope="module")
def world() -> dict:
    rng = np.random.default_rng(2)
    n = rng.integers(0, 14, size=4 * 3 * 3)
    n[:2] = 0
    return planted_survey(n_regions=4, n_sectors=3, waves=2, n_per_cell=n, N_per_cell=50, seed=2)


def _check(out: pd.DataFrame, world: dict, cfg) -> None:
    ref = synthesize(
        world["responses"], world["frame"], world["support"], cfg.with_(backend="hierarchical")
    )
    key = ["cell_id", "period", "implicate", "unit"]
    # the same records (units, weights) as the hierarchical backend, other outcomes
    pd.testing.assert_frame_equal(
        out[key + ["synth_weight"]].sort_values(key).reset_index(drop=True),
        ref[key + ["synth_weight"]].sort_values(key).reset_index(drop=True),
    )
    assert list(out.columns) == list(ref.columns)
    assert violations(out, cfg.rules, cfg.outcomes).empty
    assert set(out["synth_method"]) == {cfg.backend}


def test_gaussian_copula_backend(world):
    cfg = world["config"].with_(backend="sdv_gaussian_copula", m=2)
    out = synthesize(world["responses"], world["frame"], world["support"], cfg)
    _check(out, world, cfg)
    again = synthesize(world["responses"], world["frame"], world["support"], cfg)
    assert content_hash(again) == content_hash(out)
    other = synthesize(world["responses"], world["frame"], world["support"], cfg.with_(seed=3))
    assert content_hash(other) != content_hash(out)


@pytest.mark.parametrize("backend", ["sdv_ctgan", "sdv_tvae"])
def test_neural_backends_run(world, backend):
    cfg = world["config"].with_(backend=backend, m=1, backend_options=(("epochs", 2),))
    out = synthesize(world["responses"], world["frame"], world["support"], cfg)
    _check(out, world, cfg)
