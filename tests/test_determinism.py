"""Identical reruns: the same inputs and seed give byte-identical tables in a fresh DuckDB warehouse,
whatever dbt's thread count; another seed changes the synthetic tables.

The small survey (tests/small_survey.py) is built three times, each in its own warehouse: with the
same seed under ``--threads 1`` and ``--threads 2``, and with another ``ss_seed``. Every model runs
(synthesis, back-test, checks, the release); only the sizes of the checks are cut (implicates,
back-test cells and replicates, permutations, rows) so that the three builds fit in the test's time.
Every relation of every schema the build writes is hashed over its rows in a fixed order (each row's
text, sorted), so a difference in any bit of any value shows."""

from __future__ import annotations

import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import duckdb
from harness import demo_vars, run_dbt
from small_survey import small_world

#: Columns that legitimately differ between runs, with the reason.
WALL_CLOCK = {
    # seconds each synthesis step took (provenance of the run, not of its output)
    ("synthesis_manifest", "timings"),
}
#: Tables drawn from the seed: another seed must change them.
SYNTHETIC = ("synthetic_microdata", "augmented_microdata", "synthetic_microdata_release")
SMALL = {
    "ss_synth_m": 2,
    "ss_backtest_cells": 6,
    "ss_backtest_repeats": 1,
    "ss_backtest_max_records": 100,
    "ss_risk_permutations": 19,
    "ss_risk_max_rows": 3000,
    "ss_fidelity_permutations": 19,
    "ss_fidelity_pmse_rows": 2000,
}


def _build(root: Path, name: str, threads: int, **extra):
    work = root / name
    vars_ = demo_vars(small_world(), work, **SMALL, **extra)
    res = run_dbt(work, vars=vars_, extra_args=["--threads", str(threads)])
    assert res.ok, f"{name}: dbt build failed\n{res.output[-4000:]}"
    return res.db_path


def _relation_sql(con, schema: str, table: str) -> str:
    cols = con.execute(
        "select column_name from information_schema.columns "
        "where table_schema = ? and table_name = ? order by ordinal_position",
        [schema, table],
    ).fetchall()
    keep = [c for (c,) in cols if (table, c) not in WALL_CLOCK]
    sel = ", ".join('"' + c.replace('"', '""') + '"' for c in keep)
    return f'select {sel} from "{schema}"."{table}"'


def table_hashes(db: Path) -> dict[str, tuple[int, str]]:
    """schema.table -> (rows, md5 of the rows' text sorted) for every relation in the warehouse."""
    out = {}
    with duckdb.connect(str(db), read_only=True) as con:
        rels = con.execute(
            "select table_schema, table_name from information_schema.tables "
            "where table_catalog = current_database() order by 1, 2"
        ).fetchall()
        for schema, table in rels:
            rows = f"select cast(x as varchar) as r from ({_relation_sql(con, schema, table)}) x"
            q = f"select count(*), md5(coalesce(string_agg(r, chr(10) order by r), '')) from ({rows})"
            out[f"{schema}.{table}"] = tuple(con.execute(q).fetchone())
    return out


def test_identical_reruns_and_seed_changes_synthesis():
    root = Path(tempfile.mkdtemp(prefix="ss_determinism_"))
    try:
        small_world()
        with ThreadPoolExecutor(3) as pool:
            one = pool.submit(_build, root, "threads1", 1)
            two = pool.submit(_build, root, "threads2", 2)
            other = pool.submit(_build, root, "seed2", 2, ss_seed=7)
            h1, h2, h3 = (table_hashes(f.result()) for f in (one, two, other))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    assert len(h1) > 40, sorted(h1)
    assert set(h1) == set(h2), set(h1) ^ set(h2)
    differ = sorted(k for k in h1 if h1[k] != h2[k])
    assert not differ, f"{len(differ)} of {len(h1)} tables differ between reruns: {differ}"
    for name in SYNTHETIC:
        keys = [k for k in h1 if k.split(".")[1] == name]
        assert keys, f"{name} was not built"
        same = [k for k in keys if h1[k] == h3[k]]
        assert not same, f"another ss_seed left {same} unchanged"
