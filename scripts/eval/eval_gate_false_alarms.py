"""How often do the gates fail when nothing is wrong? Measured by simulation, at the demo size and
at about 200 responses.

    .venv/bin/python scripts/eval/eval_gate_false_alarms.py --builds 10 --null-reps 20

Two measurements, printed as tables of rates with 95% upper bounds (Clopper-Pearson):

1. Builds (``--builds`` per size): a fresh survey world per replicate (scripts/demo/generate_demo.py
   with its own seed; the ~200-response survey is a seeded sample of 155 units of a 6,000-unit
   world, as tests/small_survey.py), built with the project's defaults and the library's honest
   synthesizer, no truth table. Reported: builds that failed, and per gate (release_gates) how
   often it failed; and how often the statistical gates could not judge (not_assessable).
2. The exact null (``--null-reps`` per table and size): real tables (eusilc, CPS1988 from
   scripts/eval/real_data.py) split at random by unit into the rows the synthesizer saw, the
   holdout and fresh rows that stand in for a perfect synthesizer's records; the fidelity and the
   disclosure gates judged on them (their stated false-alarm rate: ss_gate_alpha).

Slow: a demo-size build takes about a minute on two cores, a ~200-response build a little less.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import pandas as pd
from scipy import stats

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "scripts" / "eval"))

from harness import demo_vars, generate_demo, run_dbt
from small_survey import UNITS, subsample_units

GATE_METRICS = {
    "fidelity": ("fidelity_metrics", "fidelity_gate"),
    "disclosure_risk": ("disclosure_metrics", "disclosure_attacks"),
}


def upper(k: int, n: int, level: float = 0.95) -> float:
    """One-sided Clopper-Pearson upper bound of a rate k / n."""
    return 1.0 if k >= n else float(stats.beta.ppf(level, k + 1, n - k))


def world(size: str, seed: int, where: Path) -> Path:
    if size == "demo":
        return generate_demo(where / "data", "--seed", str(seed))
    big = generate_demo(
        where / "world",
        "--seed",
        str(seed),
        "--frame-size",
        "6000",
        "--target-responses-per-wave",
        "100",
        "--waves",
        "2",
    )
    return subsample_units(big, where / "data", UNITS, seed=seed)


def _query(res, sql: str) -> pd.DataFrame | None:
    try:
        return res.query(sql)
    except duckdb.Error:
        return None


def one_build(size: str, seed: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="ss_fa_") as tmp:
        where = Path(tmp)
        data = world(size, seed, where)
        t0 = time.monotonic()
        res = run_dbt(where / "build", vars=demo_vars(data, where / "build"))
        out = {"size": size, "seed": seed, "ok": res.ok, "seconds": time.monotonic() - t0}
        gates = _query(res, "select gate, n_failing from release_gates")
        if gates is not None:
            out["failed_gates"] = sorted(gates.loc[gates.n_failing > 0, "gate"])
        else:  # release_gates not built: the failing tests instead
            st = res.statuses()
            out["failed_gates"] = sorted(k for k, v in st.items() if v in ("fail", "error"))
        na = []
        for gate, model in [
            *((g, m) for g, (m, _) in GATE_METRICS.items()),
            ("backtest", "backtest_summary"),
        ]:
            m = _query(res, f"select status from {model}")
            if m is not None and (m.status == "not_assessable").any():
                na.append(gate)
        out["not_assessable"] = na
        return out


def builds(sizes: list[str], n: int, seed0: int = 1000) -> pd.DataFrame:
    rows = []
    for size in sizes:
        for rep in range(n):
            r = one_build(size, seed0 + rep)
            print(json.dumps(r), flush=True)
            rows.append(r)
    return pd.DataFrame(rows)


def exact_null(sizes: list[str], reps: int) -> pd.DataFrame:
    from test_gates_reference import _split

    from surveysynth.checks.fidelity_gate import fidelity_gate
    from surveysynth.checks.risk_gate import disclosure_gate

    rows = []
    for name in ("eusilc", "CPS1988"):
        for size in sizes:
            n = None if size == "demo" else 200
            for rep in range(reps):
                v, seen, weights, fresh = _split(name, n, seed=100 + rep)
                fid = fidelity_gate(v, seen, weights, fresh)
                roles = seen[["_row_id", "risk_role"]]
                dis = disclosure_gate(v, seen.drop(columns="risk_role"), roles, fresh, fresh)
                rows.append(
                    {
                        "table": name,
                        "size": "full" if n is None else "~200",
                        "fidelity_failed": bool((fid.status == "fail").any()),
                        "disclosure_failed": bool((dis.status == "fail").any()),
                        "fidelity_p": float(
                            fid.loc[fid.metric == "fidelity_gate", "value"].iloc[0]
                        ),
                    }
                )
    return pd.DataFrame(rows)


def report_builds(df: pd.DataFrame) -> None:
    print("\nBuilds with the honest synthesizer (defaults, no truth table)")
    print(
        f"{'size':>6} {'builds':>6} {'failed':>6} {'rate':>6} {'95% up':>7}  per gate / not assessable"
    )
    for size, g in df.groupby("size", sort=False):
        k, n = int((~g.ok).sum()), len(g)
        per = pd.Series([x for f in g.failed_gates for x in f]).value_counts().to_dict()
        na = pd.Series([x for f in g.not_assessable for x in f]).value_counts().to_dict()
        print(f"{size:>6} {n:>6} {k:>6} {k / n:>6.2f} {upper(k, n):>7.2f}  {per} / {na}")


def report_null(df: pd.DataFrame) -> None:
    print("\nExact null: fresh real rows as the synthetic records (ss_gate_alpha = 0.01 each)")
    print(f"{'table':>10} {'size':>5} {'reps':>5} {'fidelity':>9} {'disclosure':>11} {'mean p':>7}")
    for (t, s), g in df.groupby(["table", "size"], sort=False):
        n = len(g)
        f, d = int(g.fidelity_failed.sum()), int(g.disclosure_failed.sum())
        print(
            f"{t:>10} {s:>5} {n:>5} {f:>3} ({upper(f, n):.2f}) {d:>4} ({upper(d, n):.2f}) "
            f"{g.fidelity_p.mean():>7.3f}"
        )
    n = len(df)
    f, d = int(df.fidelity_failed.sum()), int(df.disclosure_failed.sum())
    print(f"{'all':>10} {'':>5} {n:>5} {f:>3} ({upper(f, n):.2f}) {d:>4} ({upper(d, n):.2f})")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="200,demo", help="comma-separated: demo, 200")
    p.add_argument("--builds", type=int, default=10, help="dbt builds per size (0: none)")
    p.add_argument("--null-reps", type=int, default=20, help="real-table splits per table x size")
    p.add_argument("--seed0", type=int, default=1000, help="world seed of the first build")
    a = p.parse_args(argv)
    sizes = [s.strip() for s in a.sizes.split(",") if s.strip()]
    if a.null_reps:
        report_null(exact_null(sizes, a.null_reps))
    if a.builds:
        report_builds(builds(sizes, a.builds, a.seed0))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
