"""Benchmarks of the foundation layer (printed, never asserted):

1. `dbt build` of the whole demo on embedded DuckDB, wall time (target: at most 60 s).
2. At the 1M-response / 10M-unit scale, the execution time of the staging models plus
   cell_support (dbt's own per-model timings) divided by the time of one DuckDB
   scan-and-group-by of the responses Parquet, measured in the same run (target: at most 3x).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import yaml

ROOT = Path(__file__).resolve().parents[2]
#: the demo configuration every build here starts from (the package defaults describe no survey)
DEMO_VARS = yaml.safe_load((ROOT / "demo" / "demo_vars.yml").read_text())
DBT = str(Path(sys.executable).with_name("dbt"))
STAGING_MODELS = [
    "stg_frame",
    "population_cells",
    "int_responses_checked",
    "quarantined_responses",
    "stg_responses",
    "cell_support",
]


def _dbt(args: list[str], work: Path, vars_: dict) -> float:
    env = {
        **os.environ,
        "SURVEYSYNTH_DUCKDB_PATH": str(work / "bench.duckdb"),
        "DBT_PROFILES_DIR": str(ROOT),
    }
    t = time.perf_counter()
    proc = subprocess.run(
        [
            DBT,
            *args,
            "--target-path",
            str(work / "target"),
            "--log-path",
            str(work / "logs"),
            "--vars",
            json.dumps({**DEMO_VARS, **vars_}),
        ],
        check=False,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - t
    if proc.returncode != 0:
        print(proc.stdout[-3000:], file=sys.stderr)
        raise RuntimeError(f"dbt {' '.join(args)} failed")
    return elapsed


def _generate(out: Path, scale: bool) -> None:
    if (out / "responses.parquet").exists() and (out / "frame.parquet").exists():
        return
    args = [
        sys.executable,
        str(ROOT / "scripts" / "demo" / "generate_demo.py"),
        "--seed",
        "42",
        "--out",
        str(out),
    ]
    if scale:
        args.append("--scale")
    subprocess.run(args, check=True, capture_output=True)


def bench_demo_build(work: Path) -> dict:
    data = work / "demo"
    _generate(data, scale=False)
    vars_ = {
        "ss_responses": f"file:{data / 'responses.parquet'}",
        "ss_frame": f"file:{data / 'frame.parquet'}",
        "ss_synth_run_dir": str(work / "runs"),
    }
    seconds = _dbt(["build"], work / "demo_build", vars_)
    return {
        "benchmark": "dbt build of the demo (wall s)",
        "measured": seconds,
        "baseline": 60.0,
        "ratio": seconds / 60.0,
        "target": "<= 1.0 (60 s)",
    }


def bench_staging_scale(work: Path) -> list[dict]:
    data = work / "scale"
    _generate(data, scale=True)
    vars_ = {
        "ss_responses": f"file:{data / 'responses.parquet'}",
        "ss_frame": f"file:{data / 'frame.parquet'}",
    }
    run_dir = work / "scale_build"
    _dbt(["run", "--select", " ".join(STAGING_MODELS)], run_dir, vars_)
    results = json.loads((run_dir / "target" / "run_results.json").read_text())["results"]
    staged = sum(r["execution_time"] for r in results)
    con = duckdb.connect()
    responses = data / "responses.parquet"
    frame = data / "frame.parquet"
    timings = []
    for _ in range(3):
        t = time.perf_counter()
        con.sql(
            f"create or replace table scan_group as select region, sector, size_band, wave, "
            f"count(*) as n, sum(design_weight) as w from read_parquet('{responses}') group by all"
        )
        timings.append(time.perf_counter() - t)
    base = min(timings)
    timings = []
    for _ in range(3):
        t = time.perf_counter()
        con.sql(
            f"create or replace table scan_both as select r.region, r.sector, r.size_band, r.wave, "
            f"count(*) as n, sum(f.register_turnover) as x from read_parquet('{responses}') r "
            f"join read_parquet('{frame}') f using (business_id) group by all"
        )
        timings.append(time.perf_counter() - t)
    base_frame = min(timings)
    n = con.sql(f"select count(*) from read_parquet('{responses}')").fetchall()[0][0]
    return [
        {
            "benchmark": f"staging + cell_support, {n:,} responses / 10M frame (s)",
            "measured": staged,
            "baseline": base,
            "ratio": staged / base,
            "target": "<= 3 (vs one scan-and-group-by)",
        },
        {
            "benchmark": "  same, vs a scan-and-group-by that also joins the frame",
            "measured": staged,
            "baseline": base_frame,
            "ratio": staged / base_frame,
            "target": "(context)",
        },
    ]


def rows(work: Path) -> list[dict]:
    return [bench_demo_build(work), *bench_staging_scale(work)]


def print_table(rows_: list[dict]) -> None:
    print(f"{'benchmark':<62} {'measured':>10} {'baseline':>10} {'ratio':>8}  target")
    for r in rows_:
        print(
            f"{r['benchmark']:<62} {r['measured']:>10.3f} {r['baseline']:>10.3f} {r['ratio']:>8.2f}  {r['target']}"
        )


if __name__ == "__main__":
    work = ROOT / "target" / "bench"
    work.mkdir(parents=True, exist_ok=True)
    print_table(rows(work))
