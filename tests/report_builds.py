"""Warehouses for the report and dashboard tests, built once per test session and side by side:
a small demo world (the demo's column names) and the farm survey of test_staging (county x crop,
year as wave, population totals only, other outcome types), each a full `dbt build`."""

from __future__ import annotations

import functools
import tempfile
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from harness import DbtResult, demo_vars, generate_demo, run_dbt
from test_staging import _farm_survey

SMALL_DEMO = ["--seed", "5", "--frame-size", "6000", "--target-responses-per-wave", "150"]


def _demo() -> DbtResult:
    root = Path(tempfile.mkdtemp(prefix="ss_report_demo_"))
    data = generate_demo(root / "data", *SMALL_DEMO, "--waves", "2")
    vars_ = demo_vars(
        data, root, ss_backtest_truth=f"file:{data / 'demo_truth.parquet'}", ss_backtest_repeats=1
    )
    return run_dbt(root, vars=vars_)


def _farm() -> DbtResult:
    root = Path(tempfile.mkdtemp(prefix="ss_report_farm_"))
    _resp, _totals, vars_ = _farm_survey(root)
    return run_dbt(root, vars=vars_)


@functools.cache
def _started() -> tuple[Future, Future]:
    pool = ThreadPoolExecutor(max_workers=2)
    futures = (pool.submit(_demo), pool.submit(_farm))
    pool.shutdown(wait=False)
    return futures


def demo_build() -> DbtResult:
    """A full build of a small demo world (6,000 register units, 2 waves)."""
    return _started()[0].result()


def farm_build() -> DbtResult:
    """A full build of the farm survey."""
    return _started()[1].result()
