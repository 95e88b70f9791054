"""Report sections: the verdict, the gates, and limitations written from the data."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from surveysynth.report.html import esc, fmt, table
from surveysynth.report.sections_run import estimates_table
from surveysynth.report.warehouse import Warehouse

METRIC_TABLES = ("backtest_summary", "fidelity_metrics", "disclosure_metrics")


def _state(df: pd.DataFrame) -> pd.Series:
    """'pass' / 'fail' / 'not_assessable' / 'information' per row: the status column where
    there is one ('report' read as information), else from passed, threshold and message; a
    row whose passed is false is a failure whatever its status says."""
    if "status" in df:
        st = df["status"].astype("string").str.lower().replace({"report": "information"})
        st = st.fillna("not_assessable")
    elif "passed" in df:
        st = df["passed"].map(
            lambda p: "not_assessable" if pd.isna(p) else ("pass" if p else "fail")
        )
        if "threshold" in df:  # a metric without a threshold is reported, not gated
            st = st.where(~(df["passed"].isna() & df["threshold"].isna()), "information")
        if "message" in df:  # a gate that let the build pass because it could not be assessed
            na = df["message"].astype("string").str.contains("not assessable", na=False)
            st = st.where(
                ~(na & df["passed"].map(lambda p: pd.isna(p) or bool(p))), "not_assessable"
            )
    else:
        return pd.Series("not_assessable", df.index)
    if "blocks_release" in df:  # ss_not_assessable_blocks: an unassessable gate stops the release
        blocks = df["blocks_release"].map(lambda b: not pd.isna(b) and bool(b))
        st = st.where(~(blocks & (st == "not_assessable")), "fail (not assessable, blocks release)")
    if "passed" in df:
        st = st.where(df["passed"].map(lambda p: pd.isna(p) or bool(p)), "fail")
    return st.astype(object)


def with_state(df: pd.DataFrame | None) -> pd.DataFrame | None:
    """``df`` with its passed column read as pass / fail / not_assessable / information."""
    return None if df is None or df.empty else df.assign(passed=_state(df))


def gate_rows(wh: Warehouse) -> pd.DataFrame:
    """One row per gate or gated metric: source, name, state."""
    rows = []
    gates = wh.table("release_gates")
    if gates is not None and not gates.empty:
        name = gates.get("gate", gates.iloc[:, 0])
        rows.append(pd.DataFrame({"source": "release_gates", "name": name, "state": _state(gates)}))
    for t in METRIC_TABLES:
        df = wh.table(t)
        if df is None or df.empty or "metric" not in df:
            continue
        col = df["column"].fillna("") if "column" in df else ""
        name = df["metric"] + (col.map(lambda c: f" [{c}]" if c else "") if len(col) else "")
        rows.append(pd.DataFrame({"source": t, "name": name, "state": _state(df)}))
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()


def failed_nodes(run_results: Path | None) -> pd.DataFrame | None:
    """dbt's failed or errored nodes of the last run, with their messages."""
    if run_results is None or not run_results.exists():
        return None
    res = json.loads(run_results.read_text()).get("results", [])
    bad = [
        {
            "node": r.get("unique_id"),
            "status": r.get("status"),
            "message": (r.get("message") or "")[:300],
        }
        for r in res
        if r.get("status") in ("error", "fail", "runtime error")
    ]
    return pd.DataFrame(bad, columns=["node", "status", "message"])


def verdict(wh: Warehouse, ctx: dict) -> tuple[bool, str]:
    """(released, html) of the build's verdict."""
    g = ctx["gates"]
    failing = g[g["state"].str.contains("fail")] if not g.empty else g
    nodes = ctx["failed_nodes"]
    man = ctx["manifest"]
    rid = man.get("release_id")
    reasons = [f"{r.source}: {r.name} failed" for r in failing.itertuples()] if len(failing) else []
    if nodes is not None and len(nodes):
        reasons += [f"dbt {r.status}: {r.node}" for r in nodes.head(10).itertuples()]
    if not wh.has("release_manifest"):
        reasons.append("release_manifest absent: no release was ever published in this warehouse")
    elif man.get("all_gates_passed") is False:
        reasons.append("the release manifest records a gate that did not pass")
    if reasons:
        prev = (
            f" The release tables present are the last good release ({esc(rid)}), not this build's."
            if rid and wh.has("release_manifest")
            else ""
        )
        items = "".join(f"<li>{esc(r)}</li>" for r in reasons[:30])
        return False, (
            '<div class="verdict bad"><b>Nothing was released by this build.</b> Why:'
            f"<ul>{items}</ul>{prev}</div>"
        )
    n_na = int((g["state"] == "not_assessable").sum()) if not g.empty else 0
    na = f" {n_na} check(s) not assessable on these data." if n_na else ""
    return True, (
        f'<div class="verdict ok"><b>Released</b>: release {esc(rid)}, every gate passed '
        f"({len(g)} gates and gated metrics).{esc(na)}</div>"
    )


