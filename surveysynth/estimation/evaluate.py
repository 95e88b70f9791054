"""Scoring augmented estimates against a known truth (the demo world): RMSE against direct, and the
empirical coverage of the intervals, over sparse cells x waves x indicators.

The rows scored are the cell-level rows of domain_estimates whose cell x wave is sparse, that have
synthetic records (a sparse cell whose every unit responded is its own census) and a direct
estimate. To pool indicators with different units, each error is divided by the standard deviation
of the truth over the scored rows of its indicator (the same divisor for every method, so ratios
per indicator are unchanged).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd


def _rmse(x: pd.Series) -> float:
    x = pd.Series(x).dropna()
    return float(np.sqrt(np.mean(np.square(x)))) if len(x) else float("nan")


def sparse_rows(
    domain_estimates: pd.DataFrame,
    truth: pd.DataFrame,
    dims: Sequence[str],
    wave: str = "wave",
    support_class: str = "sparse",
) -> pd.DataFrame:
    """The scored rows, with ``true_value`` and the per-indicator ``scale``."""
    d = domain_estimates[
        (domain_estimates["domain_level"] == "cell")
        & (domain_estimates["support_class"] == support_class)
        & (domain_estimates["n_synthetic"] > 0)
        & domain_estimates["direct_estimate"].notna()
        & domain_estimates["augmented_estimate"].notna()
    ].copy()
    t = truth[[*dims, wave, "indicator", "true_value"]]
    d = d.merge(t, on=[*dims, wave, "indicator"], how="inner")
    d["scale"] = d.groupby("indicator")["true_value"].transform("std")
    return d[d["scale"] > 0].reset_index(drop=True)


def score(
    rows: pd.DataFrame, methods: dict[str, tuple[str, str | None, str | None]]
) -> pd.DataFrame:
    """Per method: scaled RMSE, RMSE ratio to the first method, coverage of its interval and mean
    scaled interval width, over ``rows`` (columns true_value and scale). ``methods`` maps a name to
    (estimate column, interval low column, interval high column)."""
    out = []
    first = None
    for name, (est, lo, hi) in methods.items():
        e = (rows[est] - rows["true_value"]) / rows["scale"]
        r = _rmse(e)
        first = r if first is None else first
        cov = (
            float(((rows[lo] <= rows["true_value"]) & (rows["true_value"] <= rows[hi])).mean())
            if lo
            else np.nan
        )
        width = float(((rows[hi] - rows[lo]) / rows["scale"]).mean()) if lo else np.nan
        out.append(
            {
                "method": name,
                "n_rows": int(e.notna().sum()),
                "rmse_scaled": r,
                "rmse_ratio_to_" + next(iter(methods)): r / first if first else np.nan,
                "coverage_95": cov,
                "mean_width_scaled": width,
                "mean_error_scaled": float(e.mean()),
            }
        )
    return pd.DataFrame(out)


def by_indicator(rows: pd.DataFrame) -> pd.DataFrame:
    """RMSE ratio augmented / direct and augmented coverage per indicator."""
    recs = []
    for ind, g in rows.groupby("indicator", sort=True):
        ea = g["augmented_estimate"] - g["true_value"]
        ed = g["direct_estimate"] - g["true_value"]
        recs.append(
            {
                "indicator": ind,
                "n_rows": len(g),
                "rmse_ratio": _rmse(ea) / _rmse(ed),
                "coverage_95": float(
                    (
                        (g["augmented_ci_low"] <= g["true_value"])
                        & (g["true_value"] <= g["augmented_ci_high"])
                    ).mean()
                ),
            }
        )
    return pd.DataFrame(recs)


# ----------------------------------------------------------------------- published estimates
def domain_truth(
    domain_estimates: pd.DataFrame, truth: pd.DataFrame, dims: Sequence[str], wave: str = "wave"
) -> pd.DataFrame:
    """domain_estimates with ``true_value`` for every domain level: the cell truth aggregated with
    the cells' population counts (a domain's population mean is the N-weighted mean of its cells'),
    and ``scale``, the standard deviation of the cell truth of the indicator (one divisor for every
    level and method, so errors of indicators with different units pool)."""
    cells = domain_estimates.loc[
        domain_estimates["domain_level"] == "cell", [*dims, wave, "indicator", "n_population"]
    ]
    t = cells.merge(truth[[*dims, wave, "indicator", "true_value"]], on=[*dims, wave, "indicator"])
    t["nv"] = t["n_population"].astype(float) * t["true_value"]
    scale = t.groupby("indicator")["true_value"].std().rename("scale")
    parts = []
    for level, g in domain_estimates.groupby("domain_level", sort=False):
        keys = [d for d in dims if g[d].notna().all()] if level != "national" else []
        agg = t.groupby([*keys, wave, "indicator"], as_index=False)[["nv", "n_population"]].sum()
        agg["true_value"] = agg["nv"] / agg["n_population"]
        parts.append(
            g.merge(agg[[*keys, wave, "indicator", "true_value"]], on=[*keys, wave, "indicator"])
        )
    out = pd.concat(parts, ignore_index=True).merge(scale, on="indicator")
    return out[out["scale"] > 0].reset_index(drop=True)


def _class_of(d: pd.DataFrame) -> pd.Series:
    """support class for cells; the domain level (region, national, ...) for other domains."""
    return d["support_class"].where(d["domain_level"] == "cell", d["domain_level"]).fillna("?")


def _covered(d: pd.DataFrame, lo: str, hi: str) -> pd.Series:
    """The truth inside the interval, up to rounding (1e-9 relative): an exact estimate (a census
    cell) has a zero-width interval that must count as covering its own value."""
    tol = 1e-9 * np.maximum(1.0, d["true_value"].abs())
    return (d[lo] - tol <= d["true_value"]) & (d["true_value"] <= d[hi] + tol)


def published_coverage(rows: pd.DataFrame, by: Sequence[str]) -> pd.DataFrame:
    """Coverage of the published intervals (method not suppressed), grouped by ``by`` (columns of
    ``rows``, or 'class' / 'kind' for the support class and mean vs share). Exact estimates (a
    zero-width interval: a census cell, every unit answered) cover trivially and say nothing about
    how intervals are calibrated: they are counted in ``n_exact`` and left out of the coverage."""
    d = rows[(rows["method"] != "suppressed") & rows["estimate"].notna()].copy()
    d["class"] = _class_of(d)
    d["kind"] = np.where(d["measure"] == "share", "share", "mean")
    d["covered"] = _covered(d, "ci_low", "ci_high")
    d["width"] = (d["ci_high"] - d["ci_low"]) / d["scale"]
    d["exact"] = (d["ci_high"] - d["ci_low"]) <= 1e-12 * np.maximum(1.0, d["estimate"].abs())
    g = d.groupby(list(by))
    u = d[~d["exact"]].groupby(list(by))
    return pd.DataFrame(
        {
            "n_rows": g.size(),
            "n_exact": g["exact"].sum(),
            "coverage_95": u["covered"].mean(),
            "mean_width_scaled": u["width"].mean(),
        }
    ).reset_index()


def share_intervals_outside(rows: pd.DataFrame) -> dict[str, int]:
    """Share intervals with an end outside [0, 1]: published, direct and augmented columns."""
    s = rows[rows["measure"] == "share"]
    out = {}
    for name, (lo, hi) in {
        "published": ("ci_low", "ci_high"),
        "direct": ("direct_ci_low", "direct_ci_high"),
        "augmented": ("augmented_ci_low", "augmented_ci_high"),
    }.items():
        if lo in s.columns:
            out[name] = int(((s[lo] < -1e-12) | (s[hi] > 1 + 1e-12)).sum())
    return out


def published_rmse(rows: pd.DataFrame) -> pd.DataFrame:
    """Per class x kind, over published rows that have both a direct and an augmented estimate:
    scaled RMSE of the published, direct and augmented estimates, and published / min of the two."""
    d = rows[
        (rows["method"] != "suppressed")
        & rows["estimate"].notna()
        & rows["direct_estimate"].notna()
        & rows["augmented_estimate"].notna()
    ].copy()
    d["class"] = _class_of(d)
    d["kind"] = np.where(d["measure"] == "share", "share", "mean")
    recs = []
    for (cls, kind), g in d.groupby(["class", "kind"]):
        r = {
            k: _rmse((g[c] - g["true_value"]) / g["scale"])
            for k, c in (
                ("published", "estimate"),
                ("direct", "direct_estimate"),
                ("augmented", "augmented_estimate"),
            )
        }
        best = min(r["direct"], r["augmented"])
        recs.append(
            {
                "class": cls,
                "kind": kind,
                "n_rows": len(g),
                **{f"rmse_{k}": v for k, v in r.items()},
                "published_over_best": r["published"] / best if best > 0 else np.nan,
            }
        )
    return pd.DataFrame(recs)
