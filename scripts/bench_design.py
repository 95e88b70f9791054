"""Benchmark of the SQL raking (macro surveysynth.rake, compiled by dbt) on DuckDB.

1. Raking N response rows (default 10,000,000) to 3 count margins against the minimal job: one
   DuckDB statement that reads the same rows and writes unit, wave and base weight to a table.
   The raking reads the rows twice (cell sums, then the join to the per-cell factors) and iterates
   on the small cell table, so the ratio should stay near 1-2 whatever the number of sweeps.
2. Raking M rows (default 1,000,000) with the SQL macro against samplics' SampleWeight.rake on the
   same data: time and the largest relative difference of the weights. Two tolerances show that
   the SQL time does not depend on the number of sweeps.

Data are generated here (numpy -> Parquet): 576 cells (12 regions x 12 sectors x 4 size bands) of
skewed size, 4 waves, base weights varying by cell and within cell; margin targets are the cell
populations of a synthetic frame summed over each margin, so the margins are consistent.

    python scripts/bench_design.py                       # 10M and 1M (minutes, 2 cores)
    python scripts/bench_design.py --rows 1000000 --samplics-rows 200000   # quick look
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
REGIONS = [f"region_{i:02d}" for i in range(12)]
SECTORS = [f"sector_{i:02d}" for i in range(12)]
SIZES = ["0-9", "10-49", "50-249", "250+"]
N_CELLS = len(REGIONS) * len(SECTORS) * len(SIZES)
MARGINS = [["region"], ["sector"], ["size_band"]]
CHUNK = 1_000_000


def _cell_geometry(seed: int):
    rng = np.random.default_rng([seed, 0])
    p = rng.dirichlet(np.full(N_CELLS, 0.7))
    dw = np.exp(rng.normal(3.0, 1.0, N_CELLS))  # design weight per cell, 2 to 400 or so
    return p, dw


def make_units(path: Path, rows: int, seed: int = 1, waves: int = 4) -> None:
    """Write `rows` response rows to Parquet, chunk by chunk (bounded memory at any size)."""
    p, dw = _cell_geometry(seed)
    cells = np.arange(N_CELLS)
    labels = {
        "region": pa.array(REGIONS),
        "sector": pa.array(SECTORS),
        "size_band": pa.array(SIZES),
    }
    cell_ids = pa.array(
        [f"{REGIONS[c // 48]}|{SECTORS[(c // 4) % 12]}|{SIZES[c % 4]}" for c in cells]
    )
    writer = None
    for start in range(0, rows, CHUNK):
        n = min(CHUNK, rows - start)
        rng = np.random.default_rng([seed, 1, start])
        cell = rng.choice(N_CELLS, size=n, p=p)
        codes = {
            "region": cell // 48,
            "sector": (cell // 4) % 12,
            "size_band": cell % 4,
        }
        table = pa.table(
            {
                "unit_id": pa.array(np.arange(start, start + n, dtype=np.int64)),
                "wave": pa.array(rng.integers(1, waves + 1, n, dtype=np.int64)),
                **{
                    k: pa.DictionaryArray.from_arrays(pa.array(v.astype(np.int32)), labels[k])
                    for k, v in codes.items()
                },
                "cell_id": pa.DictionaryArray.from_arrays(pa.array(cell.astype(np.int32)), cell_ids),
                "base_weight": pa.array(dw[cell] * (0.8 + 0.4 * rng.random(n))),
            }
        )
        if writer is None:
            writer = pq.ParquetWriter(path, table.schema, compression="snappy")
        writer.write_table(table)
    writer.close()


def make_margins(con: duckdb.DuckDBPyConnection, units: str, seed: int = 1) -> None:
    """Targets: a synthetic frame's cell populations (base weight sums of wave 1 times a cell
    factor in [0.8, 1.6]: the weights are off, as after nonresponse), summed per margin."""
    rng = np.random.default_rng([seed, 2])
    factor = 0.8 + 0.8 * rng.random(N_CELLS)
    cells = con.sql(
        f"select cell_id, any_value(region) as region, any_value(sector) as sector, "
        f"any_value(size_band) as size_band, sum(base_weight) as w "
        f"from {units} where wave = 1 group by cell_id order by cell_id"
    ).df()
    cells["n_population"] = np.maximum(np.rint(cells.w.to_numpy() * factor[: len(cells)]), 1.0)
    con.register("bench_cells", cells)
    parts = []
    for dims in MARGINS:
        d = dims[0]
        parts.append(
            f"select '{d}' as margin_id, cast({d} as varchar) as category, "
            f"sum(n_population) as target, sum(n_population) as population_count "
            f"from bench_cells group by {d}"
        )
    con.execute(
        "create or replace table bench_margins as "
        "select m.margin_id, m.category, w.wave, cast(m.target as double) as target, "
        "cast(m.population_count as bigint) as population_count "
        f"from ({' union all '.join(parts)}) as m cross join (select distinct wave from {units}) as w"
    )
    con.unregister("bench_cells")


SPLIT = "-- surveysynth bench: factors below --"


def compile_rake(units: str, tol: float, max_iter: int = 200, method: str = "auto") -> tuple[str, str]:
    """The SQL of surveysynth.rake (units with calibrated weights) and of surveysynth.rake_factors
    (per-cell factors and sweeps) for the bench data, compiled by dbt (`dbt compile --inline`)."""
    specs = {
        "counts": [{"id": m[0], "dims": m, "kind": "count"} for m in MARGINS],
        "totals": [],
    }
    common = (
        "units=" + json.dumps(units) + ", weight='base_weight', margins='bench_margins', "
        "margin_specs=" + json.dumps(specs) + ", group_by=['wave'], cell_key='cell_id', "
        f"tol={tol!r}, max_iter={max_iter}, method='{method}'"
    )
    inline = (
        "{{ surveysynth.rake(" + common + ", unit_columns=['unit_id']) }}\n"
        + SPLIT + "\n{{ surveysynth.rake_factors(" + common + ") }}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            **os.environ,
            "SURVEYSYNTH_DUCKDB_PATH": str(Path(tmp) / "compile.duckdb"),
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        }
        dbt = str(Path(sys.executable).with_name("dbt"))
        out = subprocess.run(
            [dbt, "--quiet", "compile", "--project-dir", str(ROOT), "--profiles-dir", str(ROOT),
             "--target-path", str(Path(tmp) / "target"), "--log-path", str(Path(tmp) / "logs"),
             "--inline", inline],
            cwd=ROOT, env=env, capture_output=True, text=True, check=False,
        )
    if out.returncode != 0:
        raise RuntimeError("dbt compile failed:\n" + out.stdout[-3000:] + out.stderr[-3000:])
    rake_sql, factors_sql = out.stdout.split(SPLIT)
    return rake_sql, factors_sql


def _timed(con: duckdb.DuckDBPyConnection, sql: str) -> float:
    t0 = time.perf_counter()
    con.execute(sql)
    return time.perf_counter() - t0


def bench_vs_minimal(workdir: Path, rows: int, tol: float = 1e-6) -> dict:
    data = workdir / f"units_{rows}.parquet"
    if not data.exists():
        make_units(data, rows)
    units = f"read_parquet('{data}')"
    con = duckdb.connect(str(workdir / "bench.duckdb"))
    make_margins(con, units)
    rake_sql, factors_sql = compile_rake(units, tol)
    minimal = _timed(
        con, f"create or replace table minimal_out as select unit_id, wave, base_weight from {units}"
    )
    rake = _timed(con, f"create or replace table rake_out as {rake_sql}")
    check = con.execute("select count(*) as n, min(g) as g_min, max(g) as g_max from rake_out").fetchall()[0]
    err = con.execute(
        "with sums as ("
        " select r.wave, u.region, u.sector, u.size_band, sum(r.calibrated_weight) as s"
        f" from rake_out r join {units} u using (unit_id) group by all),"
        " got as ("
        " select wave, 'region' as margin_id, region as category, sum(s) as s from sums group by all union all"
        " select wave, 'sector', sector, sum(s) from sums group by all union all"
        " select wave, 'size_band', size_band, sum(s) from sums group by all)"
        " select max(abs(got.s - m.target) / m.target) from got join bench_margins m"
        " using (wave, margin_id, category)"
    ).fetchall()[0][0]
    sweeps = _sweeps(con, factors_sql)
    con.close()
    assert check[0] == rows
    return {
        "case": f"rake {rows:,} rows, 3 margins (sweeps {sweeps})",
        "minimal_s": minimal,
        "rake_s": rake,
        "ratio": rake / minimal,
        "max_margin_rel_error": err,
    }


def _sweeps(con, factors_sql: str) -> str:
    """Sweeps used per wave (from the macro's factor table; cheap, it reads the cell sums)."""
    it = con.execute(
        f"select wave, max(iterations) from ({factors_sql}) as f group by wave order by wave"
    ).fetchall()
    return "/".join(str(r[1]) for r in it)


def bench_vs_samplics(workdir: Path, rows: int) -> list[dict]:
    import pandas as pd
    from samplics.weighting import SampleWeight

    data = workdir / f"units_{rows}.parquet"
    if not data.exists():
        make_units(data, rows)
    units = f"read_parquet('{data}')"
    con = duckdb.connect(str(workdir / "bench.duckdb"))
    make_margins(con, units)
    out = []
    for tol in (1e-6, 1e-12):
        sql, factors_sql = compile_rake(units, tol)
        t_sql = _timed(con, f"create or replace table rake_out as {sql}")
        out.append({"case": f"SQL rake {rows:,} rows, tol {tol:g} (sweeps {_sweeps(con, factors_sql)})",
                    "seconds": t_sql})
    got = con.sql("select unit_id, calibrated_weight from rake_out order by unit_id").df()
    df = pd.read_parquet(data)
    margins = con.sql("select * from bench_margins").df()
    con.close()
    t0 = time.perf_counter()
    weights = np.empty(len(df))
    for wave, idx in df.groupby("wave").indices.items():
        m = margins[margins.wave == wave]
        part = df.iloc[idx]
        weights[idx] = SampleWeight().rake(
            samp_weight=part.base_weight.to_numpy(),
            margins={d[0]: part[d[0]].astype(str).to_numpy() for d in MARGINS},
            control={d[0]: dict(zip(m[m.margin_id == d[0]].category, m[m.margin_id == d[0]].target))
                     for d in MARGINS},
            tol=1e-12,
            ctrl_tol=1e-12,
            max_iter=500,
        )
    t_samplics = time.perf_counter() - t0
    ref = pd.Series(weights, index=df.unit_id.to_numpy()).loc[got.unit_id].to_numpy()
    diff = float(np.max(np.abs(got.calibrated_weight.to_numpy() - ref) / ref))
    out.append({"case": f"samplics rake {rows:,} rows, tol 1e-12", "seconds": t_samplics})
    out.append({"case": "samplics time / SQL time (tol 1e-12)", "seconds": t_samplics / out[1]["seconds"],
                "max_weight_rel_diff": diff})
    return out


def run_bench(rows: int = 10_000_000, samplics_rows: int = 1_000_000, workdir: Path | None = None) -> dict:
    """Both benchmarks; returns their rows (also what the CLI prints)."""
    own = workdir is None
    tmp = tempfile.TemporaryDirectory() if own else None
    wd = Path(tmp.name) if own else Path(workdir)
    wd.mkdir(parents=True, exist_ok=True)
    try:
        result = {"minimal": bench_vs_minimal(wd, rows) if rows else None,
                  "samplics": bench_vs_samplics(wd, samplics_rows) if samplics_rows else []}
    finally:
        if tmp is not None:
            tmp.cleanup()
    return result


def print_table(result: dict) -> None:
    m = result["minimal"]
    if m:
        print(f"{'case':<52} {'minimal s':>10} {'rake s':>9} {'ratio':>7} {'max margin err':>15}")
        print(f"{m['case']:<52} {m['minimal_s']:>10.2f} {m['rake_s']:>9.2f} {m['ratio']:>7.2f} "
              f"{m['max_margin_rel_error']:>15.2e}")
        print()
    if result["samplics"]:
        print(f"{'case':<52} {'seconds':>10} {'max weight rel diff':>20}")
        for r in result["samplics"]:
            extra = f"{r['max_weight_rel_diff']:>20.2e}" if "max_weight_rel_diff" in r else ""
            label = "x" if r["case"].startswith("samplics time /") else "s"
            print(f"{r['case']:<52} {r['seconds']:>9.2f}{label} {extra}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=10_000_000, help="rows for rake vs minimal (0 skips)")
    ap.add_argument("--samplics-rows", type=int, default=1_000_000, help="rows for SQL vs samplics (0 skips)")
    ap.add_argument("--workdir", type=Path, default=None, help="keep data here (default: a temp dir)")
    a = ap.parse_args(argv)
    print_table(run_bench(a.rows, a.samplics_rows, a.workdir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
