"""Scoring synthetic cell estimates against a known truth (simulated worlds, back-tests).

Indicators follow the demo truth's naming: a numeric outcome's name for its mean, and
``col=level`` for the share of a level of a discrete outcome. To pool errors over
indicators with different units, each indicator's errors are divided by the standard
deviation of its true values over the evaluated cells (the same divisor for every method,
so ratios between methods are unchanged per indicator).

Three estimators per cell x wave:
* ``direct``: Hajek estimate from the real respondents (design weights);
* ``synth``: from the synthetic records only (synth_weight, pooled over implicates);
* ``augmented``: respondents counted once each plus the synthetic records standing for
  the non-respondents (synth_weight / m): the population-completion estimate that
  augment mode is for (it matters where respondents are a large share of a small cell).

Callers may add reference estimators (``extra``: name -> frame of keys, ``indicator``,
``estimate``), scored on the same rows; e.g. the demo world's oracle floor, the model's
exact conditional expectation, which no synthetic-only estimate can beat on average.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from surveysynth.contract.config import SynthConfig
from surveysynth.synthesis.api import weighted_cell_estimates

ALL = "ALL (scaled)"
ALL_MINORITY = "ALL (scaled), n/N < 0.5"
FRACTION_BANDS = [0.0, 0.1, 0.25, 0.5, 0.75, 1.0]


def _rmse(x) -> float:
    x = pd.Series(x).dropna()
    return float(np.sqrt(np.mean(np.square(x)))) if len(x) else float("nan")


def augmented_estimates(
    synthetic: pd.DataFrame, responses: pd.DataFrame, config: SynthConfig, keys: list[str]
) -> pd.DataFrame:
    m = max(int(synthetic["implicate"].nunique()), 1) if len(synthetic) else 1
    cols = [*keys, *config.outcome_names]
    real = responses[cols].assign(_w=1.0)
    syn = synthetic[cols].assign(_w=synthetic["synth_weight"].to_numpy(dtype=float) / m)
    both = pd.concat([real, syn], ignore_index=True)
    return weighted_cell_estimates(both, config, "_w", keys)


def evaluate_against_truth(
    synthetic: pd.DataFrame,
    responses: pd.DataFrame,
    support: pd.DataFrame,
    truth: pd.DataFrame,
    config: SynthConfig,
    extra: dict[str, pd.DataFrame] | None = None,
) -> dict[str, pd.DataFrame]:
    """Sparse cells x waves x indicators where the direct estimate is computable: RMSE of
    direct, synthetic and augmented estimates vs the truth, on the cells where both direct
    and synthetic estimates exist (a fully responding cell gets no synthetic records) and
    the cell is not a census (n < N; in a census cell the direct estimate is the truth).
    Empty cells: coverage and RMSE
    of the synthetic estimates (also for empty cells of at least 10 units: most empty cells
    of a take-all stratum hold one or two units, whose values no model predicts). Returns
    ``by_indicator``, ``by_fraction`` (the pooled rows by sampling-fraction band), ``empty``
    and ``detail``."""
    keys = [*config.cell_dims, config.wave]
    t = truth.rename(columns={"true_value": "truth"})[[*keys, "indicator", "truth"]]
    sparse = support.loc[support["support_class"] == "sparse", keys]
    empty = support.loc[support["support_class"] == "empty", keys]
    ests = {
        "direct": weighted_cell_estimates(
            responses.merge(sparse, on=keys), config, config.weight, keys
        ),
        "synth": weighted_cell_estimates(synthetic, config, "synth_weight", keys),
        "augmented": augmented_estimates(synthetic, responses.merge(sparse, on=keys), config, keys),
        **(extra or {}),
    }
    det, n_census = _sparse_detail(sparse, t, ests, support, keys)
    scale = det.groupby("indicator")["truth"].std().rename("scale")
    det = det.merge(scale, left_on="indicator", right_index=True)
    by_ind, by_frac = _sparse_tables(det, [k for k in ests if k != "direct"])
    by_ind.attrs["n_census_cell_waves"] = n_census
    out_e = _empty_table(empty, t, ests["synth"], scale, support, keys)
    return {"by_indicator": by_ind, "by_fraction": by_frac, "empty": out_e, "detail": det}


def _sparse_detail(sparse, t, ests, support, keys) -> tuple[pd.DataFrame, int]:
    """The sparse cells x waves x indicators with every estimate beside the truth, where both
    the direct and the synthetic estimates exist (a fully responding cell has no synthetic
    records), with the cell's sampling fraction n / N; census cells (every unit responded: the
    direct estimate is the truth, so no sparse-cell method can be compared on them) are
    counted, not kept."""
    det = sparse.merge(t, on=keys)
    for name, e in ests.items():
        det = det.merge(e.rename(columns={"estimate": name}), on=[*keys, "indicator"], how="left")
    det = det[det["direct"].notna() & det["synth"].notna()].copy()
    det = det.merge(support[[*keys, "n_respondents", "n_population"]], on=keys, how="left")
    det["fraction"] = pd.to_numeric(det["n_respondents"], errors="coerce") / pd.to_numeric(
        det["n_population"], errors="coerce"
    )
    census = (det["fraction"] >= 1).to_numpy()
    n_census = int(det.loc[census, keys].drop_duplicates().shape[0])
    return det[~census].copy(), n_census


def _sparse_tables(det: pd.DataFrame, names: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """RMSE rows by indicator (each on its own scale), over all (errors over each indicator's
    spread of the truth), over the cells the records stand for most of (respondents < half);
    and by sampling-fraction band: a synthetic-only estimate cannot know the units' own noise,
    so its edge over the direct estimate shrinks as respondents fill the cell."""
    rows = [_row(ind, g, 1.0, names) for ind, g in det.groupby("indicator", sort=True)]
    rows.append(_row(ALL, det, det["scale"], names))
    minority = (det["fraction"] < 0.5).to_numpy()
    rows.append(_row(ALL_MINORITY, det[minority], det.loc[minority, "scale"], names))
    band = pd.cut(det["fraction"], FRACTION_BANDS).astype(str)
    by_frac = pd.DataFrame(
        [
            _row(
                f"n/N in {b}",
                det[(band == b).to_numpy()],
                det.loc[(band == b).to_numpy(), "scale"],
                names,
            )
            for b in band.drop_duplicates().sort_values()
        ]
    )
    return pd.DataFrame(rows), by_frac


def _empty_table(empty, t, synth, scale, support, keys) -> pd.DataFrame:
    """Empty cells: RMSE and coverage of the synthetic estimates by indicator, over all, and
    over the cells of at least 10 units."""
    emp = (
        empty.merge(t, on=keys)
        .merge(synth.rename(columns={"estimate": "synth"}), on=[*keys, "indicator"], how="left")
        .merge(scale, left_on="indicator", right_index=True, how="left")
    )
    erows = [
        {
            "indicator": ind,
            "n": len(g),
            "rmse_synth": _rmse(g["synth"] - g["truth"]),
            "coverage": float(g["synth"].notna().mean()),
        }
        for ind, g in emp.groupby("indicator", sort=True)
    ]
    big = emp.merge(support[[*keys, "n_population"]], on=keys, how="left")
    big = big[pd.to_numeric(big["n_population"], errors="coerce") >= 10]
    for label, d in ((ALL, emp), (ALL + ", N >= 10", big)):
        erows.append(
            {
                "indicator": label,
                "n": len(d),
                "rmse_synth": _rmse((d["synth"] - d["truth"]) / d["scale"]),
                "coverage": float(d["synth"].notna().mean()) if len(d) else float("nan"),
            }
        )
    out_e = pd.DataFrame(erows)
    covered = emp.groupby(keys)["synth"].apply(lambda s: s.notna().any())
    out_e.attrs["n_empty_cell_waves"] = len(empty)
    out_e.attrs["n_empty_with_estimate"] = int(covered.sum()) if len(covered) else 0
    return out_e


def _row(ind: str, g: pd.DataFrame, scale, names: list[str]) -> dict:
    e = {k: (g[k] - g["truth"]) / scale for k in ("direct", *names)}
    rd = _rmse(e["direct"])
    out = {"indicator": ind, "n": len(g), "rmse_direct": rd}
    for k in names:
        out[f"rmse_{k}"] = _rmse(e[k])
        out[f"ratio_{k}"] = out[f"rmse_{k}"] / rd if rd > 0 else float("nan")
    return out
