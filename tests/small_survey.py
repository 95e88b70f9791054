"""A survey of about 200 responses with domains that have no sample: a small demo world (6,000
register units, 2 waves) whose respondents are cut to a seeded sample of 155 units (about 195
responses over 412 populated cells, most of them without a respondent). Built once per test
session and shared by the test modules that import it."""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from harness import demo_vars, generate_demo, run_dbt

UNITS = 155


def subsample_units(src: Path, dst: Path, n_units: int, seed: int) -> Path:
    """Copy a demo world, keeping the responses of a seeded sample of ``n_units`` units (design
    weights scaled by the inverse sampling fraction: a subsample of a probability sample)."""
    dst.mkdir(parents=True, exist_ok=True)
    r = pd.read_parquet(src / "responses.parquet")
    units = np.sort(r["business_id"].unique())
    keep = np.random.default_rng(seed).choice(units, n_units, replace=False)
    out = r[r["business_id"].isin(keep)].copy()
    out["design_weight"] = out["design_weight"] * len(units) / n_units
    out.to_parquet(dst / "responses.parquet", index=False)
    for name in ("frame.parquet", "demo_truth.parquet", "population_totals.parquet"):
        shutil.copy(src / name, dst / name)
    return dst


@functools.cache
def small_world() -> Path:
    root = Path(tempfile.mkdtemp(prefix="ss_small_"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    big = generate_demo(
        root / "world",
        "--seed",
        "5",
        "--frame-size",
        "6000",
        "--target-responses-per-wave",
        "100",
        "--waves",
        "2",
    )
    return subsample_units(big, root / "data", UNITS, seed=1)


@functools.cache
def small_build():
    """(work dir, vars, result) of the default build of the small survey (back-test on)."""
    data = small_world()
    work = data.parent / "build"
    vars_ = demo_vars(data, work)
    return work, vars_, run_dbt(work, vars=vars_)


def dp_world(out: Path, seed: int):
    """A demo-shaped world of about 6,000 responses (60,000 register units, 2 waves) for the DP
    fit's checks: (config, responses, frame, support map)."""
    from harness import DEMO_VARS_FILE, ROOT

    from surveysynth.contract.config import SynthConfig
    from surveysynth.synthesis.api import support_table

    data = generate_demo(
        out,
        *("--seed", str(seed), "--frame-size", "60000", "--target-responses-per-wave", "3000"),
        *("--waves", "2"),
    )
    cfg = SynthConfig.from_dbt_project(str(ROOT / "dbt_project.yml"), str(DEMO_VARS_FILE))
    r = pd.read_parquet(data / "responses.parquet")
    f = pd.read_parquet(data / "frame.parquet")
    return cfg, r, f, support_table(r, cfg, frame=f)
