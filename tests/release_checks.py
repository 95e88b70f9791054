"""What a release must look like, read from a DuckDB warehouse file: the tables of the release
schema, one release id on every row, and a manifest that matches the tables it signs off.

Shared by tests/test_release_safety.py and tests/test_release_atomic.py.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import duckdb
import pandas as pd

RELEASE_SCHEMA = "main_release"
STAGING_SCHEMA = "main_release_staging"
DATA_TABLES = (
    "synthetic_microdata_release",
    "domain_estimates_release",
    "published_tables_release",
)
RELEASE_TABLES = (*DATA_TABLES, "release_manifest")


def schema_tables(con, schema: str) -> dict[str, str]:
    """Relation name -> type ('BASE TABLE', 'VIEW') of every relation in ``schema``."""
    rows = con.execute(
        "select table_name, table_type from information_schema.tables where table_schema = ?",
        [schema],
    ).fetchall()
    return dict(rows)


def read_table(con, schema: str, table: str) -> pd.DataFrame:
    return con.sql(f'select * from "{schema}"."{table}"').df()


def snapshot(db: Path, schema: str = RELEASE_SCHEMA) -> dict[str, tuple[int, str]]:
    """Rows and a hash of the ordered data (column names and types included) of every relation in
    ``schema``: equal snapshots mean the release did not change at all."""
    out = {}
    with duckdb.connect(str(db), read_only=True) as con:
        for t in sorted(schema_tables(con, schema)):
            df = con.sql(f'select * from "{schema}"."{t}" order by all').df()
            h = hashlib.sha256(repr([(c, str(df[c].dtype)) for c in df.columns]).encode())
            h.update(pd.util.hash_pandas_object(df, index=False).to_numpy().tobytes())
            out[t] = (len(df), h.hexdigest())
    return out


def release_problems(db: Path, schema: str = RELEASE_SCHEMA) -> list[str]:
    """Every way the release in ``schema`` is not one whole release (empty when it is): the schema
    holds exactly the four release tables; the manifest has one row; every row of every released
    table carries the manifest's release id; each table's rows and content hash are the ones the
    manifest recorded."""
    from surveysynth.seeding import content_hash

    problems = []
    with duckdb.connect(str(db), read_only=True) as con:
        found = schema_tables(con, schema)
        if set(found) != set(RELEASE_TABLES):
            return [
                f"{schema} holds {sorted(found)}, not the release tables {sorted(RELEASE_TABLES)}"
            ]
        problems += [f"{t} is a {k}, not a table" for t, k in found.items() if k != "BASE TABLE"]
        manifest = read_table(con, schema, "release_manifest")
        if len(manifest) != 1:
            return problems + [f"release_manifest has {len(manifest)} rows"]
        rid = manifest.release_id[0]
        recorded = json.loads(manifest.released_tables[0])
        for t in DATA_TABLES:
            df = read_table(con, schema, t)
            ids = set(df.release_id.astype(object).where(df.release_id.notna(), None))
            if ids - {rid}:
                problems.append(f"{t} carries release ids {sorted(map(str, ids))}, manifest {rid}")
            if recorded.get(t, {}).get("rows") != len(df):
                problems.append(f"{t}: {len(df)} rows, manifest says {recorded.get(t)}")
            elif recorded[t]["content_hash"] != content_hash(df):
                problems.append(f"{t}: content differs from the manifest's hash")
    return problems


def release_id(db: Path, schema: str = RELEASE_SCHEMA) -> str:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(f'select release_id from "{schema}".release_manifest').fetchone()[0]
