"""Time disclosure_metrics at scale: 100k synthetic rows against 100k real rows.

    python scripts/bench/bench_risk.py [--rows 100000] [--workers 1] [--seed 7]

The data imitate the demo survey (12 regions x 12 sectors x 4 size bands, skewed turnover,
employee counts, ordinal and binary outcomes, item nonresponse). Two layouts are timed side
by side: real = 50k train + 50k holdout (100k real rows in all), and 100k train + 100k
holdout. The synthetic rows are honest draws from the same generator, so the run also
shows the metrics' null values at this size. The target is 60 s on a 2-core machine.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from surveysynth.checks.risk import disclosure_metrics

TARGET_S = 60.0
SPEC = {
    "region": {"type": "categorical"},
    "sector": {"type": "categorical"},
    "size_band": {"type": "ordinal", "levels": ["0-9", "10-49", "50-249", "250+"]},
    "trading_status": {"type": "categorical"},
    "turnover_change": {"type": "ordinal", "levels": ["decreased", "stayed_same", "increased"]},
    "turnover": {"type": "continuous"},
    "employees": {"type": "count"},
    "cash_reserves": {
        "type": "ordinal",
        "levels": ["none", "under_1_month", "1_to_3_months", "3_to_6_months", "over_6_months"],
    },
    "applied_finance": {"type": "binary"},
}
QIS = ["region", "sector", "size_band", "employees"]
SENSITIVE = ["turnover", "applied_finance"]


def demo_like(n: int, rng: np.random.Generator) -> pd.DataFrame:
    region = rng.integers(0, 12, n)
    sector = rng.integers(0, 12, n)
    band = rng.choice(4, n, p=[0.7, 0.2, 0.08, 0.02])
    lo, hi = np.array([0, 10, 50, 250]), np.array([9, 49, 249, 5000])
    employees = np.floor(lo[band] + (hi[band] - lo[band]) * rng.beta(1, 4, n)).astype(float)
    turnover = np.round(np.exp(rng.normal(4 + 0.9 * np.log1p(employees) + 0.05 * sector, 0.8)), 1)
    paused = rng.random(n) < 0.1 + 0.01 * region
    finance = (rng.random(n) < 0.2 + 0.3 * paused).astype(float)
    df = pd.DataFrame(
        {
            "region": np.array([f"r{i:02d}" for i in range(12)])[region],
            "sector": np.array([f"s{i:02d}" for i in range(12)])[sector],
            "size_band": np.array(SPEC["size_band"]["levels"])[band],
            "trading_status": np.where(
                paused, "paused", np.where(rng.random(n) < 0.03, "closed", "trading")
            ),
            "turnover_change": np.array(SPEC["turnover_change"]["levels"])[rng.integers(0, 3, n)],
            "turnover": np.where(paused, 0.0, turnover),
            "employees": employees,
            "cash_reserves": np.array(SPEC["cash_reserves"]["levels"])[rng.integers(0, 5, n)],
            "applied_finance": finance,
        }
    )
    for col, rate in (
        ("turnover", 0.1),
        ("employees", 0.05),
        ("cash_reserves", 0.08),
        ("applied_finance", 0.07),
    ):
        df.loc[rng.random(n) < rate, col] = None
    return df


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000, help="synthetic rows (and real rows)")
    ap.add_argument("--workers", type=int, default=1, help="k-d tree query threads for big blocks")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    n = args.rows
    synthetic = demo_like(n, rng)
    layouts = [("real = train + holdout", n // 2, n // 2), ("train = holdout = synthetic", n, n)]
    print(
        f"disclosure_metrics, {n} synthetic rows, workers={args.workers}, target {TARGET_S:.0f} s"
    )
    print(f"{'layout':<30} {'train':>8} {'holdout':>8} {'seconds':>8} {'/target':>8}")
    report = None
    for name, nt, nh in layouts:
        train, holdout = demo_like(nt, rng), demo_like(nh, rng)
        t0 = time.perf_counter()
        report = disclosure_metrics(
            train, holdout, synthetic, QIS, SENSITIVE, SPEC, workers=args.workers
        )
        dt = time.perf_counter() - t0
        print(f"{name:<30} {nt:>8} {nh:>8} {dt:>8.1f} {dt / TARGET_S:>8.2f}")
    assert report is not None
    print()
    print("metric values on the last layout (honest synthetic rows: every gate should pass)")
    with pd.option_context("display.width", 160, "display.max_colwidth", 60):
        print(report[["metric", "column", "value", "threshold", "passed"]].to_string(index=False))


if __name__ == "__main__":
    main()
