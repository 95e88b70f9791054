"""Benchmarks of the augmented estimates (a script that prints tables of ratios, not a test).

1. ``baseline``: a Fay-Herriot area-level EBLUP (REML sigma_v^2, main-effects design matrix of the
   cell dimensions, psi_d from a log-linear generalised variance function; one model per indicator
   x wave) on the same sparse cells x waves x indicators as the augmented estimates, scored against
   demo_truth: scaled RMSE of augmented / EBLUP / direct, their ratios, interval coverage, and how
   often REML put sigma_v^2 at 0 (every area then collapses to the regression).
2. ``overhead``: wall time of `dbt build` of the demo with the back-test (ss_backtest_enabled true)
   and without it, alternated in one run, each in its own DuckDB file; the ratio is what the back-test
   adds (must be at most 1.5). --select times only part of the project (e.g. the augmented layer
   and its parents, without the disclosure and release layers).

    .venv/bin/python scripts/bench/bench_augmented.py                 # both (baseline reads target/)
    .venv/bin/python scripts/bench/bench_augmented.py baseline --db target/surveysynth.duckdb
    .venv/bin/python scripts/bench/bench_augmented.py overhead --rounds 2
    .venv/bin/python scripts/bench/bench_augmented.py overhead --select "+domain_estimates +backtest_summary"
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[2]
#: the demo configuration every build here starts from (the package defaults describe no survey)
DEMO_VARS = yaml.safe_load((ROOT / "demo" / "demo_vars.yml").read_text())
sys.path.insert(0, str(ROOT))

from surveysynth.checks.backtest import indicator_matrix, indicator_names
from surveysynth.contract.config import SynthConfig
from surveysynth.estimation.evaluate import score, sparse_rows
from surveysynth.estimation.fay_herriot import fay_herriot_cells

DIMS = ["region", "sector", "size_band"]
CORE = (
    "+domain_estimates +augmented_margin_check +augmented_calibration_convergence +backtest_summary"
    " quarantined_responses"
)
Z975 = 1.959963984540054


def fh_inputs(con, cfg: SynthConfig) -> pd.DataFrame:
    """One row per cell x wave x indicator: direct estimate (direct_estimates), item respondents n,
    population N and the within-cell unit variance s2 of the indicator (stg_responses)."""
    r = con.sql("select * from stg_responses").df()
    names = indicator_names(cfg)
    Y = indicator_matrix(r, cfg)
    long = pd.DataFrame(Y, columns=names).assign(
        cell_id=r["cell_id"].to_numpy(), wave=r["wave"].to_numpy()
    )
    long = long.melt(id_vars=["cell_id", "wave"], var_name="indicator", value_name="y").dropna()
    s2 = long.groupby(["cell_id", "wave", "indicator"])["y"].agg(n="size", s2="var").reset_index()
    d = con.sql(
        "select cell_id, region, sector, size_band, wave, indicator, estimate, n_population "
        "from direct_estimates where domain_level = 'cell' and measure in ('mean', 'share')"
    ).df()
    d = d.merge(s2, on=["cell_id", "wave", "indicator"], how="left")
    d["n"] = d["n"].fillna(0)
    d = d.rename(columns={"n_population": "N"})
    return d[d["N"] > 0]


def baseline(db: str, truth_path: str) -> int:
    cfg = SynthConfig.from_dbt_project(
        str(ROOT / "dbt_project.yml"), str(ROOT / "demo" / "demo_vars.yml")
    )
    with duckdb.connect(db, read_only=True) as con:
        de = con.sql("select * from domain_estimates").df()
        inputs = fh_inputs(con, cfg)
    t0 = time.perf_counter()
    fh, fits = fay_herriot_cells(inputs, DIMS)
    fh_seconds = time.perf_counter() - t0
    truth = pd.read_parquet(truth_path)
    rows = sparse_rows(de, truth, DIMS)
    rows = rows.merge(
        fh[["cell_id", "wave", "indicator", "eblup", "eblup_mse"]],
        on=["cell_id", "wave", "indicator"],
        how="left",
    )
    rows = rows[rows["eblup"].notna()].copy()
    half = Z975 * np.sqrt(rows["eblup_mse"])
    rows["eblup_lo"], rows["eblup_hi"] = rows["eblup"] - half, rows["eblup"] + half
    table = score(
        rows,
        {
            "augmented": ("augmented_estimate", "augmented_ci_low", "augmented_ci_high"),
            "fay_herriot_eblup": ("eblup", "eblup_lo", "eblup_hi"),
            "direct": ("direct_estimate", "direct_ci_low", "direct_ci_high"),
        },
    )
    pd.set_option("display.width", 160)
    print(
        f"Baseline: Fay-Herriot EBLUP (REML, main effects of {', '.join(DIMS)}) on the same sparse "
        f"cells x waves x indicators, vs demo_truth ({len(rows)} rows; {len(fits)} FH fits in "
        f"{fh_seconds:.1f}s)"
    )
    print(table.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    r_fh = table.loc[0, "rmse_scaled"] / table.loc[1, "rmse_scaled"]
    r_dir = table.loc[0, "rmse_scaled"] / table.loc[2, "rmse_scaled"]
    zero = int(fits["at_zero"].sum())
    print(f"\nRMSE augmented / EBLUP: {r_fh:.3f}  (must be <= 1.1)")
    print(f"RMSE augmented / direct: {r_dir:.3f}")
    print(
        f"sigma_v^2 estimated as 0 in {zero} of {len(fits)} indicator x wave fits "
        f"({zero / len(fits):.0%}); median gamma on the scored rows: "
        f"{fh.merge(rows[['cell_id', 'wave', 'indicator']])['gamma'].median():.3f}"
    )
    per = []
    for ind, g in rows.groupby("indicator", sort=True):
        ea, ef = g["augmented_estimate"] - g["true_value"], g["eblup"] - g["true_value"]
        per.append(
            {
                "indicator": ind,
                "rmse_aug_over_eblup": float(np.sqrt((ea**2).mean() / (ef**2).mean())),
                "fits_at_zero": int(fits.loc[fits["indicator"] == ind, "at_zero"].sum()),
            }
        )
    print("\nBy indicator:")
    print(pd.DataFrame(per).to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    return 0 if r_fh <= 1.1 else 1


def _build(work: Path, enabled: bool, select: str = "") -> tuple[float, float]:
    """Wall time of one demo build, and the summed execution time of its back-test nodes."""
    env = {
        **os.environ,
        "DBT_PROFILES_DIR": str(ROOT),
        "SURVEYSYNTH_DUCKDB_PATH": str(work / "w.duckdb"),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    cmd = [
        str(Path(sys.executable).with_name("dbt")),
        "build",
        "--target-path",
        str(work / "target"),
        "--log-path",
        str(work / "logs"),
        "--vars",
        json.dumps(
            {**DEMO_VARS, "ss_backtest_enabled": enabled, "ss_synth_run_dir": str(work / "runs")}
        ),
    ]
    if select:
        cmd += ["--select", *select.split()]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, check=False, cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    results = json.loads((work / "target" / "run_results.json").read_text())["results"]
    failed = [r["unique_id"] for r in results if r["status"] in ("error", "fail", "runtime error")]
    ours = ("backtest", "augmented", "one_recommended_estimate")
    mine = [u for u in failed if any(k in u for k in ours) or u.endswith(".domain_estimates")]
    if proc.returncode != 0 and (mine or not failed):
        raise SystemExit(f"dbt build failed (backtest enabled={enabled}):\n{proc.stdout[-3000:]}")
    if failed:
        print(f"  note: nodes outside the augmented layer failed in this build: {failed}")
    own = sum(r["execution_time"] for r in results if "backtest" in r["unique_id"])
    return seconds, own


def overhead(rounds: int, select: str = "") -> int:
    times: dict[bool, list[float]] = {True: [], False: []}
    own: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(rounds):
            for enabled in (False, True) if i % 2 == 0 else (True, False):
                work = Path(tmp) / f"{'with' if enabled else 'without'}_{i}"
                seconds, nodes = _build(work, enabled, select)
                times[enabled].append(seconds)
                if enabled:
                    own.append(nodes)
    without, with_ = statistics.median(times[False]), statistics.median(times[True])
    what = f"--select {select}" if select else "the whole project"
    print(f"\nDemo `dbt build` wall time ({what}), median of {rounds} alternated runs each")
    print(f"  without back-test: {without:6.1f}s  {[round(t, 1) for t in times[False]]}")
    print(f"  with back-test:    {with_:6.1f}s  {[round(t, 1) for t in times[True]]}")
    print(f"  ratio with / without: {with_ / without:.3f}  (must be <= 1.5)")
    print(
        f"  back-test nodes' own execution time: {statistics.median(own):.1f}s "
        f"({statistics.median(own) / without:.0%} of the build if it ran alone; dbt runs it "
        "alongside other models on its threads)"
    )
    return 0 if with_ / without <= 1.5 else 1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", nargs="?", default="all", choices=["all", "baseline", "overhead"])
    ap.add_argument("--db", default=str(ROOT / "target" / "surveysynth.duckdb"))
    ap.add_argument("--truth", default=str(ROOT / "data" / "demo" / "demo_truth.parquet"))
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument(
        "--select",
        default="",
        help="dbt --select selectors for the timed builds "
        "(e.g. the augmented layer and its parents: " + CORE + ")",
    )
    a = ap.parse_args(argv)
    rc = 0
    if a.what in ("all", "baseline"):
        rc |= baseline(a.db, a.truth)
    if a.what in ("all", "overhead"):
        rc |= overhead(a.rounds, a.select)
    return rc


if __name__ == "__main__":
    sys.exit(main())
