"""Where the DP mode's intervals miss: coverage of the thin cells' augmented estimates on the demo
by epsilon, indicator, part (sparse / empty) and whether the cell had a direct estimate, pooled
over several fresh noise draws; beside each coverage, the number of rows it rests on and the
ratio of the mean squared error to the mean interval variance T (1 for calibrated intervals;
above 1: the between-implicate variance is too small for the actual error).

    .venv/bin/python scripts/eval/diagnose_dp.py --reps 4 --epsilons 0.5,1,2,4,8

--out PATH writes the pooled scored rows (parquet) for further slicing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))

from eval_dp import DEMO_DP_VARS, EPSILONS, scored_rows
from eval_synth import demo_config, load_demo

from surveysynth.privacy.api import dp_synthesize, nonrespondent_records
from surveysynth.privacy.measure import DPSettings
from surveysynth.synthesis.api import support_table


def direct_flags(model, cfg) -> pd.DataFrame:
    """Per cell x wave and indicator: did the DP fit have a direct estimate of it."""
    cells = model.cells[[*cfg.cell_dims, cfg.wave]].reset_index(drop=True)
    parts = []
    for o in cfg.outcomes:
        key = f"{o.name}:mu" if o.is_numeric else o.name
        names = [o.name] if o.is_numeric else [f"{o.name}={lv}" for lv in o.category_levels]
        for n in names:
            parts.append(cells.assign(indicator=n, direct=model.direct[key]))
    return pd.concat(parts, ignore_index=True)


def one_run(eps, rep, data, support, cfg, delta) -> pd.DataFrame:
    v = {**DEMO_DP_VARS, "ss_dp_epsilon": eps, "ss_dp_delta": delta}
    syn, _, model = dp_synthesize(
        data["responses"], data["frame"], support, cfg, DPSettings.from_vars(v, cfg)
    )
    syn = nonrespondent_records(syn, data["responses"], support, cfg)
    d = scored_rows(syn, data["responses"], support, data["demo_truth"], cfg)
    keys = [*cfg.cell_dims, cfg.wave]
    d = d.merge(direct_flags(model, cfg), on=[*keys, "indicator"], how="left")
    return d.assign(epsilon=eps, rep=rep)


def table(d: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    g = d.assign(
        sq=d["scaled_err"] ** 2,
        T=(d["se"] / d["scale"]) ** 2,
        z2=((d["estimate"] - d["true_value"]) / d["se"]) ** 2,
    ).groupby(by)
    return pd.DataFrame(
        {
            "rows": g.size(),
            "coverage": g["covered"].mean(),
            "mse_over_T": g["sq"].mean() / g["T"].mean(),
            "median_z2": g["z2"].median(),
        }
    )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=4)
    ap.add_argument("--epsilons", default=",".join(str(e) for e in EPSILONS))
    ap.add_argument("--delta", type=float, default=1e-6)
    ap.add_argument("--out", default=None)
    a = ap.parse_args(argv)
    cfg = demo_config()
    data = load_demo()
    support = support_table(data["responses"], cfg, frame=data["frame"])
    runs = [
        one_run(float(e), r, data, support, cfg, a.delta)
        for e in a.epsilons.split(",")
        for r in range(a.reps)
    ]
    d = pd.concat(runs, ignore_index=True)
    d["kind"] = np.where(d["indicator"].str.contains("="), "share", d["indicator"])
    if a.out:
        d.to_parquet(a.out)
    pd.set_option("display.width", 200)
    fmt = {"float_format": lambda x: f"{x:.3f}"}
    print(f"{a.reps} noise draws per epsilon\n")
    print(table(d, ["epsilon", "part"]).to_string(**fmt), "\n")
    print(table(d, ["part", "kind", "epsilon"]).unstack("epsilon").to_string(**fmt), "\n")
    print(table(d, ["part", "kind", "direct", "epsilon"])["coverage"].unstack().to_string(**fmt))
    print(table(d[d["part"] == "sparse"], ["indicator", "epsilon"])["coverage"].unstack().round(3))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
