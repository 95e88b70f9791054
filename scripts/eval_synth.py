"""Score the sparse-cell synthesizer on the demo world against its known truth.

For sparse cells x waves x indicators: RMSE of estimates from the synthetic records
(weighted by synth_weight, pooled over implicates) against the RMSE of direct Hajek
estimates from the few real records, on the same cells and indicators. For empty cells:
coverage and RMSE of the synthetic estimates. Prints tables; exits non-zero when the
pooled (scaled) ratio is above --max-ratio.

    .venv/bin/python scripts/eval_synth.py            # generates data/demo if missing
    .venv/bin/python scripts/eval_synth.py --backend sdv_gaussian_copula
"""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from surveysynth.rules import violations
from surveysynth.synth import SynthConfig, support_table, synthesize
from surveysynth.synth_eval import ALL, ALL_MINORITY, evaluate_against_truth

DEMO_RULES = [
    {
        "name": "not_trading_no_turnover",
        "when": {"trading_status": ["paused", "closed"]},
        "then": {"turnover": {"equals": 0}},
    }
]


def demo_config(**overrides) -> SynthConfig:
    """The dbt project's vars (input contract, synthesis vars and business rules)."""
    cfg = SynthConfig.from_dbt_project(str(ROOT / "dbt_project.yml"), **overrides)
    if not cfg.rules and "rules" not in overrides:
        cfg = cfg.with_(rules=DEMO_RULES)
    return cfg


def load_demo(data_dir: Path = ROOT / "data" / "demo") -> dict[str, pd.DataFrame]:
    if not (data_dir / "demo_truth.parquet").exists():
        subprocess.run(
            [sys.executable, str(ROOT / "scripts" / "generate_demo.py"), "--out", str(data_dir)],
            check=True,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
        )
    return {
        n: pd.read_parquet(data_dir / f"{n}.parquet") for n in ("responses", "frame", "demo_truth")
    }


def run(config: SynthConfig, data: dict[str, pd.DataFrame]) -> dict:
    r, f, truth = data["responses"], data["frame"], data["demo_truth"]
    support = support_table(r, config, frame=f)
    t0 = time.monotonic()
    syn = synthesize(r, f, support, config)
    seconds = time.monotonic() - t0
    res = evaluate_against_truth(syn, r, support, truth, config)
    res["seconds"] = seconds
    res["n_synthetic"] = len(syn)
    res["violations"] = len(violations(syn, config.rules, config.outcomes))
    res["manifest"] = syn.attrs.get("surveysynth_manifest", {})
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", default="hierarchical")
    ap.add_argument("--m", type=int, default=5)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--max-ratio", type=float, default=0.7)
    ap.add_argument("--verbose", action="store_true")
    ap.add_argument(
        "--augment-units",
        default="nonrespondents",
        choices=["nonrespondents", "all"],
        help="'all': records for every frame unit of a thin cell, so synthetic records alone "
        "represent the whole cell",
    )
    a = ap.parse_args(argv)
    if a.verbose:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    over = {"backend": a.backend, "m": a.m, "augment_units": a.augment_units}
    if a.seed is not None:
        over["seed"] = a.seed
    cfg = demo_config(**over)
    res = run(cfg, load_demo())
    pd.set_option("display.width", 160)
    fmt = {k: "{:.4g}".format for k in ("rmse_direct", "rmse_synth", "rmse_augmented")}
    fmt.update({k: "{:.3f}".format for k in ("ratio_synth", "ratio_augmented")})
    print(
        f"backend={cfg.backend} m={cfg.m} seed={cfg.seed}: {res['n_synthetic']} synthetic rows "
        f"in {res['seconds']:.1f}s, rule violations: {res['violations']}"
    )
    print(
        "\nSparse cells x waves: RMSE vs truth of direct (real records), synth (synthetic "
        "records only)\nand augmented (respondents + synthetic); ALL: errors / sd(truth) per indicator"
    )
    print(res["by_indicator"].to_string(index=False, formatters=fmt))
    e = res["empty"]
    print(
        f"\nEmpty cells x waves: {e.attrs['n_empty_with_estimate']}/{e.attrs['n_empty_cell_waves']} "
        "have synthetic estimates"
    )
    print(e.to_string(index=False, formatters={"rmse_synth": "{:.4g}".format}))
    t = res["by_indicator"].set_index("indicator")
    lit = float(t.loc[ALL, "ratio_synth"])
    aug = float(t.loc[ALL, "ratio_augmented"])
    minority = float(t.loc[ALL_MINORITY, "ratio_synth"])
    print(
        f"\nRMSE ratio vs direct, sparse cells pooled: synthetic records only {lit:.3f}; "
        f"augmented (respondents + synthetic) {aug:.3f}; synthetic only where respondents are "
        f"under half the cell {minority:.3f} (target <= {a.max_ratio})"
    )
    ok = aug <= a.max_ratio and minority <= a.max_ratio and res["violations"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
