"""Read-only access to a built warehouse: relations found by name in whichever schema holds
them, columns discovered, never assumed (a missing table or column reads as absent)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

# columns of cell_support that are never cell dimensions
SUPPORT_COLUMNS = {
    "cell_id",
    "wave",
    "n_respondents",
    "n_population",
    "sum_weights",
    "n_effective",
    "weight_cv",
    "support_class",
    "reason",
}


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class Warehouse:
    """A DuckDB file opened read-only; ``rel(name)`` is the qualified relation or None."""

    def __init__(self, path: str | Path):
        import duckdb

        self.path = Path(path)
        if not self.path.exists():
            raise FileNotFoundError(f"no warehouse at {self.path}")
        self.con = duckdb.connect(str(self.path), read_only=True)
        self._schemas = self._locate()
        self._columns: dict[str, list[str]] = {}
        self._manifest: dict[str, Any] | None = None

    def _locate(self) -> dict[str, str]:
        rows = self.con.execute(
            "select table_schema, table_name from information_schema.tables "
            "where table_catalog = current_database() order by table_schema"
        ).fetchall()
        found: dict[str, list[str]] = {}
        for schema, name in rows:
            # a staged release is not published: read as published, a refused first release
            # (its staged tables failing their tests) showed as "released" in the report
            if "staging" not in schema:
                found.setdefault(name, []).append(schema)

        # a name in several schemas: the schema of the published release first
        def rank(schema: str, home: str | None = None) -> tuple:
            return (schema != home, schema)

        homes = sorted(found.get("release_manifest", []), key=rank)
        home = homes[0] if homes else None
        return {n: min(s, key=lambda x: rank(x, home)) for n, s in found.items()}

    def close(self) -> None:
        self.con.close()

    def has(self, name: str) -> bool:
        return name in self._schemas

    def rel(self, name: str) -> str | None:
        schema = self._schemas.get(name)
        return None if schema is None else f"{quote(schema)}.{quote(name)}"

    def columns(self, name: str) -> list[str]:
        if name not in self._columns:
            schema = self._schemas.get(name)
            self._columns[name] = (
                []
                if schema is None
                else [
                    r[0]
                    for r in self.sql(
                        "select column_name from information_schema.columns where "
                        "table_schema = ? and table_name = ? order by ordinal_position",
                        [schema, name],
                    ).itertuples(index=False)
                ]
            )
        return self._columns[name]

    def sql(self, query: str, params: list | None = None) -> pd.DataFrame:
        cur = self.con.cursor()  # a cursor per query: safe from a dashboard's several threads
        try:
            return cur.execute(query, params or []).df()
        finally:
            cur.close()

    def table(self, name: str, columns: list[str] | None = None, limit: int | None = None):
        """The relation as a DataFrame (only the ``columns`` it has), or None when absent."""
        if not self.has(name):
            return None
        have = self.columns(name)
        cols = [c for c in (columns or have) if c in have]
        if not cols:
            return pd.DataFrame()
        q = f"select {', '.join(quote(c) for c in cols)} from {self.rel(name)}"
        return self.sql(q + (f" limit {int(limit)}" if limit else ""))

    def count(self, name: str) -> int | None:
        return (
            None
            if not self.has(name)
            else int(self.sql(f"select count(*) as n from {self.rel(name)}")["n"].iloc[0])
        )

    def cell_dims(self, table: str | None = None) -> list[str]:
        """The cell dimensions (those of ``table`` when given): the manifest's ss_cell_dims
        where recorded, else cell_support's columns before cell_id (ids excluded)."""
        cols = self.columns(table) if table else self.columns("cell_support")
        params = self.manifest().get("parameters")
        listed = params.get("ss_cell_dims") if isinstance(params, dict) else None
        if isinstance(listed, list) and listed and all(d in cols for d in listed):
            return list(listed)
        for marker in ("cell_id", "domain_level"):
            if marker in cols:
                cols = cols[: cols.index(marker)]
                break
        return [c for c in cols if c not in SUPPORT_COLUMNS and not is_id(c)]

    def manifest(self) -> dict[str, Any]:
        """The release manifest's row (JSON columns parsed), else the synthesis manifest's."""
        if self._manifest is None:
            self._manifest = self._read_manifest()
        return self._manifest

    def _read_manifest(self) -> dict[str, Any]:
        for name in ("release_manifest", "synthesis_manifest"):
            df = self.table(name)
            if df is not None and len(df):
                row = df.iloc[-1].to_dict()
                return {"_source": name, **{k: parse_json(v) for k, v in row.items()}}
        return {"_source": None}


def is_id(column: str) -> bool:
    """A provenance or key column, never a cell dimension."""
    return column.endswith("_id") or column.startswith(("release_", "synth_", "_"))


def parse_json(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value
