"""The unit-level baselines alone on the real populations of eval_real_sae (same populations, domains,
samples and covariates): BHF EBLUP of the mean (with the sample's weights) and the logistic EBP of
the share, by ML and by penalised ML (``penalised=True``), against the direct domain mean.

Prints per population and estimator: the RMSE ratio to the direct estimator over the sampled
domains, the coverage of the 95% intervals over all domains, how often s2v was estimated as 0 and
how often the fit converged, and the CPU seconds per call.

    .venv/bin/python scripts/eval/eval_unit_level_real.py --reps 20 --B 30 swiss belgian eusilc
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import eval_real_sae as E

from surveysynth.estimation import unit_level as ul


def estimators(pop: E.Population, dom: pd.DataFrame, s: pd.DataFrame, B: int, seed: int):
    popx = dom[["cell_id", "N", *pop.model_x]]
    units = pop.units[["cell_id", *pop.model_x]]
    args = (s, pop.flag, pop.model_x, "cell_id", units)
    return {
        "bhf (mean)": lambda: ul.bhf_eblup(
            s, pop.y, pop.model_x, "cell_id", popx, weight="analysis_weight"
        ),
        "logistic ML (share)": lambda: ul.logistic_ebp(*args, n_mc=B, seed=seed),
        "logistic penalised (share)": lambda: ul.logistic_ebp(
            *args, n_mc=B, seed=seed, penalised=True
        ),
    }


def score(out: pd.DataFrame, dom: pd.DataFrame, direct: pd.Series, truth: str) -> pd.DataFrame:
    m = out.merge(dom[["cell_id", truth]], on="cell_id")
    t = m[truth].to_numpy()
    return pd.DataFrame(
        {
            "err": m["estimate"] - t,
            "direct_err": m["cell_id"].map(direct).to_numpy() - t,
            "covered": (m["ci_low"] <= t) & (t <= m["ci_high"]),
            "zero": out.attrs["s2v"] < 1e-8,
            "converged": out.attrs.get("converged", True),
        }
    )


def run(name: str, reps: int, B: int) -> pd.DataFrame:
    pop = E.POPULATIONS[name]()
    dom = E.domains(pop)
    rows, cpu = [], {}
    for rep in range(reps):
        seed = E.rep_seed(1, rep)
        s = E.draw(pop, seed)
        direct = s.groupby("cell_id")[[pop.y, pop.flag]].mean()
        for k, f in estimators(pop, dom, s, B, seed).items():
            t = time.process_time()
            out = f()
            cpu[k] = cpu.get(k, 0.0) + (time.process_time() - t) / reps
            col, truth = (pop.y, "true_mean") if "mean" in k else (pop.flag, "true_share")
            rows.append(score(out, dom, direct[col], truth).assign(estimator=k))
    r = pd.concat(rows)
    ok = r["direct_err"].notna()
    g = r.groupby("estimator", sort=False)
    table = pd.DataFrame(
        {
            "rmse_vs_direct": np.sqrt(
                r[ok].groupby("estimator", sort=False)["err"].apply(lambda e: np.mean(e**2))
                / r[ok]
                .groupby("estimator", sort=False)["direct_err"]
                .apply(lambda e: np.mean(e**2))
            ),
            "coverage": g["covered"].mean(),
            "s2v_zero": g["zero"].mean(),
            "converged": g["converged"].mean(),
            "cpu_s_per_call": pd.Series(cpu),
        }
    )
    print(f"{name}: {len(dom)} domains, about {len(s)} sampled units, {reps} samples, B = {B}")
    print(table.round(3).to_string(), flush=True)
    return table


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("populations", nargs="*", default=["swiss", "belgian", "eusilc"])
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--B", type=int, default=30, help="bootstrap replicates of logistic_ebp")
    a = ap.parse_args()
    for name in a.populations:
        run(name, a.reps, a.B)


if __name__ == "__main__":
    main()
