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
