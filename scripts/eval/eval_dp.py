"""Privacy-utility table of the DP mode on the demo world.

For epsilon 0.5, 1, 2, 4, 8 (delta 1e-6) and the non-DP hierarchical synthesizer: the augmented
cell estimates of the thin cells (sparse and empty cells x waves with synthetic records; respondents
count once, records stand for the other units, implicates combined with Rubin's rule as
domain_estimates does) scored against the demo's truth: RMSE (each error divided by the standard
deviation of the truth of its indicator over the scored rows, then pooled) and the coverage of
the nominal 95% intervals. Beside them, smartnoise-synth's MST at the same (epsilon, delta) on
the same responses (discretised on public bins from ss_dp_bounds), its cells completed the same
way from m samples of one fit.

smartnoise-synth pins an older opendp than the project's, so it runs in its own virtualenv:

    python3.11 -m venv /tmp/snvenv && /tmp/snvenv/bin/pip install smartnoise-synth pandas pyarrow
    .venv/bin/python scripts/eval/eval_dp.py --smartnoise-python /tmp/snvenv/bin/python

Without --smartnoise-python the MST rows are left out (a DP run then takes seconds per epsilon:
`--reps 3` over the five epsilons and the non-DP baseline in about 1.5 minutes). --reps R
repeats each DP run R times (fresh noise) and reports the mean over runs of the RMSE, the
coverage and the rows scored (per run). scripts/eval/diagnose_dp.py splits the coverage by
indicator, part and direct estimate.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).parent))

from eval_synth import demo_config, load_demo

from surveysynth.estimation.augmented import augmented_cell_estimates
from surveysynth.privacy.api import dp_synthesize, nonrespondent_records
from surveysynth.privacy.measure import DPSettings
from surveysynth.synthesis.api import support_table, synthesize

#: the demo's clamping bounds (docs/privacy.md): public knowledge of the magnitudes, not the data
DEMO_DP_VARS = {
    "ss_dp_bounds": {"turnover": [0, 1e10], "employees": [0, 1e6]},
    "ss_dp_pool_by": ["size_band"],
    "ss_dp_waves": [1, 2, 3, 4],
}
EPSILONS = (0.5, 1.0, 2.0, 4.0, 8.0)


def scored_rows(syn, responses, support, truth, cfg) -> pd.DataFrame:
    """The thin cells' augmented estimates beside the truth, one row per cell x wave x
    indicator, ``part`` sparse (respondents plus records) or empty (records only, cells of at
    least 10 units: most empty cells hold one or two units, whose own values no model
    predicts); ``scaled_err`` is the error divided by the spread of the truth of its indicator
    over the thin cells (one divisor per indicator for every method), ``covered`` whether the
    nominal 95% interval holds the truth."""
    est = augmented_cell_estimates(responses, syn, support, cfg)
    keys = [*cfg.cell_dims, cfg.wave]
    d = est[(est["cell_role"] == "completed") & (est["n_synthetic"] > 0)]
    d = d.merge(truth[[*keys, "indicator", "true_value"]], on=[*keys, "indicator"])
    d = d.merge(support[[*keys, "n_population"]], on=keys)
    d = d[d["estimate"].notna()].copy()
    scale = truth.merge(support.loc[support["support_class"] != "supported", keys], on=keys)
    d = d.merge(scale.groupby("indicator")["true_value"].std().rename("scale"), on="indicator")
    d = d[d["scale"] > 0]
    d["part"] = np.where(d["support_class"] == "sparse", "sparse", "")
    d.loc[(d["support_class"] == "empty") & (d["n_population"] >= 10), "part"] = "empty"
    d = d[d["part"] != ""].copy()
    d["scaled_err"] = (d["estimate"] - d["true_value"]) / d["scale"]
    d["covered"] = (d["ci_low"] <= d["true_value"]) & (d["true_value"] <= d["ci_high"])
    return d


def summarise(d: pd.DataFrame) -> dict:
    """Rows, scaled RMSE and 95% coverage of the sparse and the empty part."""
    out = {}
    for name in ("sparse", "empty"):
        part = d[d["part"] == name]
        out[f"{name}_rows"] = len(part)
        out[f"{name}_rmse"] = float(np.sqrt(np.mean(part["scaled_err"] ** 2)))
        out[f"{name}_coverage"] = float(part["covered"].mean())
    return out


def score(syn, responses, support, truth, cfg) -> dict:
    """Scaled RMSE and 95% coverage of the augmented estimates of the thin cells."""
    return summarise(scored_rows(syn, responses, support, truth, cfg))


def run_dp(eps, data, support, cfg, delta) -> tuple[dict, float]:
    v = {**DEMO_DP_VARS, "ss_dp_epsilon": eps, "ss_dp_delta": delta}
    t0 = time.monotonic()
    syn, ledger, _ = dp_synthesize(
        data["responses"], data["frame"], support, cfg, DPSettings.from_vars(v, cfg)
    )
    syn = nonrespondent_records(syn, data["responses"], support, cfg)
    res = score(syn, data["responses"], support, data["demo_truth"], cfg)
    res["seconds"] = time.monotonic() - t0
    return res, float(ledger["epsilon"].iloc[-1])


def run_mst(py: str, eps, delta, data, support, cfg, m) -> dict:
    """MST in its own interpreter: fit once at (eps, delta), m samples, cells completed."""
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "responses.parquet"
        data["responses"].to_parquet(src)
        plan = {
            "epsilon": eps,
            "delta": delta,
            "m": m,
            "rows": 5 * len(data["responses"]),
            "dims": list(cfg.cell_dims),
            "wave": cfg.wave,
            "outcomes": [[o.name, o.type, list(o.category_levels)] for o in cfg.outcomes],
            "bounds": DEMO_DP_VARS["ss_dp_bounds"],
        }
        out = Path(tmp) / "mst.parquet"
        helper = Path(__file__).with_name("mst_helper.py")
        subprocess.run([py, str(helper), str(src), str(out), json.dumps(plan)], check=True)
        records = pd.read_parquet(out)
    syn = complete_cells(records, data["responses"], support, cfg, m)
    return score(syn, data["responses"], support, data["demo_truth"], cfg)


def complete_cells(records, responses, support, cfg, m) -> pd.DataFrame:
    """MST's records of each thin cell x wave stand for its non-responding units (weight
    (N - n) / records), as the DP and hierarchical synthesizers' records do."""
    keys = [*cfg.cell_dims, cfg.wave]
    thin = support[support["support_class"].isin(cfg.augment_classes)]
    n = responses.groupby(keys).size().rename("n").reset_index()
    t = thin.merge(n, on=keys, how="left").fillna({"n": 0})
    t["non"] = t["n_population"].astype(float) - t["n"]
    r = records.merge(t[[*keys, "non", "support_class"]], on=keys)
    r = r[r["non"] > 0]
    cnt = r.groupby([*keys, "implicate"])[cfg.wave].transform("size")
    r["synth_weight"] = r["non"] / cnt
    return r.drop(columns="non")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--delta", type=float, default=1e-6)
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("--smartnoise-python", default=None)
    ap.add_argument("--epsilons", default=",".join(str(e) for e in EPSILONS))
    ap.add_argument("--no-baseline", action="store_true", help="skip the non-DP synthesizer")
    ap.add_argument(
        "--save",
        default=None,
        help="write the table as JSON (rows and the command) for the release report, e.g. "
        "surveysynth/privacy/utility_demo.json",
    )
    a = ap.parse_args(argv)
    cfg = demo_config()
    data = load_demo()
    support = support_table(data["responses"], cfg, frame=data["frame"])
    rows = []
    for eps in [float(e) for e in a.epsilons.split(",")]:
        reps = [run_dp(eps, data, support, cfg, a.delta) for _ in range(a.reps)]
        row = {"method": "dp", "epsilon": eps, "spent": reps[0][1]}
        for k in reps[0][0]:
            row[k] = float(np.mean([r[k] for r, _ in reps]))
        rows.append(row)
        print(json.dumps(row), flush=True)
        if a.smartnoise_python:
            mst = run_mst(a.smartnoise_python, eps, a.delta, data, support, cfg, cfg.m)
            rows.append({"method": "smartnoise MST", "epsilon": eps, "spent": eps, **mst})
            print(json.dumps(rows[-1]), flush=True)
    if not a.no_baseline:
        syn = synthesize(data["responses"], data["frame"], support, cfg)
        res = score(syn, data["responses"], support, data["demo_truth"], cfg)
        rows.append({"method": "hierarchical (no DP)", "epsilon": float("inf"), **res})
    table = pd.DataFrame(rows)
    print(table.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    if a.save:
        save_table(Path(a.save), table, argv if argv is not None else sys.argv[1:])
    return 0


def save_table(path: Path, table: pd.DataFrame, argv: list[str]) -> None:
    """The privacy-utility table as JSON: what the release report shows beside a DP build's
    ledger (measured on the demo world, not on the build's own data)."""
    clean = table.replace([np.inf, -np.inf], None).astype(object)
    doc = {
        "measured_on": "the demo world (scripts/demo/generate_demo.py --seed 42) against its truth",
        "command": "python scripts/eval/eval_dp.py " + " ".join(argv),
        "rows": clean.where(clean.notna(), None).to_dict(orient="records"),
    }
    path.write_text(json.dumps(doc, indent=1) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
