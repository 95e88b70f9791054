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

    def _locate(self) -> dict[str, str]:
        rows = self.con.execute(
            "select table_schema, table_name from information_schema.tables "
            "where table_catalog = current_database() order by table_schema"
        ).fetchall()
        found: dict[str, list[str]] = {}
        for schema, name in rows:
            found.setdefault(name, []).append(schema)
        # where a name lives in several schemas, prefer the schema holding the release
        home = found.get("release_manifest", found.get("cell_support", [None]))[0]
        return {n: (home if home in s else s[0]) for n, s in found.items()}

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
                    for r in self.con.execute(
                        "select column_name from information_schema.columns where "
                        "table_schema = ? and table_name = ? order by ordinal_position",
                        [schema, name],
                    ).fetchall()
                ]
            )
        return self._columns[name]

    def sql(self, query: str, params: list | None = None) -> pd.DataFrame:
        return self.con.execute(query, params or []).df()

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
            else self.con.execute(f"select count(*) from {self.rel(name)}").fetchone()[0]
        )

    def cell_dims(self) -> list[str]:
        """The cell dimensions: cell_support's columns before cell_id (or all it has that are
        not support measures), else the leading text columns of the estimates."""
        cols = self.columns("cell_support")
        if "cell_id" in cols:
            return cols[: cols.index("cell_id")]
        if cols:
            return [c for c in cols if c not in SUPPORT_COLUMNS]
        est = self.columns("domain_estimates_release") or self.columns("domain_estimates")
        return est[: est.index("cell_id")] if "cell_id" in est else []

    def manifest(self) -> dict[str, Any]:
        """The release manifest's row (JSON columns parsed), else the synthesis manifest's."""
        for name in ("release_manifest", "synthesis_manifest"):
            df = self.table(name)
            if df is not None and len(df):
                row = df.iloc[-1].to_dict()
                return {"_source": name, **{k: parse_json(v) for k, v in row.items()}}
        return {"_source": None}


def parse_json(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value
