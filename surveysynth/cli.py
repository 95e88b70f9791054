"""The `surveysynth` command: `surveysynth report --db target/surveysynth.duckdb --out report.html`."""

from __future__ import annotations

import argparse
import logging
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="surveysynth")
    sub = parser.add_subparsers(dest="command", required=True)
    rep = sub.add_parser("report", help="write the release report (one self-contained HTML file)")
    rep.add_argument("--db", default="target/surveysynth.duckdb", help="the DuckDB warehouse")
    rep.add_argument("--out", default=None, help="output file (default: report.html beside --db)")
    rep.add_argument("--run-results", default=None, help="dbt run_results.json (default: found)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="surveysynth | %(message)s")
    from pathlib import Path

    from surveysynth.report import build_report

    out = args.out or str(Path(args.db).with_name("report.html"))
    try:
        build_report(args.db, out, run_results=args.run_results)
    except FileNotFoundError as exc:
        print(f"surveysynth report: {exc}", file=sys.stderr)
        return 2
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
