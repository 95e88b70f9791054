"""Report sections on the checks: back-test, fidelity, disclosure."""

from __future__ import annotations

import numpy as np
import pandas as pd

from surveysynth.report import svg
from surveysynth.report.html import esc, fmt, table
from surveysynth.report.warehouse import Warehouse, quote

PROVENANCE = {"is_synthetic", "implicate", "synth_run_id", "synth_method", "support_class"}
PROVENANCE |= {"synth_weight", "cell_id", "wave", "_row_id", "synthetic_id", "release_id"}


def backtest(wh: Warehouse, ctx: dict) -> str:
    from surveysynth.report.sections_gates import with_state

    summary = with_state(wh.table("backtest_summary"))
    res = wh.table("backtest_results")
    parts = ["<h3>Gate metrics</h3>", table(summary, badges=("passed",))]
    need = {"n_thinned", "indicator", "augmented_estimate", "augmented_ci_low", "augmented_ci_high"}
    if res is None or not need <= set(res):
        return "".join(parts) + '<p class="absent">backtest_results absent or incomplete</p>'
    if res.empty:
        return "".join(parts) + '<p class="absent">no back-test rows: no cell was thinned</p>'
    ref = res.get("full_sample_value", np.nan)
    if "true_value" in res:
        ref = res["true_value"].where(res["true_value"].notna(), ref)
    res = res.assign(_ref=ref)
    num = [c for c in res if c.endswith(("estimate", "ci_low", "ci_high")) or c == "_ref"]
    res[num] = res[num].apply(pd.to_numeric, errors="coerce").astype(float)
    rows = [_backtest_size(n, g) for n, g in res.groupby("n_thinned")]
    by_size = pd.DataFrame(rows)
    parts += [
        "<h3>By thinned size</h3>",
        (
            "<p>Coverage: share of 95% intervals holding the reference (the truth where known, "
            "else the full-sample value). Error ratio: RMSE of the augmented over the direct "
            "estimate from the thinned sample, per indicator, median over indicators.</p>"
        ),
        table(by_size),
        svg.grouped_bars(
            [f"n = {fmt(n)}" for n in by_size["n_thinned"]],
            {c: list(by_size[c]) for c in ("augmented_coverage", "direct_coverage")},
            "back-test coverage by thinned size",
            width=420,
        ),
    ]
    return "".join(parts)


def _backtest_size(n, g: pd.DataFrame) -> dict:
    def cover(prefix: str) -> float:
        lo, hi = g.get(f"{prefix}ci_low"), g.get(f"{prefix}ci_high")
        if lo is None or hi is None:
            return float("nan")
        ok = g["_ref"].notna() & lo.notna() & hi.notna()
        return float(((lo <= g["_ref"]) & (g["_ref"] <= hi))[ok].mean())

    ratios = []
    if "direct_estimate" in g:
        for _, ind in g.groupby("indicator"):
            if not ind["direct_estimate"].notna().any():
                continue  # emptied cells: no direct estimate to compare with
            a = np.sqrt(np.nanmean((ind["augmented_estimate"] - ind["_ref"]) ** 2))
            d = np.sqrt(np.nanmean((ind["direct_estimate"] - ind["_ref"]) ** 2))
            if np.isfinite(a) and np.isfinite(d) and d > 0:
                ratios.append(a / d)
    return {
        "n_thinned": n,
        "estimates": len(g),
        "augmented_coverage": cover("augmented_"),
        "direct_coverage": cover("direct_"),
        "error_ratio_median": float(np.median(ratios)) if ratios else float("nan"),
    }


def _outcomes(wh: Warehouse, ctx: dict, real: str, syn: str) -> list[tuple[str, str]]:
    """(column, kind) of the synthesized outcomes: from the manifest, else the shared columns."""
    both = set(wh.columns(real)) & set(wh.columns(syn))
    synth = ctx["manifest"].get("synthesis_parameters") or {}
    listed = synth.get("outcomes") if isinstance(synth, dict) else None
    if isinstance(listed, list):
        out = [(o.get("name"), o.get("type")) for o in listed if isinstance(o, dict)]
        return [(c, t) for c, t in out if c in both]
    skip = PROVENANCE | set(ctx["dims"])
    return [(c, "unknown") for c in wh.columns(syn) if c in both and c not in skip]


