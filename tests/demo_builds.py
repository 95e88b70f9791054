"""Whole demo builds shared by the session (about a minute of dbt each).

Five test modules read a whole demo build. Each used to build its own; two configurations cover
them:

- ``demo_release``: the back-test off (it would add its synthesizer runs and is proven by its own
  tests), every register value given its own fractional part (`mark_register`) so that the release
  tests can tell a leaked register value from a coincidence. Read by the release, gate and
  planted-failure tests (test_release_gates, test_release_safety, test_gates_planted).
- ``demo_made``: the demo as `make demo` builds it (back-test scored against the demo's truth).
  Read by test_augmented_demo and test_demo_build.

The builds are shared, so a test never writes to them: a test that rebuilds or edits a warehouse
works on ``writable_copy``'s copy, or copies the warehouse file itself.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest
from harness import DbtResult, demo_vars, generate_demo, run_dbt


@dataclass(frozen=True)
class DemoBuild:
    work: Path  # the build's folder (warehouse, target, logs, runs)
    data: Path  # the demo world it was built from
    vars: dict
    res: DbtResult


def mark_register(frame: Path) -> None:
    """Give every register value of the frame its own fractional part in (0.001, 0.999): the k-th
    unit gets 0.001 + 0.998 * (7919 k mod p) / p, p prime, so no two marks are equal."""
    p = 1_000_003
    mark = f"(0.001 + 0.998 * ((row_number() over (order by business_id) * 7919) % {p}) / {p})"
    marked = frame.with_name("frame_marked.parquet")
    duckdb.sql(
        f"copy (select * replace ("
        f"register_employment + {mark} as register_employment, "
        f"register_turnover + {mark} as register_turnover) "
        f"from read_parquet('{frame}') order by business_id) to '{marked}' (format parquet)"
    )
    marked.replace(frame)


def writable_copy(build: DemoBuild, dest: Path) -> DemoBuild:
    """A copy of ``build`` in ``dest`` (warehouse, synthesis runs) that a test may rebuild or edit;
    the demo world's files are shared (read only)."""
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy(build.res.db_path, dest / build.res.db_path.name)
    if (build.work / "runs").is_dir():
        shutil.copytree(build.work / "runs", dest / "runs")
    vars_ = {**build.vars, "ss_synth_run_dir": str(dest / "runs")}
    res = DbtResult(
        build.res.returncode, build.res.output, dest / build.res.db_path.name, dest / "target"
    )
    shutil.copytree(build.res.target_path, res.target_path)
    return DemoBuild(dest, build.data, vars_, res)


@pytest.fixture(scope="session")
def demo_release(tmp_path_factory) -> DemoBuild:
    work = tmp_path_factory.mktemp("demo_release")
    data = generate_demo(work / "data", "--seed", "42")
    mark_register(data / "frame.parquet")
    vars_ = demo_vars(data, work, ss_backtest_enabled=False)
    res = run_dbt(work, vars=vars_)
    assert res.ok, res.output[-5000:]
    return DemoBuild(work, data, vars_, res)


@pytest.fixture(scope="session")
def demo_made(tmp_path_factory) -> DemoBuild:
    """Not asserted to succeed here: test_demo_build's first test says so, with the failures."""
    work = tmp_path_factory.mktemp("demo_made")
    data = generate_demo(work / "data", "--seed", "42")
    vars_ = demo_vars(data, work, ss_backtest_truth=f"file:{data / 'demo_truth.parquet'}")
    res = run_dbt(work, vars=vars_)
    return DemoBuild(work, data, vars_, res)
