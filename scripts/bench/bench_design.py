"""Benchmark of the SQL raking (macro surveysynth.rake, compiled by dbt) on DuckDB.

1. Raking N response rows (default 10,000,000) to 3 count margins against the minimal job: one
   DuckDB statement that reads the same rows and writes unit, wave and base weight to a table.
   The rows sit in a DuckDB table, as the project's design_weights does; the raking runs as the
   project's models do: the factor table (rake_factors), then one join pass (rake_apply).
   The raking reads the rows twice (cell sums, then the join to the per-cell factors) and iterates
   on the small cell table, so the ratio should stay near 1-2 whatever the number of sweeps.
2. Raking M rows (default 1,000,000) with the SQL macro against samplics' SampleWeight.rake on the
   same data: time and the largest relative difference of the weights. Two tolerances show that
   the SQL time does not depend on the number of sweeps.

Data are generated here (numpy -> Parquet): 576 cells (12 regions x 12 sectors x 4 size bands) of
skewed size, 4 waves, base weights varying by cell and within cell; margin targets are the cell
populations of a synthetic frame summed over each margin, so the margins are consistent.

    python scripts/bench/bench_design.py                       # 10M and 1M (minutes, 2 cores)
    python scripts/bench/bench_design.py --rows 1000000 --samplics-rows 200000   # quick look
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
import yaml

ROOT = Path(__file__).resolve().parents[2]
#: the demo configuration every build here starts from (the package defaults describe no survey)
DEMO_VARS = yaml.safe_load((ROOT / "demo" / "demo_vars.yml").read_text())
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
                "cell_id": pa.DictionaryArray.from_arrays(
                    pa.array(cell.astype(np.int32)), cell_ids
                ),
                "base_weight": pa.array(dw[cell] * (0.8 + 0.4 * rng.random(n))),
            }
        )
        if writer is None:
            writer = pq.ParquetWriter(path, table.schema, compression="snappy")
        writer.write_table(table)
    writer.close()


def make_margins(con: duckdb.DuckDBPyConnection, units: str, seed: int = 1) -> None:
    """Targets: a synthetic frame's cell populations (base weight sums per wave times a cell
    factor in [0.8, 1.6]: the weights are off, as after nonresponse), summed per margin."""
    rng = np.random.default_rng([seed, 2])
    factor = 0.8 + 0.8 * rng.random(N_CELLS)
    cells = con.sql(
        f"select cell_id, any_value(region) as region, any_value(sector) as sector, "
        f"any_value(size_band) as size_band, sum(base_weight) / count(distinct wave) as w "
        f"from {units} group by cell_id order by cell_id"
    ).df()
    cells["n_population"] = np.maximum(np.rint(cells.w.to_numpy() * factor[: len(cells)]), 1.0)
    con.register("bench_cells", cells)
    con.execute(
        "create or replace table bench_cell_dims as "
        "select cell_id, region, sector, size_band from bench_cells"
    )
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


SPLIT = "-- surveysynth bench: next statement --"


def compile_rake(
    units: str, tol: float, max_iter: int = 200, method: str = "auto"
) -> dict[str, str]:
    """The SQL the calibration models run, for the bench data, compiled by dbt in one
    `dbt compile --inline`: `factors` (macro rake_factors: the sweeps on cell sums, as in the
    project's int_calibration_factors), `apply` (macro rake_apply from the table bench_factors:
    unit, wave and calibrated weight, as wide as the minimal job) and `apply_full` (also base
    weight and g, the weight columns of the project's calibrated_weights)."""
    specs = {
        "counts": [{"id": m[0], "dims": m, "kind": "count"} for m in MARGINS],
        "totals": [],
    }
    common = (
        "units="
        + json.dumps(units)
        + ", weight='base_weight', margin_specs="
        + json.dumps(specs)
        + ", group_by=['wave'], cell_key='cell_id'"
    )
    inline = (
        "{{ surveysynth.rake_factors("
        + common
        + ", margins='bench_margins', cells='bench_cell_dims', "
        f"tol={tol!r}, max_iter={max_iter}, method='{method}') }}}}\n" + SPLIT + "\n"
        "{{ surveysynth.rake_apply("
        + common
        + ", factors='bench_factors', unit_columns=['unit_id'], "
        "weight_columns=['calibrated_weight']) }}\n" + SPLIT + "\n"
        "{{ surveysynth.rake_apply("
        + common
        + ", factors='bench_factors', unit_columns=['unit_id']) }}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            **os.environ,
            "SURVEYSYNTH_DUCKDB_PATH": str(Path(tmp) / "compile.duckdb"),
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        }
        dbt = str(Path(sys.executable).with_name("dbt"))
        out = subprocess.run(
            [
                dbt,
                "--quiet",
                "compile",
                "--project-dir",
                str(ROOT),
                "--profiles-dir",
                str(ROOT),
                "--target-path",
                str(Path(tmp) / "target"),
                "--log-path",
                str(Path(tmp) / "logs"),
                "--vars",
                json.dumps(DEMO_VARS),
                "--inline",
                inline,
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
    if out.returncode != 0:
        raise RuntimeError("dbt compile failed:\n" + out.stdout[-3000:] + out.stderr[-3000:])
    factors, apply, apply_full = out.stdout.split(SPLIT)
    return {"factors": factors, "apply": apply, "apply_full": apply_full}


def _timed(con: duckdb.DuckDBPyConnection, sql: str) -> float:
    t0 = time.perf_counter()
    con.execute(sql)
    return time.perf_counter() - t0


def rake_timed(con: duckdb.DuckDBPyConnection, sql: dict[str, str], full: bool = False) -> dict:
    """Run the raking as the project does (a factor table, then one join pass); seconds of each."""
    t_f = _timed(con, f"create or replace table bench_factors as {sql['factors']}")
    t_a = _timed(con, f"create or replace table rake_out as {sql['apply']}")
    res = {"factors_s": t_f, "apply_s": t_a, "rake_s": t_f + t_a}
    if full:
        res["apply_full_s"] = _timed(
            con, f"create or replace table rake_full as {sql['apply_full']}"
        )
    sweeps = con.execute(
        "select wave, max(iterations) from bench_factors group by wave order by wave"
    ).fetchall()
    res["sweeps"] = "/".join(str(r[1]) for r in sweeps)
    return res


def _load(workdir: Path, rows: int) -> tuple[duckdb.DuckDBPyConnection, str]:
    """The rows as a DuckDB table (as the project's design_weights is), and the margins."""
    data = workdir / f"units_{rows}.parquet"
    if not data.exists():
        make_units(data, rows)
    con = duckdb.connect(str(workdir / "bench.duckdb"))
    con.execute(f"create or replace table bench_units as select * from read_parquet('{data}')")
    make_margins(con, "bench_units")
    return con, "bench_units"


def bench_vs_minimal(workdir: Path, rows: int, tol: float = 1e-6) -> dict:
    con, units = _load(workdir, rows)
    sql = compile_rake(units, tol)
    minimal_sql = (
        f"create or replace table minimal_out as select unit_id, wave, base_weight from {units}"
    )
    # the box may be shared: time the minimal job before and after the raking, take the mean
    before = _timed(con, minimal_sql)
    rk = rake_timed(con, sql, full=True)
    minimal = (before + _timed(con, minimal_sql)) / 2
    n, n_null = con.execute(
        "select count(*), count(*) - count(calibrated_weight) from rake_out"
    ).fetchall()[0]
    assert n_null == 0, f"{n_null} units without a calibrated weight"
    err = con.execute(
        "with sums as ("
        " select r.wave, u.region, u.sector, u.size_band, sum(r.calibrated_weight) as s"
        f" from rake_out r join {units} u using (unit_id) group by all),"
        " got as ("
        " select wave, 'region' as margin_id, region as category, sum(s) as s from sums group by all"
        " union all select wave, 'sector', sector, sum(s) from sums group by all"
        " union all select wave, 'size_band', size_band, sum(s) from sums group by all)"
        " select max(abs(got.s - m.target) / m.target) from got join bench_margins m"
        " using (wave, margin_id, category)"
    ).fetchall()[0][0]
    con.close()
    assert n == rows
    return {
        "case": f"rake {rows:,} rows, 3 margins (sweeps {rk['sweeps']})",
        "minimal_s": minimal,
        **rk,
        "ratio": rk["rake_s"] / minimal,
        "ratio_full": (rk["factors_s"] + rk["apply_full_s"]) / minimal,
        "max_margin_rel_error": err,
    }


def bench_vs_samplics(workdir: Path, rows: int) -> list[dict]:
    import pandas as pd
    from samplics.weighting import SampleWeight

    con, units = _load(workdir, rows)
    out = []
    for tol in (1e-6, 1e-12):
        rk = rake_timed(con, compile_rake(units, tol))
        out.append(
            {
                "case": f"SQL rake {rows:,} rows, tol {tol:g} (sweeps {rk['sweeps']})",
                "seconds": rk["rake_s"],
            }
        )
    got = con.sql("select unit_id, calibrated_weight from rake_out order by unit_id").df()
    assert got.calibrated_weight.notna().all()
    df = con.sql(f"select * from {units}").df()
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
            control={
                d[0]: dict(zip(m[m.margin_id == d[0]].category, m[m.margin_id == d[0]].target))
                for d in MARGINS
            },
            tol=1e-12,
            ctrl_tol=1e-12,
            max_iter=500,
        )
    t_samplics = time.perf_counter() - t0
    ref = pd.Series(weights, index=df.unit_id.to_numpy()).loc[got.unit_id].to_numpy()
    diff = float(np.max(np.abs(got.calibrated_weight.to_numpy() - ref) / ref))
    out.append({"case": f"samplics rake {rows:,} rows, tol 1e-12", "seconds": t_samplics})
    out.append(
        {
            "case": "samplics time / SQL time (tol 1e-12)",
            "seconds": t_samplics / out[1]["seconds"],
            "max_weight_rel_diff": diff,
        }
    )
    return out


def run_bench(
    rows: int = 10_000_000, samplics_rows: int = 1_000_000, workdir: Path | None = None
) -> dict:
    """Both benchmarks; returns their rows (also what the CLI prints)."""
    own = workdir is None
    tmp = tempfile.TemporaryDirectory() if own else None
    wd = Path(tmp.name) if own else Path(workdir)
    wd.mkdir(parents=True, exist_ok=True)
    try:
        result = {
            "minimal": bench_vs_minimal(wd, rows) if rows else None,
            "samplics": bench_vs_samplics(wd, samplics_rows) if samplics_rows else [],
        }
    finally:
        if tmp is not None:
            tmp.cleanup()
    return result


def print_table(result: dict) -> None:
    m = result["minimal"]
    if m:
        print(
            f"{'case':<48} {'minimal s':>9} {'factors s':>9} {'apply s':>8} {'rake s':>7} "
            f"{'ratio':>6} {'ratio full':>10} {'max margin err':>14}"
        )
        print(
            f"{m['case']:<48} {m['minimal_s']:>9.2f} {m['factors_s']:>9.2f} {m['apply_s']:>8.2f} "
            f"{m['rake_s']:>7.2f} {m['ratio']:>6.2f} {m['ratio_full']:>10.2f} "
            f"{m['max_margin_rel_error']:>14.2e}"
        )
        print(
            "  rake = factors (sweeps on cell sums) + apply (one join pass writing unit, wave and"
        )
        print(
            "  calibrated weight, as wide as the minimal job); ratio full also writes base weight and g"
        )
        print()
    if result["samplics"]:
        print(f"{'case':<52} {'value':>10} {'max weight rel diff':>20}")
        for r in result["samplics"]:
            extra = f"{r['max_weight_rel_diff']:>20.2e}" if "max_weight_rel_diff" in r else ""
            label = "x" if r["case"].startswith("samplics time /") else "s"
            print(f"{r['case']:<52} {r['seconds']:>9.2f}{label} {extra}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--rows", type=int, default=10_000_000, help="rows for rake vs minimal (0 skips)"
    )
    ap.add_argument(
        "--samplics-rows", type=int, default=1_000_000, help="rows for SQL vs samplics (0 skips)"
    )
    ap.add_argument(
        "--workdir", type=Path, default=None, help="keep data here (default: a temp dir)"
    )
    a = ap.parse_args(argv)
    print_table(run_bench(a.rows, a.samplics_rows, a.workdir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