def _sample(wh: Warehouse, name: str, cols: list[str], n: int = 10000) -> pd.DataFrame:
    sel = ", ".join(quote(c) for c in cols)
    return wh.sql(
        f"select {sel} from {wh.rel(name)} using sample reservoir({n} rows) repeatable (7)"
    )


def fidelity(wh: Warehouse, ctx: dict) -> str:
    from surveysynth.report.sections_gates import with_state

    metrics = with_state(wh.table("fidelity_metrics"))
    parts = ["<h3>Metrics</h3>", table(metrics, badges=("passed", "status"))]
    real = next((n for n in ("synthesis_responses", "stg_responses") if wh.has(n)), None)
    syn = next(
        (n for n in ("synthetic_microdata_release", "synthetic_microdata") if wh.has(n)), None
    )
    if real is None or syn is None:
        return "".join(parts) + '<p class="absent">no real or synthetic records to compare</p>'
    cols = _outcomes(wh, ctx, real, syn)
    if not cols:
        return "".join(parts) + '<p class="absent">no outcome columns shared</p>'
    r = _sample(wh, real, [c for c, _ in cols])
    s = _sample(wh, syn, [c for c, _ in cols])
    parts.append(
        f"<h3>Marginals: real ({esc(real)}) vs synthetic ({esc(syn)})</h3><p class='note'>"
        "Unweighted, a seeded sample of up to 10,000 records each; the synthetic records "
        "stand for the thin cells only, so part of a difference is the cells' composition.</p>"
    )
    charts, numeric = [], []
    for col, kind in cols:
        if _is_numeric(r[col]) and (kind in ("continuous", "count") or r[col].nunique() > 12):
            numeric.append(_quantiles(col, r[col], s[col]))
        else:
            charts.append(_bars(col, r[col], s[col]))
    parts.append('<div class="wide">' + "".join(charts) + "</div>")
    if numeric:
        parts.append(table(pd.DataFrame(numeric)))
    parts.append(_dependence(r, s, [c for c, _ in cols]))
    return "".join(parts)


