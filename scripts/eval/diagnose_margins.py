"""Diagnose the published intervals of margin domains (every level but cells) against the demo
truth: coverage, mean z, mean z^2, and how much of the mean squared z is bias (mean z)^2 vs spread,
per level x method x indicator, for the published estimate and for the direct and augmented ones.

    .venv/bin/python scripts/eval/diagnose_margins.py [--db target/surveysynth.duckdb] [--kind mean]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from surveysynth.estimation.evaluate import domain_truth

DIMS = ["region", "sector", "size_band"]


def zstats(g: pd.DataFrame, est: str, se: str, lo: str | None, hi: str | None) -> dict:
    d = g[g[est].notna() & g[se].notna() & (g[se] > 0)]
    if d.empty:
        return {}
    e = d[est] - d["true_value"]
    z = e / d[se]
    mz, mz2 = float(z.mean()), float((z * z).mean())
    med = float(z.median())
    out = {
        "n": len(d),
        "mean_z": mz,
        "median_z": med,
        "mean_z2": mz2,
        "bias_part": mz * mz / mz2 if mz2 > 0 else np.nan,
        "rmse_over_se": float(np.sqrt((e * e).mean()) / np.sqrt((d[se] ** 2).mean())),
        "sd_z": float(z.std()),
        "share_abs_z_gt_3": float((z.abs() > 3).mean()),
    }
    if lo:
        cov = (d[lo] <= d["true_value"]) & (d["true_value"] <= d[hi])
        out["coverage"] = float(cov.mean())
        miss = ~cov
        # a miss is 'bias' when it would be covered once the group's median z is taken off
        # (z - median z inside the row's own interval, in SE units), 'se' otherwise (the median: a
        # few rows with z in the hundreds move the mean)
        half = ((d[hi] - d[lo]) / 2 / d[se]).where(lambda s: s > 0)
        zc = (z - med).abs() <= half
        out["misses"] = int(miss.sum())
        out["miss_bias"] = int((miss & zc).sum())
    return out


def table(rows: pd.DataFrame, by: list[str], which: dict) -> pd.DataFrame:
    recs = []
    for k, g in rows.groupby(by):
        for name, cols in which.items():
            s = zstats(g, *cols)
            if s:
                recs.append({**dict(zip(by, k if isinstance(k, tuple) else (k,))), "of": name, **s})
    return pd.DataFrame(recs)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", default=str(ROOT / "target" / "surveysynth.duckdb"))
    ap.add_argument("--truth", default=str(ROOT / "data" / "demo" / "demo_truth.parquet"))
    ap.add_argument("--kind", default="mean")
    a = ap.parse_args(argv)
    with duckdb.connect(a.db, read_only=True) as con:
        de = con.sql("select * from domain_estimates").df()
    rows = domain_truth(de, pd.read_parquet(a.truth), DIMS)
    rows = rows[(rows["domain_level"] != "cell") & (rows["measure"] == a.kind)]
    rows = rows[rows["method"] != "suppressed"]
    pd.set_option("display.width", 200)
    pd.set_option("display.max_rows", 500)
    f = lambda x: f"{x:.3f}"
    which = {
        "published": ("estimate", "se", "ci_low", "ci_high"),
        "direct": ("direct_estimate", "direct_se", "direct_ci_low", "direct_ci_high"),
        "aug_rubin": (
            "augmented_estimate",
            "augmented_se",
            "augmented_ci_low",
            "augmented_ci_high",
        ),
        "aug_mse": ("augmented_estimate", "augmented_rmse", None, None),
    }
    print(f"== margin {a.kind}s: published rows by method x indicator (all margin levels)")
    print(table(rows, ["method", "indicator"], which).to_string(index=False, float_format=f))
    print(f"\n== margin {a.kind}s by level x method")
    print(
        table(rows, ["domain_level", "method"], {"published": which["published"]}).to_string(
            index=False, float_format=f
        )
    )
    print(f"\n== margin {a.kind}s by level x indicator: each method with its own SE")
    print(table(rows, ["domain_level", "indicator"], which).to_string(index=False, float_format=f))
    return 0


if __name__ == "__main__":
    sys.exit(main())
