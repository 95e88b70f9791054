"""Run dbt builds of this project from tests, each in its own DuckDB file and target folder.

Every call is a subprocess, so no dbt state leaks between tests, and the vars are passed the way a
user passes them (`--vars`), so the tests exercise the real input contract.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
DBT = str(Path(sys.executable).with_name("dbt"))
#: The demo survey's configuration (demo/demo_vars.yml): every build here starts from it, as
#: `make demo` does, since the package's own defaults describe no survey.
DEMO_VARS_FILE = ROOT / "demo" / "demo_vars.yml"


def demo_config() -> dict:
    """The demo configuration's vars (a fresh copy)."""
    return yaml.safe_load(DEMO_VARS_FILE.read_text())


def project_vars(**extra) -> dict:
    """The vars a demo build sees: dbt_project.yml's defaults, the demo configuration, ``extra``."""
    base = yaml.safe_load((ROOT / "dbt_project.yml").read_text())["vars"]
    return {**base, **demo_config(), **extra}


def generate_demo(out: Path, *args: str) -> Path:
    """Write a demo world into ``out`` with scripts/demo/generate_demo.py (extra CLI ``args``);
    a failure fails the calling test with the generator's output."""
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "demo" / "generate_demo.py"),
            "--out",
            str(out),
            *args,
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out


def farm_vars(responses: Path, totals: Path, outcomes: dict, **extra) -> dict:
    """Input-contract vars of the farm survey used as a second, differently shaped dataset:
    farms by county x crop, year as wave, no design weight, no unit frame (population
    counts per cell in ``totals``), ``outcomes`` as given."""
    return {
        "ss_responses": f"file:{responses}",
        "ss_unit_id": "farm_id",
        "ss_wave": "year",
        "ss_cell_dims": ["county", "crop"],
        "ss_design_weight": None,
        "ss_outcomes": outcomes,
        "ss_sensitive": ["yield_t"],
        "ss_frame": None,
        "ss_frame_auxiliaries": [],
        "ss_population_totals": f"file:{totals}",
        "ss_population_count": "farms",
        "ss_ratio_estimators": {},
        **extra,
    }


def demo_vars(data: Path, work: Path | None = None, **extra) -> dict:
    """Input-contract vars pointing a build at the demo world in ``data``; with ``work``, the
    synthesis runs (manifests, timings) are kept under it."""
    return {
        "ss_responses": f"file:{data / 'responses.parquet'}",
        "ss_frame": f"file:{data / 'frame.parquet'}",
        **({"ss_synth_run_dir": str(work / "runs")} if work is not None else {}),
        **extra,
    }


@dataclass
class DbtResult:
    returncode: int
    output: str
    db_path: Path
    target_path: Path

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def query(self, sql: str) -> pd.DataFrame:
        with duckdb.connect(str(self.db_path), read_only=True) as con:
            return con.sql(sql).df()

    def run_results(self) -> dict:
        return json.loads((self.target_path / "run_results.json").read_text())

    def statuses(self) -> dict[str, str]:
        """Node name -> status ('success', 'error', 'fail', 'pass', 'skipped', ...)."""
        out = {}
        for r in self.run_results()["results"]:
            if r["unique_id"].startswith("exposure."):
                continue  # the report and the dashboard: nothing to run, dbt says no-op
            out[r["unique_id"].split(".")[2]] = r["status"]
        return out


def run_dbt(
    workdir: Path,
    vars: dict | None = None,
    command: str = "build",
    select: str | None = None,
    extra_args: list[str] | None = None,
    target: str = "duckdb",
    env: dict | None = None,
    db_name: str = "warehouse.duckdb",
    demo: bool = True,
) -> DbtResult:
    """Run `dbt <command>` on this project with its state under `workdir`. ``vars`` are laid over
    the demo configuration (demo/demo_vars.yml); ``demo=False`` passes ``vars`` alone (a bare
    package when they are empty)."""
    workdir.mkdir(parents=True, exist_ok=True)
    db_path = workdir / db_name
    target_path = workdir / "target"
    args = [
        DBT,
        command,
        "--project-dir",
        str(ROOT),
        "--profiles-dir",
        str(ROOT),
        "--target",
        target,
        "--target-path",
        str(target_path),
        "--log-path",
        str(workdir / "logs"),
    ]
    all_vars = {**(demo_config() if demo else {}), **(vars or {})}
    if demo and "ss_cell_dims" in (vars or {}) and "ss_variance_collapse" not in vars:
        # the demo's variance strata name the demo's dimensions: another survey's build drops them
        all_vars["ss_variance_collapse"] = None
    if all_vars:
        args += ["--vars", json.dumps(all_vars)]
    if select:
        args += ["--select", select]
    if extra_args:
        args += extra_args
    run_env = {
        **os.environ,
        "SURVEYSYNTH_DUCKDB_PATH": str(db_path),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "PYSPARK_PYTHON": sys.executable,
        "PYSPARK_DRIVER_PYTHON": sys.executable,
        **(env or {}),
    }
    proc = subprocess.run(
        args, check=False, cwd=ROOT, env=run_env, capture_output=True, text=True, timeout=1800
    )
    return DbtResult(proc.returncode, proc.stdout + proc.stderr, db_path, target_path)
