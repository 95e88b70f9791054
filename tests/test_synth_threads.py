"""The synthesizer's threads change nothing: outcomes fitted at once and a plan sampled in
parts (cut at group boundaries) give the rows of one thread, bit for bit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from surveysynth.synthesis import fit, sample
from surveysynth.synthesis.api import synthesize
from surveysynth.synthesis.planted import planted_survey


@pytest.fixture(scope="module")
def world() -> dict:
    # uneven cells, so that an even split of the rows falls inside a group
    n = np.random.default_rng(3).integers(5, 18, size=4 * 3 * 3)
    return planted_survey(n_regions=4, n_sectors=3, waves=2, n_per_cell=n, N_per_cell=60, seed=3)


def _run(world: dict, monkeypatch, fit_threads: int, sample_threads: int) -> pd.DataFrame:
    monkeypatch.setattr(fit, "FIT_THREADS", fit_threads)
    monkeypatch.setattr(sample, "SAMPLE_THREADS", sample_threads)
    monkeypatch.setattr(sample, "MIN_PART_ROWS", 100)  # the world's plan is cut into parts
    cfg = world["config"].with_(mode="replica", m=3, seed=11)
    return synthesize(world["responses"], world["frame"], world["support"], cfg)


def test_threads_give_the_rows_of_one_thread(world, monkeypatch):
    one = _run(world, monkeypatch, 1, 1)
    assert len(one) > 3 * 100  # long enough to be cut into three parts
    for fit_threads, sample_threads in [(2, 2), (3, 3)]:
        many = _run(world, monkeypatch, fit_threads, sample_threads)
        pd.testing.assert_frame_equal(one, many, check_exact=True)


def test_parts_are_cut_at_group_starts():
    starts = np.array([0, 5, 9, 40, 41, 90])
    cuts = sample._part_cuts(starts, 100)
    assert cuts[0] == 0 and cuts[-1] == 100
    assert all(c in set(starts) for c in cuts[:-1])
