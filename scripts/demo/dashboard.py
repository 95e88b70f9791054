"""Analysts' dashboard on the release tables (Streamlit; the warehouse opened read-only).

    streamlit run scripts/demo/dashboard.py -- --db target/surveysynth.duckdb     (make dashboard)

Reads only the release: domain_estimates_release, synthetic_microdata_release and
release_manifest, found by name in whichever schema holds them. Filters by every cell dimension,
wave and indicator; estimates with their intervals, method, grade, model_share and basis;
suppressed estimates shown as suppressed with the reason; the synthetic records' provenance.
Streamlit because a dbt team already writes Python: one file, no build step, and it reads the
DuckDB file directly (Evidence would need Node and its own SQL source layer).
"""

from __future__ import annotations

import argparse
import os
import sys

import altair as alt
import pandas as pd
import streamlit as st

from surveysynth.report.warehouse import Warehouse, quote

ESTIMATES = "domain_estimates_release"
SYNTHETIC = "synthetic_microdata_release"
SHOWN = ["wave", "indicator", "measure", "support_class", "method", "estimate", "ci_low"]
SHOWN += ["ci_high", "se", "grade", "model_share", "basis", "sdc_status", "reason"]
SHOWN += ["n_respondents", "n_synthetic", "n_population"]
PROVENANCE = ["release_id", "synth_run_id", "synth_method", "mode", "m", "seed", "all_gates_passed"]


def db_path() -> str:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", default=os.environ.get("SURVEYSYNTH_DUCKDB_PATH"))
    args, _ = parser.parse_known_args(sys.argv[1:])
    return args.db or "target/surveysynth.duckdb"


@st.cache_resource
def warehouse(path: str) -> Warehouse:
    return Warehouse(path)


def estimate_dims(wh: Warehouse) -> list[str]:
    """The cell dimensions of the release estimates (ids and provenance columns excluded)."""
    return wh.cell_dims(ESTIMATES)


@st.cache_data
def estimates(path: str) -> pd.DataFrame:
    wh = warehouse(path)
    dims = estimate_dims(wh)
    want = [*dims, "cell_id", "domain_level", *SHOWN, "release_id"]
    df = wh.table(ESTIMATES, list(dict.fromkeys(want)))
    return pd.DataFrame() if df is None else df


@st.cache_data
def manifest(path: str) -> dict:
    wh = warehouse(path)
    return wh.manifest() if wh.has("release_manifest") else {}


def sidebar_filters(df: pd.DataFrame, dims: list[str]) -> pd.DataFrame:
    st.sidebar.header("Filters")
    if "domain_level" in df:
        levels = sorted(df["domain_level"].dropna().astype(str).unique())
        default = levels.index("cell") if "cell" in levels else 0
        df = df[df["domain_level"] == st.sidebar.selectbox("Domain level", levels, default)]
    if "indicator" in df:
        inds = sorted(df["indicator"].dropna().astype(str).unique())
        df = df[df["indicator"] == st.sidebar.selectbox("Indicator", inds, key="indicator")]
    if "wave" in df:
        waves = sorted(df["wave"].dropna().unique().tolist())
        pick = st.sidebar.multiselect("Wave", waves, default=waves[-1:], key="wave")
        df = df[df["wave"].isin(pick)] if pick else df
    for d in dims:
        values = sorted(df[d].dropna().astype(str).unique())
        pick = st.sidebar.multiselect(f"{d}", values, key=f"dim_{d}", placeholder="all")
        df = df[df[d].astype(str).isin(pick)] if pick else df
    return df


def published_mask(df: pd.DataFrame) -> pd.Series:
    pub = df["method"].ne("suppressed") if "method" in df else pd.Series(True, df.index)
    if "sdc_status" in df:
        pub &= ~df["sdc_status"].astype(str).str.contains("suppress")
    return pub


def headline(df: pd.DataFrame) -> None:
    pub = published_mask(df)
    cols = st.columns(4)
    cols[0].metric("Estimates shown", f"{len(df)}")
    cols[1].metric("Published", f"{int(pub.sum())}")
    cols[2].metric("Suppressed", f"{int((~pub).sum())}")
    mean = df.loc[pub, "estimate"].mean() if "estimate" in df else float("nan")
    cols[3].metric("Mean published estimate", "n/a" if pd.isna(mean) else f"{mean:.4g}")


