"""The report's privacy section: the DP ledger of the synthesis run and the privacy-utility
trade-off measured on the demo world (docs/privacy.md)."""

from __future__ import annotations

import json
from importlib import resources

import pandas as pd

from surveysynth.privacy.ledger import LEDGER_COLUMNS
from surveysynth.report.html import esc, fmt, table
from surveysynth.report.warehouse import Warehouse

COLUMNS = [c for c in LEDGER_COLUMNS if c != "is_total"]


def privacy(wh: Warehouse, ctx: dict) -> str:
    led = wh.table("privacy_ledger")
    if led is None or led.empty:
        return (
            "<p>Privacy mode off: the synthesizer read the responses, and the release carries no "
            "differential-privacy guarantee (its protection is the disclosure gates').</p>"
        )
    total = led[led["is_total"].astype(bool)]
    head = ""
    if len(total):
        t = total.iloc[0]
        head = (
            f"<p>Differential privacy: the synthesizer saw only noisy statistics. Budget spent "
            f"(zCDP, rho adding up over {len(led) - 1} measurements): rho = {esc(fmt(t['rho']))}, "
            f"epsilon = {esc(fmt(t['epsilon']))} at delta = {esc(fmt(t['delta']))}"
        )
        if "epsilon_limit" in led:
            head += f" (limit epsilon {esc(fmt(t['epsilon_limit']))}"
            head += f", delta {esc(fmt(t['delta_limit']))})"
        head += (
            ". The augmented estimates' intervals carry the noise: each implicate draws the cell "
            "parameters from a posterior whose error variance includes the DP noise's. The "
            "guarantee covers the synthetic records, not estimates that use real respondents.</p>"
        )
    eps = float(total.iloc[0]["epsilon"]) if len(total) else None
    return head + table(led[[c for c in COLUMNS if c in led]]) + utility(eps)


#: the privacy-utility table's columns, as the report names them
UTILITY_COLUMNS = {
    "method": "method",
    "epsilon": "epsilon",
    "sparse_rmse": "sparse cells: RMSE (scaled)",
    "sparse_coverage": "sparse: 95% coverage",
    "empty_rmse": "empty cells: RMSE (scaled)",
    "empty_coverage": "empty: 95% coverage",
}


def utility_table() -> dict | None:
    """The privacy-utility table shipped with the package (scripts/eval/eval_dp.py --save), or
    None when it is absent."""
    path = resources.files("surveysynth.privacy") / "utility_demo.json"
    return json.loads(path.read_text()) if path.is_file() else None


def utility(epsilon: float | None) -> str:
    """The privacy-utility trade-off measured on the demo world, this build's epsilon marked."""
    doc = utility_table()
    if doc is None:
        return ""
    df = pd.DataFrame(doc["rows"])
    df = df[[c for c in UTILITY_COLUMNS if c in df]].rename(columns=UTILITY_COLUMNS)
    if epsilon is not None:
        near = (df["epsilon"].astype(float) - epsilon).abs() < 1e-6 * max(epsilon, 1.0)
        near &= df["method"].eq("dp")
        df.insert(0, "this build", near.map({True: "<- epsilon of this build", False: ""}))
    return (
        "<h3>Privacy-utility trade-off</h3><p>What each epsilon costs, measured on "
        f"{esc(doc['measured_on'])}, not on this build's data: the thin cells' augmented "
        "estimates, RMSE with each error divided by the spread of its indicator's truth, and the "
        "coverage of their 95% intervals, beside smartnoise-synth's MST at the same budget and "
        f"the synthesizer without DP. Command: <code>{esc(doc['command'])}</code>.</p>" + table(df)
    )
