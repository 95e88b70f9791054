"""Print what `make demo` built: tables and row counts, cells by support class, quarantine,
and where the DuckDB file is. Sections for later layers print only when their tables exist."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[2]


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
    # the gates' metric tables: value against threshold (the detail column says how each was read)
    gate_cols = {
        "disclosure_metrics": 'implicate, metric, "column", round(value, 4) as value, comparison, '
        "round(threshold, 4) as threshold, passed",
        "fidelity_metrics": 'metric, "column", round(value, 4) as value, comparison, '
        "round(threshold, 4) as threshold, passed",
    }
    for metrics in ("disclosure_metrics", "fidelity_metrics", "backtest_summary"):
        if metrics in names:
            print(f"\n== {metrics} ==")
            cols = gate_cols.get(metrics, "*")
            print(con.sql(f"select {cols} from {metrics}").df().to_string(index=False))
    if "table_suppression" in names:
        print("\n== protected tables: cells by status (primary and secondary are suppressed) ==")
        print(
            con.sql(
                "select table_name, wave, count(*) filter (where status = 'published') as published, "
                "count(*) filter (where status = 'primary') as primary_suppressed, "
                "count(*) filter (where status = 'secondary') as secondary_suppressed "
                "from table_suppression group by all order by all"
            )
            .df()
            .to_string(index=False)
        )
    if "suppression_audit" in names:
        a = con.sql(
            "select count(*) as n, count(*) filter (where not protected) as short "
            "from suppression_audit"
        ).fetchall()[0]
        print(f"  audit: {a[0]} suppressed cells bounded by LP, {a[1]} short of their protection")
    if "domain_estimates_protected" in names:
        print("\n== domain estimates by disclosure status ==")
        print(
            con.sql(
                "select sdc_status, method, count(*) as n from domain_estimates_protected "
                "group by all order by all"
            )
            .df()
            .to_string(index=False)
        )
    if "release_gates" in names:
        print("\n== release gates (the release tables are rebuilt only when all pass) ==")
        print(
            con.sql(
                "select gate, gate_test, n_checked, n_failing, passed from release_gates "
                "order by gate_order"
            )
            .df()
            .to_string(index=False)
        )
    # the published release (schema <target>_release; <target>_release_staging holds it staged)
    released = [s for s, n, _ in tables if n == "release_manifest" and s.endswith("_release")]
    if released:
        rid, run, ok = con.sql(
            "select release_id, synth_run_id, all_gates_passed "
            f'from "{released[0]}".release_manifest'
        ).fetchall()[0]
        print(
            f"  release {rid} in schema {released[0]} (synthesis run {run}), all gates passed: {ok}"
        )
    print(f"\nDuckDB warehouse: {db}")
    print(f"Query it: duckdb {db}  (or python -c \"import duckdb; duckdb.connect('{db}')\")")
    return 0


if __name__ == "__main__":
    sys.exit(main())
