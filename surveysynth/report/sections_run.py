"""Report sections on the run and the release: provenance, support, coverage, estimates,
suppression, limitations, gates."""

from __future__ import annotations

import re

import pandas as pd

from surveysynth.report import svg
from surveysynth.report.html import esc, fmt, status_badge, table
from surveysynth.report.warehouse import Warehouse, quote

SUPPORT_COLOURS = {"supported": "#5aae61", "sparse": "#f1b6da", "empty": "#c51b7d"}
ESTIMATES = ("domain_estimates_release", "domain_estimates")


def estimates_table(wh: Warehouse) -> str | None:
    return next((n for n in ESTIMATES if wh.has(n)), None)


def generation(wh: Warehouse, ctx: dict) -> str:
    man = ctx["manifest"]
    if man.get("_source") is None:
        return '<p class="absent">no release or synthesis manifest in this warehouse</p>'
    keys = ["release_id", "synth_run_id", "seed", "synth_method", "mode", "m"]
    keys += [k for k in man if k.endswith("_at") or k in ("n_gates", "all_gates_passed")]
    facts = pd.DataFrame(
        [{"field": k, "value": fmt(man[k]) if k in man else "absent"} for k in keys]
    )
    hashes = [{"input or table": k, "hash": v} for k, v in man.items() if k.startswith("hash_")]
    released = man.get("released_tables")
    if isinstance(released, dict):
        for name, meta in released.items():
            h = meta.get("content_hash") if isinstance(meta, dict) else meta
            hashes.append({"input or table": name, "hash": h})
    versions = man.get("versions")
    vers = (
        pd.DataFrame([{"package": k, "version": v} for k, v in versions.items()])
        if isinstance(versions, dict)
        else None
    )
    synth = man.get("synthesis_parameters") or man.get("parameters") or {}
    outcomes = synth.get("outcomes") if isinstance(synth, dict) else None
    desc = ""
    if isinstance(outcomes, list):
        names = ", ".join(
            f"{o.get('name')} ({o.get('type')})" for o in outcomes if isinstance(o, dict)
        )
        desc = f"<p>Outcomes synthesized: {esc(names)}.</p>"
    n_syn = wh.count("synthetic_microdata_release") or wh.count("synthetic_microdata")
    return (
        f"<p>Manifest read from <code>{esc(man['_source'])}</code>. "
        f"{esc(fmt(n_syn))} synthetic records (all implicates) in the release.</p>{desc}"
        + table(facts)
        + "<h3>Input and table hashes</h3>"
        + table(pd.DataFrame(hashes) if hashes else None)
        + "<h3>Versions</h3>"
        + table(vers)
    )


def support_map(wh: Warehouse, ctx: dict) -> str:
    dims = ctx["dims"]
    cs = wh.table("cell_support", [*dims, "cell_id", "wave", "support_class", "n_respondents"])
    if cs is None or "support_class" not in cs or not dims:
        return '<p class="absent">cell_support (or its support_class) absent</p>'
    counts = cs.groupby(["wave", "support_class"]).size().unstack(fill_value=0).reset_index()
    rest = dims[1:]
    cs["_col"] = cs[rest].astype(str).agg("|".join, axis=1) if rest else "all"
    rows = sorted(cs[dims[0]].astype(str).unique())
    cols = sorted(cs["_col"].unique())
    maps = []
    for wave in sorted(cs["wave"].unique())[:6]:
        w = cs[cs["wave"] == wave]
        key = list(zip(w[dims[0]].astype(str), w["_col"]))
        fill = {k: SUPPORT_COLOURS.get(c, "#999") for k, c in zip(key, w["support_class"])}
        tip = {
            k: f"{k[0]} | {k[1]}, wave {wave}: {c} ({n} respondents)"
            for k, c, n in zip(key, w["support_class"], w.get("n_respondents", [""] * len(w)))
        }
        maps.append(
            f"<h3>wave {esc(wave)}</h3>"
            + svg.heatmap(rows, cols, fill, tip, f"support map wave {wave}", cell=12)
        )
    legend = " ".join(
        f'<span style="background:{c};padding:0 8px">&nbsp;</span> {esc(k)}'
        for k, c in SUPPORT_COLOURS.items()
    )
    return (
        f"<p>Rows: {esc(dims[0])}; columns: {esc(' | '.join(rest) or 'all')}. {legend}</p>"
        + table(counts)
        + '<div class="wide">'
        + "".join(maps)
        + "</div>"
    )