def _is_numeric(x: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(x) and not pd.api.types.is_bool_dtype(x)


def _bars(col: str, r: pd.Series, s: pd.Series) -> str:
    rs, ss = _shares(r), _shares(s)
    levels = list(rs.index.union(ss.index))[:15]
    series = {
        "real": [float(rs.get(k, 0.0)) for k in levels],
        "synthetic": [float(ss.get(k, 0.0)) for k in levels],
    }
    chart = svg.grouped_bars(levels, series, f"marginal of {col}")
    return f'<div style="display:inline-block;vertical-align:top;margin:4px"><b>{esc(col)}</b><br>{chart}</div>'


def _shares(x: pd.Series) -> pd.Series:
    """Share of each level, missing as '(missing)', levels as text."""
    vc = x.value_counts(dropna=False, normalize=True)
    vc.index = ["(missing)" if pd.isna(k) else str(k) for k in vc.index]
    return vc.groupby(level=0).sum()


def _quantiles(col: str, r: pd.Series, s: pd.Series) -> dict:
    out = {"column": col, "missing real": r.isna().mean(), "missing synthetic": s.isna().mean()}
    for q in (0.1, 0.5, 0.9):
        out[f"p{int(q * 100)} real"] = r.quantile(q)
        out[f"p{int(q * 100)} synthetic"] = s.quantile(q)
    return out


def _codes(x: pd.Series, edges: np.ndarray | None) -> np.ndarray:
    """Integer codes: numeric answers by bin (``edges``), others by level; missing its own."""
    if edges is not None:
        v = x.to_numpy(dtype=float)
        return np.where(np.isnan(v), len(edges) + 1, np.digitize(v, edges)).astype(np.int64)
    codes = pd.factorize(x)[0].astype(np.int64)  # missing is -1: its own level
    return codes


def cramers_v(a: np.ndarray, b: np.ndarray) -> float:
    """Cramér's V of two integer-coded columns."""
    _, a = np.unique(a, return_inverse=True)
    _, b = np.unique(b, return_inverse=True)
    na, nb = int(a.max(initial=-1)) + 1, int(b.max(initial=-1)) + 1
    if na < 2 or nb < 2:
        return 0.0
    tab = np.bincount(a * nb + b, minlength=na * nb).reshape(na, nb).astype(float)
    n = tab.sum()
    exp = tab.sum(1, keepdims=True) @ tab.sum(0, keepdims=True) / n
    chi2 = float(((tab - exp) ** 2 / np.where(exp > 0, exp, 1)).sum())
    return float(np.sqrt(chi2 / n / (min(na, nb) - 1)))


def _dependence(r: pd.DataFrame, s: pd.DataFrame, cols: list[str]) -> str:
    codes_r, codes_s = {}, {}
    for c in cols:
        edges = None
        if _is_numeric(r[c]) and r[c].nunique() > 12:
            edges = np.unique(np.nanquantile(r[c].to_numpy(dtype=float), [0.2, 0.4, 0.6, 0.8]))
        codes_r[c], codes_s[c] = _codes(r[c], edges), _codes(s[c], edges)
    fill, tip, rows = {}, {}, []
    for i, a in enumerate(cols):
        for b in cols[i + 1 :]:
            vr, vs = cramers_v(codes_r[a], codes_r[b]), cramers_v(codes_s[a], codes_s[b])
            d = abs(vr - vs)
            rows.append({"pair": f"{a} x {b}", "V real": vr, "V synthetic": vs, "abs diff": d})
            for k in ((a, b), (b, a)):
                fill[k] = svg.ramp(d, 0.3)
                tip[k] = f"{a} x {b}: Cramér's V real {vr:.3f}, synthetic {vs:.3f}"
    if not rows:
        return ""
    return (
        "<h3>Dependence: |Cramér's V real - synthetic| by pair</h3><p class='note'>Numeric "
        "answers cut at the real quintiles, missing as its own level; white 0, red 0.3 or more."
        "</p>"
        + svg.heatmap(cols, cols, fill, tip, "dependence difference heatmap", cell=26)
        + table(pd.DataFrame(rows).sort_values("abs diff", ascending=False).head(20))
    )


def disclosure(wh: Warehouse, ctx: dict) -> str:
    dm = wh.table("disclosure_metrics")
    if dm is None or dm.empty:
        return table(dm)
    keep = ["implicate", "metric", "column", "value", "reference", "threshold", "comparison"]
    keep += ["status"]
    keep += ["passed", "detail"]
    from surveysynth.report.sections_gates import with_state

    shown = with_state(dm)[[c for c in keep if c in dm]]
    bars = ""
    if {"metric", "value", "threshold"} <= set(dm):
        # a ratio reads "below 1 passes" only for a '<=' rule with a positive threshold and a
        # value of 0 or more: a difference below a negative threshold showed as a bar of 2.19,
        # and the attacks' p-value (a '>' rule) set the scale for every other bar
        t = dm[dm["threshold"].notna() & (dm["threshold"] > 0) & (dm["value"] >= 0)]
        if "comparison" in t:
            t = t[t["comparison"] == "<="]
        if "implicate" in t:
            t = t[t["implicate"] == t["implicate"].min()]
        labels = (
            t["metric"]
            + t.get("column", pd.Series("", t.index))
            .fillna("")
            .map(lambda c: f" [{c}]" if c else "")
        ).tolist()
        ratio = (t["value"] / t["threshold"]).astype(float).tolist()
        bars = (
            "<p>Value / threshold (first implicate; the '<=' rules with a positive threshold, "
            "below 1 passes; the others are in the table). The detail column gives each "
            "metric's reference (holdout or null).</p>"
            + svg.grouped_bars(labels, {"value / threshold": ratio}, "disclosure ratios", 520)
        )
    return bars + table(shown, badges=("passed", "status"))
