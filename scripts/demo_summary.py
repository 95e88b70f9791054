"""Print what `make demo` built: tables and row counts, cells by support class, quarantine,
and where the DuckDB file is. Sections for later layers print only when their tables exist."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    db = Path(os.environ.get("SURVEYSYNTH_DUCKDB_PATH", ROOT / "target" / "surveysynth.duckdb"))
    if not db.exists():
        print(f"no warehouse at {db}: run `make demo` first", file=sys.stderr)
        return 1
    con = duckdb.connect(str(db), read_only=True)
    tables = con.sql(
        "select table_schema, table_name, table_type from information_schema.tables "
        "where table_schema not in ('information_schema', 'pg_catalog') order by 1, 2"
    ).fetchall()
    names = {t[1] for t in tables}
    print("\n== surveysynth demo: built relations ==")
    for schema, name, kind in tables:
        n = con.sql(f'select count(*) from "{schema}"."{name}"').fetchall()[0][0]
        print(f"  {schema}.{name:<34} {kind.lower():<10} {n:>10,} rows")

    if "cell_support" in names:
        print("\n== cells x waves by support class ==")
        rows = con.sql(
            "select support_class, count(*), sum(n_respondents), sum(n_population) "
            "from cell_support group by 1 order by 1"
        ).fetchall()
        print(f"  {'class':<10} {'cells':>7} {'respondents':>12} {'population':>12}")
        for cls, n, r, p in rows:
            print(f"  {cls:<10} {n:>7,} {int(r or 0):>12,} {int(p or 0):>12,}")
    if "quarantined_responses" in names:
        q = con.sql(
            "select problem, count(*) from quarantined_responses group by 1 order by 1"
        ).fetchall()
        total = sum(n for _, n in q)
        print(f"\n== quarantined response problems: {total} ==")
        for problem, n in q:
            print(f"  {problem:<24} {n:>6}")
    if "calibration_convergence" in names:
        print("\n== calibration ==")
        for row in con.sql("select * from calibration_convergence order by 1").fetchall():
            print("  " + ", ".join(str(v) for v in row))
    for metrics in ("disclosure_metrics", "fidelity_metrics", "backtest_summary"):
        if metrics in names:
            print(f"\n== {metrics} ==")
            print(con.sql(f"select * from {metrics}").df().to_string(index=False))
    print(f"\nDuckDB warehouse: {db}")
    print(f"Query it: duckdb {db}  (or python -c \"import duckdb; duckdb.connect('{db}')\")")
    return 0


if __name__ == "__main__":
    sys.exit(main())