def _published(df: pd.DataFrame) -> pd.Series:
    pub = df["method"].ne("suppressed") if "method" in df else pd.Series(True, df.index)
    if "sdc_status" in df:
        pub &= ~df["sdc_status"].astype(str).str.contains("suppress")
    return pub


def coverage(wh: Warehouse, ctx: dict) -> str:
    name = estimates_table(wh)
    cols = ["domain_level", "support_class", "method", "direct_grade", "sdc_status"]
    df = wh.table(name, cols) if name else None
    if df is None or df.empty:
        return '<p class="absent">no domain estimates</p>'
    group = (
        df["support_class"].fillna("margin") if "support_class" in df else df.get("domain_level")
    )
    df["group"] = group if group is not None else "all"
    df["published"] = _published(df)
    if "direct_grade" in df:
        df["direct_publishable"] = df["direct_grade"].isin(["good", "caution"])
    out = df.groupby("group").agg(
        domains=("published", "size"),
        **({"direct_alone": ("direct_publishable", "sum")} if "direct_grade" in df else {}),
        published_now=("published", "sum"),
    )
    if "direct_alone" in out:
        out["gained"] = out["published_now"] - out["direct_alone"]
    note = (
        "" if "direct_grade" in df else '<p class="absent">direct_grade absent: gain not shown</p>'
    )
    return (
        f"<p>Domain x wave x indicator estimates in <code>{esc(name)}</code>: publishable by "
        "the direct estimate alone vs published now, by support class.</p>"
        + note
        + table(out.reset_index())
    )


def domain_label(df: pd.DataFrame, dims: list[str]) -> pd.Series:
    have = [d for d in dims if d in df]
    parts = df[have].astype("string").fillna("").agg(" ".join, axis=1).str.strip() if have else ""
    lab = pd.Series(parts, index=df.index) if isinstance(parts, str) else parts
    if "domain_level" in df:
        lab = lab.where(lab.str.len() > 0, df["domain_level"].astype(str))
    return lab.replace("", "all")


KEY_COLUMNS = ["domain_level", "wave", "indicator", "measure", "support_class", "method", "grade"]
KEY_COLUMNS += ["model_share", "basis", "estimate", "ci_low", "ci_high", "reason", "n_respondents"]
KEY_COLUMNS += ["n_synthetic", "sdc_status"]
KEY_COLUMNS += [
    f"{p}_{c}" for p in ("direct", "augmented") for c in ("estimate", "ci_low", "ci_high")
]
KEY_COLUMNS += ["direct_grade", "augmented_grade"]


def _key_rows(wh: Warehouse, name: str, dims: list[str]) -> pd.DataFrame:
    """The latest wave's rows of the indicator most often carried by the model."""
    have = wh.columns(name)
    rel = wh.rel(name)
    where = []
    if "wave" in have:
        where.append(f"wave = (select max(wave) from {rel})")
    if "indicator" in have:
        model = "method in ('augmented', 'composite')" if "method" in have else "true"
        share = "bool_or(measure = 'share')" if "measure" in have else "true"
        pick = wh.sql(
            f"select indicator, {share} as s, count(*) filter (where {model}) as k, "
            f"count(*) as n from {rel} group by 1 order by s desc, k desc, n desc, 1 limit 1"
        )
        if len(pick):
            where.append("indicator = ?")
            params = [pick["indicator"].iloc[0]]
    cols = [c for c in [*dims, "cell_id", *KEY_COLUMNS] if c in have]
    q = f"select {', '.join(quote(c) for c in cols)} from {rel}"
    q += (" where " + " and ".join(where)) if where else ""
    return wh.sql(q, params if "indicator = ?" in where else None)