def gates(wh: Warehouse, ctx: dict) -> str:
    g = ctx["gates"]
    summary = g.groupby(["source", "state"]).size().rename("n").reset_index() if len(g) else None
    nodes = ctx["failed_nodes"]
    return (
        ctx["verdict_html"]
        + "<h3>Verdicts by source</h3>"
        + table(summary, badges=("state",))
        + "<h3>Release gates</h3>"
        + table(with_state(wh.table("release_gates")), badges=("passed", "status"))
        + "<h3>Every gate and gated metric</h3>"
        + table(g, badges=("state",), max_rows=400)
        + (
            "<h3>Failed dbt nodes (run_results.json)</h3>" + table(nodes)
            if nodes is not None
            else '<p class="note">no run_results.json found beside the warehouse</p>'
        )
    )


def limitations(wh: Warehouse, ctx: dict) -> str:
    items = _sparse_strata(wh, ctx["dims"]) + _model_carried(wh) + _not_to_infer(wh, ctx)
    return "<ul>" + "".join(f"<li>{i}</li>" for i in items) + "</ul>"


def _sparse_strata(wh: Warehouse, dims: list[str]) -> list[str]:
    cs = wh.table("cell_support", [*dims, "support_class"])
    if cs is None or "support_class" not in cs:
        return ["Support classes absent: which strata were sparse is unknown."]
    thin = cs["support_class"].isin(["sparse", "empty"])
    out = [
        (
            f"{thin.sum()} of {len(cs)} cell x wave combinations were sparse or empty "
            f"({thin.mean():.0%}); their estimates lean on the synthesizer."
        )
    ]
    for d in dims:
        share = thin.groupby(cs[d]).mean().sort_values(ascending=False)
        top = share[share >= 0.5].head(5)
        if len(top):
            lst = ", ".join(f"{esc(k)} ({v:.0%})" for k, v in top.items())
            out.append(f"By {esc(d)}, mostly thin: {lst}.")
    return out


def _model_carried(wh: Warehouse) -> list[str]:
    name = estimates_table(wh)
    df = wh.table(name, ["method", "model_share", "basis", "support_class"]) if name else None
    if df is None or "method" not in df:
        return ["Estimation methods absent."]
    pub = df[df["method"] != "suppressed"]
    by = pub["method"].value_counts()
    out = ["Published estimates by method: " + ", ".join(f"{k} {v}" for k, v in by.items()) + "."]
    if "model_share" in pub and pub["model_share"].notna().any():
        heavy = pub[pub["model_share"] >= 0.5]
        out.append(
            f"{len(heavy)} published estimates take half or more of their value from the model "
            f"(model_share >= 0.5; mean model_share {fmt(pub['model_share'].mean(), 3)})."
        )
    else:
        out.append("model_share absent: how much the model carried each estimate is not shown.")
    if "support_class" in pub:
        empty = int((pub["support_class"] == "empty").sum())
        out.append(
            f"{empty} published estimates are for empty cells (no respondent): they are "
            "model predictions, validated only through the back-test on thinned cells."
        )
    return out


def _not_to_infer(wh: Warehouse, ctx: dict) -> list[str]:
    m = ctx["manifest"].get("m")
    return [
        (
            "Synthetic records are not real units: never analyse them one by one, link them to "
            "other data or read a unit's values from them."
        ),
        (
            f"Combine the {esc(fmt(m))} implicates with the estimate macro (Rubin's rule); a single "
            "implicate understates uncertainty."
        ),
        (
            "Differences between thin cells smaller than their intervals are not evidence of a "
            "difference; a narrow interval in a model-carried cell reflects the model's assumptions."
        ),
    ]
