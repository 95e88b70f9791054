"""Score the augmented estimates of a demo build against the demo world's truth.

Over sparse cells x waves x indicators (cell rows of domain_estimates with synthetic records and a
direct estimate): RMSE of the augmented estimates against the RMSE of the direct estimates, and the
empirical coverage of the nominal 95% augmented intervals; then the back-test gate
(backtest_summary). Exits non-zero when the ratio is above --max-ratio or the coverage is outside
[--min-coverage, --max-coverage].

    .venv/bin/python scripts/eval/eval_augmented.py --build     # dbt build (truth var set), then score
    .venv/bin/python scripts/eval/eval_augmented.py             # score target/surveysynth.duckdb as built
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[2]
#: the demo configuration every build here starts from (the package defaults describe no survey)
DEMO_VARS = yaml.safe_load((ROOT / "demo" / "demo_vars.yml").read_text())
sys.path.insert(0, str(ROOT))

from surveysynth.estimation.evaluate import (
    by_indicator,
    domain_truth,
    published_coverage,
    published_rmse,
    score,
    share_intervals_outside,
    sparse_rows,
)

DIMS = ["region", "sector", "size_band"]


def build(db: Path, truth: Path) -> None:
    env = {**os.environ, "DBT_PROFILES_DIR": str(ROOT), "SURVEYSYNTH_DUCKDB_PATH": str(db)}
    cmd = [
        str(Path(sys.executable).with_name("dbt")),
        "build",
        "--vars",
        json.dumps({**DEMO_VARS, "ss_backtest_truth": f"file:{truth}"}),
    ]
    subprocess.run(cmd, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", default=str(ROOT / "target" / "surveysynth.duckdb"))
    ap.add_argument("--truth", default=str(ROOT / "data" / "demo" / "demo_truth.parquet"))
    ap.add_argument(
        "--build", action="store_true", help="run dbt build first (ss_backtest_truth set)"
    )
    ap.add_argument("--max-ratio", type=float, default=0.6)
    ap.add_argument("--min-coverage", type=float, default=0.90)
    ap.add_argument("--max-coverage", type=float, default=0.98)
    a = ap.parse_args(argv)
    if a.build:
        build(Path(a.db), Path(a.truth))
    pd.set_option("display.width", 160)
    with duckdb.connect(a.db, read_only=True) as con:
        de = con.sql("select * from domain_estimates").df()
        summary = con.sql(
            "select metric, direction, value, threshold, passed, reference, sabotage "
            "from backtest_summary order by ord"
        ).df()
    truth = pd.read_parquet(a.truth)
    rows = sparse_rows(de, truth, DIMS)
    table = score(
        rows,
        {
            "augmented": ("augmented_estimate", "augmented_ci_low", "augmented_ci_high"),
            "direct": ("direct_estimate", "direct_ci_low", "direct_ci_high"),
        },
    )
    ratio = table.loc[0, "rmse_scaled"] / table.loc[1, "rmse_scaled"]
    cover = table.loc[0, "coverage_95"]
    print(
        f"Sparse cells x waves x indicators vs demo_truth: {len(rows)} rows, "
        f"{rows[['cell_id', 'wave']].drop_duplicates().shape[0]} cell x waves"
    )
    print(
        table.drop(columns=[c for c in table.columns if c.startswith("rmse_ratio")]).to_string(
            index=False
        )
    )
    print(f"\nRMSE ratio augmented / direct: {ratio:.3f}  (must be <= {a.max_ratio})")
    print(
        f"Coverage of nominal 95% augmented intervals: {cover:.3f}  "
        f"(must be in [{a.min_coverage}, {a.max_coverage}])"
    )
    print(
        f"df of the intervals: {sorted(rows['augmented_df'].dropna().unique().round(2).tolist())[:5]} "
        f"(null = b is 0: {int(rows['augmented_df'].isna().sum())} rows)"
    )
    print("\nBy indicator:")
    print(by_indicator(rows).to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    print("\nBack-test gate (backtest_summary):")
    print(summary.to_string(index=False, float_format=lambda x: f"{x:.4f}"))
    ok = ratio <= a.max_ratio and a.min_coverage <= cover <= a.max_coverage
    ok_published = report_published(de, truth)
    return 0 if ok and ok_published else 1


def report_published(de: pd.DataFrame, truth: pd.DataFrame) -> bool:
    """The published estimates (every domain level) against the truth, with the targets: 95%
    intervals cover 93-97% in every support class for means and shares, no indicator below 90%, no
    share interval outside [0, 1], published RMSE at most min(direct, augmented) per class."""
    rows = domain_truth(de, truth, DIMS)
    f3 = "{:.3f}".format
    print(f"\nPublished estimates vs demo_truth ({len(rows)} domain x wave x indicator rows)")
    print("methods:", de["method"].value_counts().to_dict())
    if "basis" in de.columns:
        print("basis:", de["basis"].value_counts().to_dict())
    cov = published_coverage(rows, ["class", "kind"])
    print("\nCoverage of published 95% intervals by support class (domain level for margins):")
    print(cov.to_string(index=False, float_format=f3))
    cells = rows[rows["domain_level"] == "cell"]
    ind = published_coverage(rows, ["indicator"])
    print("\nBy indicator (every domain level):")
    print(ind.to_string(index=False, float_format=f3))
    ind_c = published_coverage(cells, ["indicator"])
    print("\nBy indicator (cells):")
    print(ind_c.to_string(index=False, float_format=f3))
    ind_cells = published_coverage(cells, ["indicator", "class"])
    print("\nBy indicator x support class (cells):")
    print(ind_cells.to_string(index=False, float_format=f3))
    meth = published_coverage(rows.assign(m=rows["method"]), ["class", "m"])
    print("\nBy support class x method:")
    print(meth.to_string(index=False, float_format=f3))
    outside = share_intervals_outside(rows)
    print("\nShare intervals outside [0, 1]:", outside)
    rm = published_rmse(rows)
    print("\nRMSE (scaled) of published vs direct and augmented, rows with all three:")
    print(rm.to_string(index=False, float_format=f3))
    is_cell = cov["class"].isin(SUPPORT_CLASSES)
    rm_cell = rm["class"].isin(SUPPORT_CLASSES)
    checks = {
        "cells: coverage 93-97% per support class x kind": _between(cov[is_cell]),
        "cells: no indicator below 90%": bool((ind_c["coverage_95"] >= 0.90).all()),
        "cells: published RMSE <= best per support class": _not_worse(rm[rm_cell]),
        "no published share interval outside [0, 1]": outside.get("published", 0) == 0,
    }
    margins = {
        "margins: coverage 93-97% per level x kind": _between(cov[~is_cell]),
        "every level: no indicator below 90%": bool((ind["coverage_95"] >= 0.90).all()),
        "margins: published RMSE <= best per level": _not_worse(rm[~rm_cell]),
    }
    print("\nTargets (support classes are cells; margins listed apart):")
    for name, passed in {**checks, **margins}.items():
        print(f"  {'PASS' if passed else 'FAIL'}  {name}")
    return all(checks.values()) and all(margins.values())


SUPPORT_CLASSES = ("supported", "sparse", "empty")


def _between(cov: pd.DataFrame) -> bool:
    return bool(cov["coverage_95"].dropna().between(0.93, 0.97).all())


def _not_worse(rm: pd.DataFrame) -> bool:
    return bool((rm["published_over_best"] <= 1.0 + 1e-9).all())


if __name__ == "__main__":
    sys.exit(main())
