"""The fidelity gate (model fidelity_metrics): synthetic records against the real respondents the
synthesizer saw, each statistic read against its real-vs-real reference (:mod:`.reference`).

    report = fidelity_gate(vars, responses, weights, synthetic)

- Real side: the responses the synthesizer was fitted on (synthesis_responses), in the cells x
  waves that have synthetic records; never a respondent it did not see.
- Synthetic side: the implicates the disclosure gate reads (``ss_risk_implicates``; null = all,
  each judged on its own at ``ss_gate_alpha`` / m), so both gates judge the same records.
- Pairs: each respondent with one record of its cell x wave, nearest on
  ``ss_fidelity_match_on`` (default the first frame auxiliary), without replacement.
- The test: :func:`surveysynth.checks.reference.max_t_gate` over ``ss_fidelity_permutations``
  swaps (199), tolerances ``ss_fidelity_tolerances``; plus S_pMSE on at most
  ``ss_fidelity_pmse_rows`` rows (:data:`surveysynth.checks.fidelity.PMSE_MAX_ROWS`, the same
  default in the library and dbt_project.yml) against ``s_pmse_max`` plus its own chance excess.
- The within-cell dependence family (:mod:`.within_cell`): every respondent against all the
  records of its cell x wave, its own max-T test over draws that put records in the respondents'
  place. The two tests share ``alpha`` (Bonferroni, half each); the gate's p-value is
  min(1, 2 min(p_paired, p_within)), so the gate's false-alarm rate stays at most ``alpha``.
- Fewer than ``ss_gate_min_rows`` pairs: the gate is ``not_assessable``; fewer such respondents
  in cells with two records or more: the within-cell family is (the paired test then judges
  alone, still at half of ``alpha``).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from surveysynth.checks.fidelity import PMSE_MAX_ROWS, pmse
from surveysynth.checks.reference import (
    DEFAULT_TOLERANCES,
    gate_statistics,
    max_t_gate,
    pair_rows,
    permutations_for,
    summarise,
    swap_matrix,
)
from surveysynth.checks.status import (
    GateConfigError,
    GateSettings,
    finish,
    not_assessable_row,
    p_value_row,
)
from surveysynth.checks.within_cell import FAMILY as WITHIN_CELL
from surveysynth.checks.within_cell import within_cell_statistics

log = logging.getLogger("surveysynth")

__all__ = ["DEFAULT_S_PMSE_MAX", "fidelity_gate", "gate_implicates"]

#: S_pMSE tolerance (STATS.md: < 10, better < 3), on a fixed number of rows.
DEFAULT_S_PMSE_MAX = 10.0
DEFAULT_PERMUTATIONS = 199
KEYS = ["cell_id", "wave"]


def gate_implicates(v: Mapping[str, Any], synthetic: pd.DataFrame) -> list[int]:
    """The implicates both the disclosure and the fidelity gates judge (``ss_risk_implicates``)."""
    have = sorted(int(x) for x in pd.unique(synthetic["implicate"]))
    want = v.get("ss_risk_implicates")
    if want is None:
        return have
    want = [int(x) for x in (want if isinstance(want, (list, tuple)) else [want])]
    missing = sorted(set(want) - set(have))
    if missing:
        raise GateConfigError(
            f"ss_risk_implicates = {want}: implicate(s) {missing} are not in the synthetic "
            f"records ({have})"
        )
    return want


def _tolerances(v: Mapping[str, Any]) -> tuple[dict[str, float], float, float]:
    given = dict(v.get("ss_fidelity_tolerances") or {})
    s_max = float(given.pop("s_pmse_max", DEFAULT_S_PMSE_MAX))
    rare = float(given.pop("rare_share", 0.05))
    bad = sorted(set(given) - set(DEFAULT_TOLERANCES))
    if bad:
        raise GateConfigError(
            f"ss_fidelity_tolerances: unknown key(s) {bad}; valid keys: "
            f"{sorted([*DEFAULT_TOLERANCES, 's_pmse_max', 'rare_share'])}"
        )
    return {**DEFAULT_TOLERANCES, **{k: float(x) for k, x in given.items()}}, s_max, rare


def _config(v: Mapping[str, Any], responses: pd.DataFrame, synthetic: pd.DataFrame) -> dict:
    dims = list(v.get("ss_cell_dims") or [])
    region = v.get("ss_fidelity_region_col") or (dims[0] if dims else None)
    if region is not None and region not in dims:
        raise GateConfigError(
            f"ss_fidelity_region_col = {region!r} is not a cell dimension (ss_cell_dims = {dims})"
        )
    outcomes = dict(v.get("ss_outcomes") or {})
    regression = v.get("ss_fidelity_regression")
    for reg in [regression] if isinstance(regression, Mapping) else (regression or []):
        missing = [c for c in [reg.get("y"), *(reg.get("x") or [])] if c not in outcomes]
        if missing:
            raise GateConfigError(
                f"ss_fidelity_regression {dict(reg)}: {missing} are not outcomes "
                f"({sorted(outcomes)}); name others, or set the var to null"
            )
    aux = [
        a
        for a in (v.get("ss_frame_auxiliaries") or [])
        if a in responses.columns and a in synthetic.columns
    ]
    match_on = v.get("ss_fidelity_match_on") or (aux[0] if aux else None)
    if match_on is not None and (
        match_on not in responses.columns or match_on not in synthetic.columns
    ):
        raise GateConfigError(
            f"ss_fidelity_match_on = {match_on!r} is not a column of both the responses and "
            "synthetic_microdata: name a frame auxiliary (ss_frame_auxiliaries) or set it to null"
        )
    return {
        "dims": dims,
        "region": region,
        "outcomes": outcomes,
        "regression": regression,
        "aux": aux,
        "match_on": match_on,
    }


def _pmse_row(real: pd.DataFrame, syn: pd.DataFrame, cfg: dict, v: Mapping, alpha: float):
    spec = {**{d: "categorical" for d in cfg["dims"]}, **cfg["outcomes"]}
    rows = int(v.get("ss_fidelity_pmse_rows") or PMSE_MAX_ROWS)
    n = min(len(real), rows // 2) * 2
    res = pmse(
        real,
        syn,
        spec,
        max_rows=rows,
        seed=_seed(v),
        max_terms=int(max(8, min(250, n // 20))),
    )
    k1 = max(res["k"] - 1, 1.0)
    chance = float(stats.chi2.ppf(1 - alpha, k1) / k1 - 1.0)
    s_max = cfg["s_pmse_max"]
    return {
        "family": "pmse",
        "metric": "s_pmse",
        "column": None,
        "value": res["s_pmse"],
        "reference": 1.0,
        "threshold": s_max + chance,
        "comparison": "<=",
        "passed": bool(res["s_pmse"] <= s_max + chance),
        "detail": (
            f"pMSE {res['pmse']:.4g} / null {res['null']:.4g}, logistic with k = {int(res['k'])} "
            f"terms on N = {int(res['n'])} rows; tolerance {s_max} plus chance "
            f"{chance:.3f} (chi2 quantile at {alpha:.3g})"
        ),
    }


def _within_cell(real: pd.DataFrame, syn: pd.DataFrame, cfg: dict, v: Mapping, st, alpha: float):
    """(rows, p-value) of the within-cell dependence family at ``alpha``; p NaN when it cannot
    judge. At least 5 / alpha draws, so that a p-value at alpha rests on several exceedances."""
    draws = max(
        int(v.get("ss_fidelity_permutations") or DEFAULT_PERMUTATIONS), math.ceil(5 / alpha)
    )
    wc = within_cell_statistics(
        real, syn, cfg["outcomes"], cfg["aux"], KEYS, cfg["match_on"], draws, _seed(v)
    )
    if wc.n_rows < st.min_rows or not wc.statistics:
        reason = (
            f"{wc.n_rows} respondent(s) in a cell x wave with two synthetic records or more, "
            f"fewer than ss_gate_min_rows = {st.min_rows}"
            if wc.n_rows < st.min_rows
            else "no pair of ordered columns (outcomes, auxiliaries) with an outcome"
        )
        row = not_assessable_row(WITHIN_CELL, reason, family=WITHIN_CELL, n_rows=wc.n_rows)
        return pd.DataFrame([row]), float("nan")
    table, p, _ = max_t_gate(summarise(wc.statistics), cfg["tolerances"], alpha)
    table["n_rows"] = wc.n_rows
    table["detail"] = table["detail"] + f" ({wc.n_rows} respondents, {draws} draws)"
    return table, p


def _seed(v: Mapping) -> int:
    return int(v.get("ss_seed") or 0)


def _gate_row(p_pair: float, p_within: float, alpha: float, perms: int, n: int, crit: float):
    ps = [x for x in (p_pair, p_within) if np.isfinite(x)]
    p = min(1.0, 2.0 * min(ps)) if ps else float("nan")
    within = f"{p_within:.4f}" if np.isfinite(p_within) else "not assessable"
    detail = (
        f"two tests at {alpha / 2:.3g} each, p = min(1, 2 min(paired, within-cell)): the "
        f"paired max-T permutation test, {perms} swaps of the {n} real/synthetic pairs, "
        f"p-value {p_pair:.4f}, critical standardised excess {crit:.3f}; the within-cell "
        f"dependence test, p-value {within}; false-alarm rate {alpha:.3g} for records "
        "exchangeable with the respondents"
    )
    return p_value_row("fidelity_gate", p, alpha, detail, family="gate")


def _judge_implicate(
    real: pd.DataFrame, syn: pd.DataFrame, cfg: dict, v: Mapping, st: GateSettings, alpha: float
) -> pd.DataFrame:
    seed = _seed(v)
    ia, ib = pair_rows(real, syn, KEYS, cfg["match_on"], seed)
    n = len(ia)
    if n < st.min_rows:
        return pd.DataFrame(
            [
                not_assessable_row(
                    "fidelity_gate",
                    f"{n} respondent(s) share a cell x wave with a synthetic record, fewer than "
                    f"ss_gate_min_rows = {st.min_rows}: two samples this small differ by chance "
                    "more than any tolerance",
                    n_pairs=n,
                )
            ]
        )
    cols = list(dict.fromkeys([*cfg["dims"], *cfg["aux"], *cfg["outcomes"]]))
    rp = real.iloc[ia].reset_index(drop=True)
    sp = syn.iloc[ib].reset_index(drop=True)
    pooled = pd.concat([rp[cols], sp[cols]], ignore_index=True)
    w = np.tile(rp["_weight"].to_numpy(dtype=float), 2)
    key = pd.concat([rp[KEYS], sp[KEYS]], ignore_index=True).astype(str).agg("|".join, axis=1)
    cells = pd.factorize(key)[0].astype(np.int64)
    perms = permutations_for(alpha / 2, v.get("ss_fidelity_permutations") or DEFAULT_PERMUTATIONS)
    unit = rp["unit_id"].astype(str).to_numpy() if "unit_id" in rp.columns else None
    side = swap_matrix(n, perms, seed, unit)
    statistics = gate_statistics(
        pooled,
        w,
        side,
        cfg["outcomes"],
        cfg["dims"],
        cfg["aux"],
        cfg["region"],
        cfg["regression"],
        rare_share=cfg["rare_share"],
        cells=cells,
    )
    table, p, crit = max_t_gate(statistics, cfg["tolerances"], alpha / 2)
    within, p_within = _within_cell(real, syn, cfg, v, st, alpha / 2)
    gate = _gate_row(p, p_within, alpha, perms, n, crit)
    pm = pd.DataFrame([_pmse_row(rp, sp, cfg, v, alpha)])
    out = pd.concat([pd.DataFrame([gate]), table, within, pm], ignore_index=True)
    out["n_pairs"] = n
    return out


def _message(m: pd.DataFrame) -> pd.Series:
    def one(r: pd.Series) -> str:
        if r["status"] == "not_assessable":
            return f"implicate {r['implicate']}: fidelity {r['detail']}"
        col = f" [{r['column']}]" if isinstance(r["column"], str) and r["column"] else ""
        return (
            f"implicate {r['implicate']}: {r['metric']}{col} = {r['value']:.4g} (must be "
            f"{r['comparison']} {r['threshold']:.4g}; real-vs-real reference "
            f"{r['reference']:.4g}): {r['detail']}"
        )

    return m.apply(one, axis=1) if len(m) else pd.Series(dtype=object)


def fidelity_gate(
    v: Mapping[str, Any], responses: pd.DataFrame, weights: pd.DataFrame, synthetic: pd.DataFrame
) -> pd.DataFrame:
    """Body of the fidelity_metrics model (see the module docstring); one row per implicate x
    statistic, the gate's p-value first."""
    if len(synthetic) == 0:
        raise GateConfigError("synthetic_microdata has no rows: nothing to measure")
    st = GateSettings.from_vars(v)
    cfg = _config(v, responses, synthetic)
    cfg["tolerances"], cfg["s_pmse_max"], cfg["rare_share"] = _tolerances(v)
    w = weights[["_row_id", "calibrated_weight"]].rename(columns={"calibrated_weight": "_weight"})
    r = responses.merge(w, on="_row_id", how="left", validate="one_to_one")
    if r["_weight"].isna().any():
        raise GateConfigError("some responses the synthesizer saw have no calibrated weight")
    imps = gate_implicates(v, synthetic)
    parts = []
    t0 = time.monotonic()
    for i, imp in enumerate(imps):
        syn = synthetic[synthetic["implicate"] == imp].reset_index(drop=True)
        log.info("fidelity: implicate %s: %d records against %d responses", imp, len(syn), len(r))
        part = _judge_implicate(r, syn, cfg, v, st, st.alpha / len(imps))
        part.insert(0, "implicate", imp)
        parts.append(part)
        log.info(
            "fidelity: implicate %s (%d/%d, %d records) judged, %.1fs",
            imp,
            i + 1,
            len(imps),
            len(syn),
            time.monotonic() - t0,
        )
    out = finish(pd.concat(parts, ignore_index=True), st)
    out["column"] = out["column"].astype(object)
    out["matched_on"] = cfg["match_on"] or "a seeded random record of the cell x wave"
    out["message"] = _message(out)
    return out