def key_estimates(wh: Warehouse, ctx: dict) -> str:
    name = estimates_table(wh)
    df = _key_rows(wh, name, ctx["dims"]) if name else None
    if df is None or df.empty or "estimate" not in df:
        return '<p class="absent">no domain estimates</p>'
    dims = ctx["dims"]
    df["domain"] = domain_label(df, dims)
    ind = df["indicator"].iloc[0] if "indicator" in df else ""
    model = (
        df["method"].isin(["augmented", "composite"]) if "method" in df else df["estimate"].isna()
    )
    level = df.get("domain_level", pd.Series("", df.index))
    margin = level.isin(["national", dims[0] if dims else ""])
    cells = df[model & ~margin].head(15)
    pick = pd.concat([df[margin], cells])
    series = {}
    for label, prefix in (("direct", "direct_"), ("augmented", "augmented_"), ("published", "")):
        cols = [f"{prefix}estimate", f"{prefix}ci_low", f"{prefix}ci_high"]
        if all(c in pick for c in cols):
            vals = pick[cols].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
            series[label] = [tuple(map(float, r)) for r in vals]
    show = ["domain", "support_class", "method", "grade", "model_share", "basis", "estimate"]
    show += ["ci_low", "ci_high", "direct_estimate", "direct_grade", "augmented_estimate"]
    show += ["n_respondents", "n_synthetic", "reason"]
    missing = [c for c in ("method", "grade", "model_share", "basis") if c not in pick]
    absent = f'<p class="absent">absent columns: {esc(", ".join(missing))}</p>' if missing else ""
    wave = f", wave {fmt(pick['wave'].iloc[0])}" if "wave" in pick and len(pick) else ""
    return (
        f"<p>Indicator <b>{esc(ind)}</b>{esc(wave)}: the national and {esc(dims[0] if dims else '')} "
        "domains and up to 15 cells carried by the model, direct beside augmented (95% intervals)."
        f"</p>{absent}"
        + svg.intervals(list(pick["domain"].astype(str)), series, f"estimates for {ind}")
        + table(pick[[c for c in show if c in pick]])
    )


def _reason_kind(reason: str) -> str:
    return re.sub(r"\d+(\.\d+)?", "#", str(reason))[:140]


def suppression(wh: Warehouse, ctx: dict) -> str:
    parts = []
    name = estimates_table(wh)
    df = wh.table(name, ["method", "reason", "sdc_status"]) if name else None
    if df is not None and "method" in df:
        sup = df[~_published(df)].copy()
        sup["reason kind"] = sup.get("reason", pd.Series("", sup.index)).map(_reason_kind)
        kinds = sup.groupby("reason kind").size().rename("estimates").sort_values(ascending=False)
        parts.append(
            f"<p>{len(sup)} of {len(df)} estimates suppressed (numbers in reasons shown as #).</p>"
            + table(kinds.reset_index().head(25))
        )
        if "sdc_status" in df:
            parts.append("<h3>Table protection status of estimates</h3>")
            parts.append(table(df.groupby("sdc_status").size().rename("n").reset_index()))
    ts = wh.table("table_suppression", ["table_name", "status"])
    if ts is not None and {"table_name", "status"} <= set(ts):
        parts.append("<h3>Protected tables: cells by status</h3>")
        parts.append(
            table(ts.groupby(["table_name", "status"]).size().rename("cells").reset_index())
        )
    audit = wh.table("suppression_audit", ["table_name", "status", "protected"])
    if audit is not None and "protected" in audit:
        bad = int((~audit["protected"].astype(bool)).sum())
        parts.append(
            f"<p>Suppression audit: {len(audit)} suppressed cells checked, "
            f"{status_badge(bad == 0)} ({bad} not protected).</p>"
        )
    return "".join(parts) or '<p class="absent">no suppression tables</p>'
