"""The best any model-based cell estimate can do on the demo world: the oracle floor.

A synthetic record for a unit is drawn from a model; it cannot know the unit's own
idiosyncratic draw (its persistent unit effect, its wave noise). So even a synthesizer
that knew the demo's true model exactly -- every main effect, interaction and cell
random effect, plus each frame unit's register values -- would estimate a cell's mean
by the model's conditional expectation E[Y-bar_c | world, register], and would still
miss the finite-population truth Y-bar_c by the average idiosyncratic noise of the
cell's N units. Its error variance is about sigma_c^2 / N_c, while the direct estimate's
is sigma_c^2 (1 - f_c) / n_c, so in a cell where respondents are a share f_c of the
units, no synthetic-only estimate can beat the direct one by more than
sqrt(f_c / (1 - f_c)) on RMSE.

:func:`expected_truth` computes that oracle by Monte Carlo: it re-simulates every unit
of the demo frame ``reps`` times with independent answer streams (the world, frame and
design of ``generate_demo`` for the same seed, unchanged) and averages the cell sums.
``scripts/eval/eval_synth.py --oracle`` scores it next to the synthesizer.

    .venv/bin/python scripts/demo/demo_oracle.py --reps 100     # prints a summary
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

import generate_demo as gd

# Replicate r re-simulates chunk c under answer stream (REPLICATE_BASE + r, c), far from
# the chunk numbers generate_demo itself uses, so no replicate reuses the truth's draws.
REPLICATE_BASE = 1_000_000
DEFAULT_FRAME_SIZE = gd.Config().frame_size
PERFECT_FIRST_REP = 100_000  # perfect-synthesizer draws never reuse the oracle's


def expected_truth(
    seed: int = 42,
    frame_size: int = DEFAULT_FRAME_SIZE,
    waves: int = 4,
    reps: int = 100,
    first_rep: int = 0,
) -> pd.DataFrame:
    """Monte Carlo E[cell mean | world, register] per cell x wave x indicator, in the
    columns of ``demo_truth`` with ``expected_value`` in place of ``true_value``.

    With a small ``reps`` (= m) and a ``first_rep`` disjoint from the oracle's, the result
    is a perfect synthesizer's estimate: m independent synthetic copies of every unit drawn
    from the true model itself, averaged (pooled over m implicates)."""
    cfg = gd.Config(seed=seed, frame_size=frame_size, waves=waves)
    frame = gd.build_frame(cfg)
    world = gd.build_world(cfg.seed, cfg.waves)
    acc = gd.TruthAccumulator(cfg.waves)
    n_chunks = max(1, -(-frame.size // gd.CHUNK_UNITS))
    for r in range(first_rep, first_rep + reps):
        for chunk in range(n_chunks):
            lo, hi = chunk * gd.CHUNK_UNITS, min(frame.size, (chunk + 1) * gd.CHUNK_UNITS)
            keep = [np.zeros(hi - lo, dtype=bool)] * cfg.waves
            gd.simulate_chunk(
                cfg,
                world,
                REPLICATE_BASE + r * n_chunks + chunk,
                frame.cell[lo:hi],
                frame.employment[lo:hi],
                frame.turnover[lo:hi],
                acc,
                keep,
            )
    for name in acc.sums:
        acc.sums[name] /= reps
    t = gd.truth_table(frame, acc).to_pandas().rename(columns={"true_value": "expected_value"})
    # identifies the world re-simulated, so callers can check it is the one their data came from
    t.attrs["register_employment_total"] = float(frame.employment.sum())
    return t


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--reps", type=int, default=100)
    a = ap.parse_args(argv)
    t0 = time.monotonic()
    e = expected_truth(seed=a.seed, reps=a.reps)
    print(
        f"oracle: {len(e)} cell x wave x indicator values from {a.reps} replicates "
        f"in {time.monotonic() - t0:.1f}s"
    )
    print(e.head())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