def interval_chart(df: pd.DataFrame, dims: list[str]) -> None:
    pub = df[published_mask(df)].copy()
    if pub.empty or not {"estimate", "ci_low", "ci_high"} <= set(pub):
        st.info("No published estimate in this selection.")
        return
    label = [d for d in dims if d in pub] or ["cell_id"]
    pub["domain"] = pub[label].astype(str).agg(" | ".join, axis=1)
    pub["wave"] = pub.get("wave", "").astype(str)
    pub = pub.sort_values("estimate").head(60)
    color = "method:N" if "method" in pub else alt.value("#1f77b4")
    base = alt.Chart(pub).encode(y=alt.Y("domain:N", sort=None, title=None), color=color)
    bars = base.mark_rule().encode(
        x=alt.X("ci_low:Q", title="estimate, 95% interval"), x2="ci_high"
    )
    tips = [c for c in ("domain", "wave", "estimate", "ci_low", "ci_high", "grade") if c in pub]
    points = base.mark_point(filled=True).encode(x="estimate:Q", tooltip=tips)
    st.altair_chart((bars + points).properties(height=max(120, 16 * len(pub))))


def estimates_table(df: pd.DataFrame, dims: list[str]) -> None:
    show = df.copy()
    pub = published_mask(show)
    show["status"] = pub.map({True: "published", False: "suppressed"})
    for c in ("estimate", "ci_low", "ci_high", "se"):
        if c in show:
            show.loc[~pub, c] = None  # a suppressed value is never shown
    cols = [*dims, "status", *SHOWN]
    missing = [c for c in ("method", "grade", "model_share", "basis") if c not in show]
    if missing:
        st.caption(f"Absent from this release: {', '.join(missing)}")
    st.dataframe(show[[c for c in dict.fromkeys(cols) if c in show]], hide_index=True)
    sup = show[~pub]
    if len(sup) and "reason" in sup:
        st.subheader("Suppressed, and why")
        keys = [c for c in ("sdc_status", "reason") if c in sup]
        reasons = sup.groupby(keys).size().rename("estimates").sort_values(ascending=False)
        st.dataframe(reasons.reset_index(), hide_index=True)


def provenance(path: str, df: pd.DataFrame, dims: list[str]) -> None:
    man = manifest(path)
    st.subheader("Synthetic provenance")
    facts = {k: man.get(k) for k in PROVENANCE if k in man}
    st.write(facts or "No release manifest in this warehouse.")
    wh = warehouse(path)
    if not wh.has(SYNTHETIC) or "cell_id" not in df or "cell_id" not in wh.columns(SYNTHETIC):
        st.caption("No synthetic records in the release for this selection.")
        return
    cells = df["cell_id"].dropna().astype(str).unique().tolist()[:2000]
    by = [
        c for c in ("support_class", "synth_method", "synth_run_id") if c in wh.columns(SYNTHETIC)
    ]
    sel = ", ".join(quote(c) for c in by)
    q = (
        f"select {sel + ', ' if sel else ''}count(*) as synthetic_records, "
        f"count(distinct cell_id) as cells from {wh.rel(SYNTHETIC)} "
        f"where cell_id in (select unnest(?::varchar[])) {'group by ' + sel if sel else ''}"
    )
    counts = wh.sql(q, [cells])
    st.dataframe(counts, hide_index=True)
    st.caption(
        "Synthetic records stand for non-responding units of thin cells; every implicate is "
        "a complete dataset. They are not real units: never read a unit's values from them."
    )


def main() -> None:
    st.set_page_config(page_title="surveysynth release", layout="wide")
    path = db_path()
    st.title("surveysynth release dashboard")
    wh = warehouse(path)
    if not wh.has(ESTIMATES):
        st.error(f"No {ESTIMATES} in {path}: nothing has been released.")
        return
    dims = estimate_dims(wh)
    df = sidebar_filters(estimates(path), dims)
    st.caption(f"Warehouse {path} (read-only); release tables only.")
    headline(df)
    interval_chart(df, dims)
    st.subheader("Estimates")
    estimates_table(df, dims)
    provenance(path, df, dims)


main()
