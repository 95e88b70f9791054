"""The report's privacy section: the DP ledger of the synthesis run (docs/privacy.md)."""

from __future__ import annotations

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
            "guarantee covers the synthetic records, not estimates that use real respondents; "
            "the privacy-utility trade-off on the demo is in docs/privacy.md.</p>"
        )
    return head + table(led[[c for c in COLUMNS if c in led]])
