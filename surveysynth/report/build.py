"""build_report: one self-contained HTML release report from a built warehouse."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from pathlib import Path

from surveysynth.report import sections_checks as checks
from surveysynth.report import sections_gates as gates
from surveysynth.report import sections_privacy as privacy
from surveysynth.report import sections_run as run
from surveysynth.report.html import esc, page
from surveysynth.report.warehouse import Warehouse

log = logging.getLogger("surveysynth")

SECTIONS = [
    ("verdict", "Verdict", None),
    ("generation", "What was generated and how", run.generation),
    ("support-map", "Support map", run.support_map),
    ("coverage", "Coverage gained", run.coverage),
    ("estimates", "Estimates for key domains", run.key_estimates),
    ("backtest", "Back-test", checks.backtest),
    ("fidelity", "Fidelity", checks.fidelity),
    ("disclosure", "Disclosure risk", checks.disclosure),
    ("suppression", "Suppression", run.suppression),
    ("privacy", "Differential privacy ledger", privacy.privacy),
    ("limitations", "Limitations", gates.limitations),
    ("gates", "Gates and verdicts", gates.gates),
]


def find_run_results(db: Path) -> Path | None:
    for p in (db.parent / "run_results.json", db.parent / "target" / "run_results.json"):
        if p.exists():
            return p
    return None


def _render(fn, wh: Warehouse, ctx: dict) -> str:
    try:
        return fn(wh, ctx)
    except Exception as exc:  # noqa: BLE001 (a section that fails says so; the report still builds)
        log.warning("report section %s failed: %r", fn.__name__, exc)
        return f'<p class="fail">section could not be built: {esc(repr(exc))}</p>'


def build_report(duckdb_path: str | Path, out_path: str | Path, run_results=None) -> Path:
    """Write the release report of the warehouse at ``duckdb_path`` to ``out_path``."""
    t0 = time.monotonic()
    db, out = Path(duckdb_path), Path(out_path)
    wh = Warehouse(db)
    try:
        rr = Path(run_results) if run_results else find_run_results(db)
        ctx = {"dims": wh.cell_dims(), "manifest": wh.manifest(), "gates": gates.gate_rows(wh)}
        ctx["failed_nodes"] = gates.failed_nodes(rr)
        released, ctx["verdict_html"] = gates.verdict(wh, ctx)
        body = []
        for sid, title, fn in SECTIONS:
            html = ctx["verdict_html"] if fn is None else _render(fn, wh, ctx)
            body.append((sid, title, html))
            log.info("report: %s done, %.1fs", sid, time.monotonic() - t0)
    finally:
        wh.close()
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    sub = f"{db.name} · {'released' if released else 'NOT released'} · built {stamp}"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page("surveysynth release report", sub, body), encoding="utf-8")
    log.info("report: wrote %s in %.1fs", out, time.monotonic() - t0)
    return out
