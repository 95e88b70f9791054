"""The release gates' Python side: table protection (python_models/table_suppression.py,
suppression_audit.py) and the release manifest (models/release/release_manifest.py), as
pandas-in, pandas-out functions.

The disclosure-risk and fidelity gates of the build are :mod:`surveysynth.checks.risk_gate` and
:mod:`surveysynth.checks.fidelity_gate`, which read every statistic against a reference measured
on the same data (docs/gates.md). :func:`disclosure_report` and :func:`fidelity_report` here are
the plain reports of :mod:`surveysynth.checks.risk` and :mod:`surveysynth.checks.fidelity` against
fixed thresholds, kept for scripts that compare synthesizers on those raw metrics:

- tables: the primary rules run in SQL (models/disclosure/table_primary_suppression.sql); here
  the complementary suppressions are chosen per table x wave and audited by linear programming.
- disclosure risk: the synthetic records against real respondents the synthesizer saw (train)
  and never saw (holdout).
- fidelity: the synthetic records against the real respondents of the same cells, matched on
  the frame's register auxiliaries (see :func:`fidelity_inputs`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from surveysynth.checks.fidelity import (
    DEFAULT_FIDELITY_THRESHOLDS,
    PMSE_MAX_ROWS,
    fidelity_metrics,
)
from surveysynth.checks.risk import DEFAULT_RISK_THRESHOLDS, disclosure_metrics, normalise_labels
from surveysynth.checks.status import GateConfigError
from surveysynth.disclosure.tables import AUDIT_AMOUNTS, audit_intervals, secondary_suppression
from surveysynth.seeding import content_hash, package_versions, stream_rng

__all__ = [
    "TOTAL",
    "audit_tables",
    "disclosure_report",
    "fidelity_inputs",
    "fidelity_report",
    "protect_tables",
    "release_manifest",
    "risk_inputs",
]

TOTAL = "Total"
TABLE_KEYS = ["table_name", "wave"]


def _metric_messages(m: pd.DataFrame, prefix: pd.Series | None = None) -> pd.Series:
    """A sentence per metric row, printed by the gate test when the row fails."""
    col = m["column"].map(lambda c: f" [{c}]" if isinstance(c, str) and c else "")
    thr = m["threshold"].map(lambda t: "report only" if pd.isna(t) else f"{t:.4g}")
    text = (
        m["metric"]
        + col
        + " = "
        + m["value"].map(lambda x: f"{x:.4g}")
        + " (must be "
        + m["comparison"]
        + " "
        + thr
        + "): "
        + m["detail"].astype(str)
    )
    return text if prefix is None else prefix + text


# ------------------------------------------------------------------------------ tables


def _grid(cells: pd.DataFrame, col: str, fill: Any) -> pd.DataFrame:
    """One table x wave in long form -> a grid, categories sorted, 'Total' last on both axes."""
    rows = sorted(x for x in cells["row_label"].unique() if x != TOTAL) + [TOTAL]
    cols = sorted(x for x in cells["col_label"].unique() if x != TOTAL) + [TOTAL]
    g = cells.pivot(index="row_label", columns="col_label", values=col)
    return g.reindex(index=rows, columns=cols).fillna(fill)


def _scale(table: pd.DataFrame) -> float:
    """Divisor that brings the table to O(1e6) before the LP: HiGHS's absolute feasibility
    tolerance (1e-7) is meaningless for totals of order 1e11, where it reports a feasible
    pattern infeasible. The audit is invariant to the scale."""
    m = float(np.abs(table.to_numpy(dtype=float)).max(initial=0.0))
    return m / 1e6 if m > 0 else 1.0


def _escalate(
    table: pd.DataFrame, suppressed: pd.DataFrame, protection: pd.DataFrame, max_extra: int
) -> tuple[pd.DataFrame, int]:
    """Where :func:`surveysynth.tables.secondary_suppression` runs out of candidates (its result
    says ``protected`` False), suppress more cells until the audit passes: each round adds the
    largest published cell that closes a rectangle (its row and its column already hold a
    suppressed cell), so it opens no new line, and is at least the largest shortfall; then the
    secondary heuristic closes any line left with one suppressed cell. Returns the pattern and
    how many cells were added (the audit model reports whatever is still short)."""
    sup = suppressed.copy()
    values = table.to_numpy(dtype=float)
    added = 0
    for _ in range(max_extra):
        audit = audit_intervals(table, sup, protection)
        short = audit[audit["shortfall"] > 0]
        if short.empty:
            break
        mask = sup.to_numpy()
        need = float(short["shortfall"].max())
        row_has = mask.any(axis=1)[:, None]
        col_has = mask.any(axis=0)[None, :]
        ok = ~mask & row_has & col_has & (values > 0)
        big = ok & (values >= need)
        pool = big if big.any() else ok
        if not pool.any():
            pool = ~mask & (values > 0)
            if not pool.any():
                break
        i, j = np.unravel_index(np.argmax(np.where(pool, values, -np.inf)), values.shape)
        mask[i, j] = True
        added += 1
        res = secondary_suppression(table, mask, protection)
        sup = res.suppressed
        if res.protected:
            break
    return sup, added


def protect_tables(cells: pd.DataFrame, max_extra: int = 25) -> pd.DataFrame:
    """Secondary suppression of every protected table x wave.

    ``cells`` is models/disclosure/table_primary_suppression: one row per table x wave x cell
    (margins labelled 'Total') with ``value``, ``is_primary`` and ``protection_required``.
    Returns it with ``suppressed``, ``is_secondary``, ``status`` (published / primary /
    secondary) and ``suppression_reason``. The pattern comes from the library heuristic
    (:func:`surveysynth.tables.secondary_suppression`), widened by :func:`_escalate` where
    that heuristic gives up; the audit model proves (or disproves) the result independently."""
    out = []
    for (_, _), g in cells.groupby(TABLE_KEYS, sort=True):
        table = _grid(g, "value", 0.0).astype(float)
        primary = _grid(g, "is_primary", False).astype(bool)
        prot = _grid(g, "protection_required", 0.0).astype(float)
        s = _scale(table)
        t_s, p_s = table / s, prot / s
        if primary.to_numpy().any():
            res = secondary_suppression(t_s, primary, p_s)
            sup = res.suppressed
            added = 0
            if not res.protected:
                sup, added = _escalate(t_s, sup, p_s, max_extra)
        else:
            sup, added = primary.copy(), 0
        long = sup.stack().rename("suppressed").reset_index()
        long.columns = ["row_label", "col_label", "suppressed"]
        h = g.merge(long, on=["row_label", "col_label"], how="left", validate="one_to_one")
        h["suppressed"] = h["suppressed"].fillna(False).astype(bool)
        h["is_secondary"] = h["suppressed"] & ~h["is_primary"].astype(bool)
        h["status"] = np.where(
            h["is_primary"], "primary", np.where(h["is_secondary"], "secondary", "published")
        )
        h["suppression_reason"] = np.where(
            h["is_primary"],
            h["reason"],
            np.where(
                h["is_secondary"],
                "secondary: suppressed so that no primary cell can be recovered from the "
                "published cells and margins"
                + (f" ({added} cell(s) added after the heuristic ran out)" if added else ""),
                "",
            ),
        )
        out.append(h)
    if not out:
        return cells.assign(
            suppressed=pd.Series(dtype=bool),
            is_secondary=pd.Series(dtype=bool),
            status=pd.Series(dtype=object),
            suppression_reason=pd.Series(dtype=object),
        )
    res = pd.concat(out, ignore_index=True)
    return res.sort_values([*TABLE_KEYS, "row_label", "col_label"], kind="stable").reset_index(
        drop=True
    )


def audit_tables(pattern: pd.DataFrame) -> pd.DataFrame:
    """The LP audit of every suppressed cell of every protected table x wave, given what the
    pattern (``suppressed``) publishes: one row per suppressed cell with its feasible interval
    [``lower``, ``upper``] under the table's additivity and non-negativity, the protection the
    primary rules require, the gaps on each side, the ``shortfall`` and ``protected``. Reads
    only values, the pattern and the required protection, so it judges any pattern, whoever
    chose it."""
    cols = [
        "table_name",
        "wave",
        "row_label",
        "col_label",
        "status",
        *AUDIT_AMOUNTS,
        "protected",
        "message",
    ]
    out = []
    for (name, wave), g in pattern.groupby(TABLE_KEYS, sort=True):
        if not g["suppressed"].astype(bool).any():
            continue
        table = _grid(g, "value", 0.0).astype(float)
        sup = _grid(g, "suppressed", False).astype(bool)
        prot = _grid(g, "protection_required", 0.0).astype(float)
        s = _scale(table)
        a = audit_intervals(table / s, sup, prot / s)
        for c in AUDIT_AMOUNTS:  # scaled for the LP, scaled back here
            a[c] = a[c] * s
        a = a.rename(columns={"row": "row_label", "col": "col_label"})
        a.insert(0, "wave", wave)
        a.insert(0, "table_name", name)
        st = g.set_index(["row_label", "col_label"])["status"]
        a.insert(4, "status", [st.get((r, c), "") for r, c in zip(a["row_label"], a["col_label"])])
        out.append(a[cols[:-1]])
    if not out:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in cols})
    res = pd.concat(out, ignore_index=True)
    res["protected"] = res["protected"].astype(bool)
    res["message"] = (
        res["table_name"]
        + " wave "
        + res["wave"].astype(str)
        + ": suppressed cell "
        + res["row_label"].astype(str)
        + " x "
        + res["col_label"].astype(str)
        + " ("
        + res["status"].astype(str)
        + ", value "
        + res["value"].map(lambda x: f"{x:.6g}")
        + ") can be narrowed to ["
        + res["lower"].map(lambda x: f"{x:.6g}")
        + ", "
        + res["upper"].map(lambda x: f"{x:.6g}")
        + "] from the published cells and margins; "
        + "it needs "
        + res["protection_required"].map(lambda x: f"{x:.6g}")
        + " on each side, short by "
        + res["shortfall"].map(lambda x: f"{x:.6g}")
    )
    return res


# ------------------------------------------------------------------------------ disclosure risk

ROLE_COL = "risk_role"

#: Gate-level risk thresholds, set in the same var (ss_risk_thresholds) as the library's.
GATE_RISK_THRESHOLDS: dict[str, float | None] = {
    # informative_match_rate <= the holdout's rate + this. Stricter than the library's
    # exact_match_tolerance: by chance a record with a magnitude is almost never reproduced
    # (demo: 0 of 7,067 holdout rows), so 1% would let hundreds of copied records through.
    "informative_match_tolerance": 0.001,
}


def _thresholds(
    defaults: Mapping[str, float | None], given: Mapping[str, Any] | None, var: str
) -> dict[str, float | None]:
    out = dict(defaults)
    for k, val in (given or {}).items():
        if k not in defaults:
            raise GateConfigError(f"{var}: unknown threshold {k!r}; valid keys: {sorted(defaults)}")
        out[k] = None if val is None else float(val)
    return out


def risk_inputs(
    responses: pd.DataFrame, roles: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(train, holdout, used) from the staged responses and their roles (risk_holdout):
    ``train`` and ``holdout`` are the exchangeable halves of the eligible units (the synthesizer
    saw the first, never the second); ``used`` is every response the synthesizer saw."""
    r = responses.merge(
        roles[["_row_id", ROLE_COL]], on="_row_id", how="left", validate="one_to_one"
    )
    if r[ROLE_COL].isna().any():
        raise GateConfigError(
            f"{int(r[ROLE_COL].isna().sum())} staged response(s) have no role in risk_holdout; "
            "rebuild risk_holdout with the responses"
        )
    train = r[r[ROLE_COL] == "train"].reset_index(drop=True)
    holdout = r[r[ROLE_COL] == "holdout"].reset_index(drop=True)
    used = r[r[ROLE_COL] != "holdout"].reset_index(drop=True)
    if len(train) == 0 or len(holdout) == 0:
        raise GateConfigError(
            f"the disclosure-risk holdout has {len(holdout)} row(s) and its training twin "
            f"{len(train)}: no unit is eligible, or ss_risk_holdout_share is too small. In augment "
            "mode only units outside the synthesized cells (ss_synth_augment_classes) can be held "
            "out; keep at least one support class out of that var, or raise the share"
        )
    return train, holdout, used


def _row_keys(frame: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
    """A uint64 per row over ``columns``' raw values as labels (NaN equal to NaN, 1 == 1.0)."""
    labels = pd.DataFrame({c: normalise_labels(frame[c]) for c in columns})
    return pd.util.hash_pandas_object(labels.astype(object), index=False).to_numpy()


def _informative_matches(
    used: pd.DataFrame,
    holdout: pd.DataFrame,
    synthetic: pd.DataFrame,
    columns: Sequence[str],
    magnitudes: Sequence[str],
    tolerance: float | None,
) -> dict[str, Any]:
    """Share of synthetic rows that reproduce, on every compared column, the record of a
    respondent the synthesizer saw (thin cells included; the library's exact_match_rate reads
    the training twin only, for exchangeability) where that record carries a magnitude: a
    non-zero value of a continuous outcome (``magnitudes``). Records of zeros and blanks
    (closed businesses, say) are shared by many units and identify no one, yet they make
    exact matches common by chance (demo: 3% of holdout rows equal a training row), which hides
    copies of informative records in the plain rate. The chance level is the same share for
    the holdout rows. Without continuous outcomes every record counts."""
    if magnitudes:
        vals = used[list(magnitudes)].apply(pd.to_numeric, errors="coerce")
        informative = (vals.notna() & (vals != 0)).any(axis=1).to_numpy()
    else:
        informative = np.ones(len(used), dtype=bool)
    ref = np.unique(_row_keys(used, columns)[informative])
    syn = np.isin(_row_keys(synthetic, columns), ref)
    hold = float(np.isin(_row_keys(holdout, columns), ref).mean())
    rate = float(syn.mean())
    thr = None if tolerance is None else hold + tolerance
    return {
        "metric": "informative_match_rate",
        "column": None,
        "value": rate,
        "threshold": float("nan") if thr is None else thr,
        "comparison": "<=",
        "passed": bool(True if thr is None else rate <= thr),
        "detail": (
            f"{int(syn.sum())} of {len(syn)} synthetic rows reproduce, on all {len(columns)} compared "
            f"columns, one of the {int(informative.sum())} records with a non-zero {list(magnitudes)} "
            f"among the {len(used)} responses the synthesizer saw (thin cells included); holdout "
            f"rate {hold:.4f} (tolerance {tolerance})"
            + ("" if thr is not None else "; report only (no threshold)")
        ),
    }


def _implicates(v: Mapping[str, Any], synthetic: pd.DataFrame, var: str) -> list[int]:
    have = sorted(int(x) for x in pd.unique(synthetic["implicate"]))
    want = v.get(var)
    if want is None:
        return have
    want = [int(x) for x in (want if isinstance(want, (list, tuple)) else [want])]
    missing = sorted(set(want) - set(have))
    if missing:
        raise GateConfigError(
            f"{var} = {want}: implicate(s) {missing} are not in synthetic_microdata ({have})"
        )
    return want


def disclosure_report(
    v: Mapping[str, Any],
    responses: pd.DataFrame,
    roles: pd.DataFrame,
    synthetic: pd.DataFrame,
) -> pd.DataFrame:
    """Body of the disclosure_metrics model: :func:`surveysynth.risk.disclosure_metrics` of each
    implicate in ``ss_risk_implicates`` (null: all) against the train / holdout split of
    risk_holdout, on at most ``ss_risk_max_rows`` of the implicate's rows (a seeded sample;
    null: all), plus :func:`_informative_matches` over all its rows. One row per implicate x
    metric; ``passed`` False anywhere fails the gate."""
    if len(synthetic) == 0:
        raise GateConfigError("synthetic_microdata has no rows: nothing to measure")
    train, holdout, used = risk_inputs(responses, roles)
    qis = list(v.get("ss_quasi_identifiers") or [])
    sens = list(v.get("ss_sensitive") or [])
    spec = dict(v.get("ss_outcomes") or {})
    thr = _thresholds(
        {**DEFAULT_RISK_THRESHOLDS, **GATE_RISK_THRESHOLDS},
        v.get("ss_risk_thresholds"),
        "ss_risk_thresholds",
    )
    lib_thr = {k: x for k, x in thr.items() if k in DEFAULT_RISK_THRESHOLDS}
    seed = int(v.get("ss_seed") or 0)
    columns = list(dict.fromkeys([*qis, *spec, *sens]))
    max_rows = int(v.get("ss_risk_max_rows") or 0)
    magnitudes = [c for c in columns if (spec.get(c) or {}).get("type") == "continuous"]
    out = []
    for imp in _implicates(v, synthetic, "ss_risk_implicates"):
        syn = synthetic[synthetic["implicate"] == imp].reset_index(drop=True)
        # distances on a seeded sample of the implicate's rows (every rate is a mean over them)
        sample = syn
        if max_rows and len(syn) > max_rows:
            rng = stream_rng(seed, "risk_sample", imp)
            sample = syn.iloc[np.sort(rng.choice(len(syn), max_rows, replace=False))]
        m = disclosure_metrics(train, holdout, sample, qis, sens, spec, lib_thr, seed=seed)
        extra = _informative_matches(
            used, holdout, syn, columns, magnitudes, thr["informative_match_tolerance"]
        )
        m = pd.concat([m, pd.DataFrame([extra])], ignore_index=True)
        m.insert(0, "implicate", imp)
        m["n_train"] = len(train)
        m["n_holdout"] = len(holdout)
        m["n_synthetic"] = len(sample)
        m.loc[m["metric"] == "informative_match_rate", "n_synthetic"] = len(syn)
        out.append(m)
    res = pd.concat(out, ignore_index=True)
    res["passed"] = res["passed"].astype(bool)
    res["column"] = res["column"].astype(object)
    res["message"] = _metric_messages(res, "implicate " + res["implicate"].astype(str) + ": ")
    return res


# ------------------------------------------------------------------------------ fidelity


def _match_key(s: pd.Series) -> np.ndarray:
    x = pd.to_numeric(s, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    return np.where(np.isnan(x), 0.0, np.log1p(np.clip(x, 0.0, None)))


def fidelity_inputs(
    responses: pd.DataFrame,
    synthetic: pd.DataFrame,
    keys: Sequence[str],
    weight: str,
    match_on: str | None,
    seed: int,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Real and synthetic rows that answer the same question.

    In augment mode the synthetic records stand for a thin cell's *non-responding* units, drawn
    conditional on their register auxiliaries, and nonresponse depends on size: compared with all
    respondents, they would differ for good reasons (other cells; other units of the same cell).
    So the real side is the respondents of the cells x waves that have synthetic records, and the
    synthetic side, per implicate, holds for each respondent the synthetic record of the same
    cell x wave nearest on ``match_on`` (log scale; a seeded random record of the cell x wave when
    ``match_on`` is None), carrying the respondent's weight. Both sides then have the same cells,
    sizes and register profile, so what differs is what the synthesizer got wrong, and unweighted
    statistics such as pMSE compare like with like."""
    keys = list(keys)
    cw = synthetic[keys].drop_duplicates()
    real = responses.merge(cw, on=keys, how="inner").reset_index(drop=True)
    if len(real) == 0:
        raise GateConfigError(
            "no real respondent shares a cell x wave with the synthetic records: fidelity has "
            "nothing to compare (cells completed from empty are checked by the back-test)"
        )
    real = real.assign(_pair=np.arange(len(real)))
    syn_cols = [c for c in synthetic.columns if c != weight]
    parts = []
    use_aux = match_on is not None
    for imp, g in synthetic.groupby("implicate", sort=True):
        g = g[syn_cols]
        if use_aux:
            left = real[[*keys, "_pair", weight]].assign(_k=_match_key(real[match_on]))
            right = g.assign(_k=_match_key(g[match_on]))
            m = pd.merge_asof(
                left.sort_values("_k", kind="stable"),
                right.sort_values("_k", kind="stable"),
                on="_k",
                by=keys,
                direction="nearest",
            ).drop(columns="_k")
        else:
            rng = stream_rng(seed, "fidelity_match", int(imp))
            g = g.assign(_u=rng.random(len(g))).sort_values("_u", kind="stable")
            g["_j"] = g.groupby(keys, sort=False).cumcount()
            size = g.groupby(keys, sort=False).size().rename("_n").reset_index()
            left = real[[*keys, "_pair", weight]].merge(size, on=keys, how="left")
            left["_j"] = left.groupby(keys, sort=False).cumcount() % left["_n"]
            m = left.merge(g.drop(columns="_u"), on=[*keys, "_j"], how="left").drop(
                columns=["_j", "_n"]
            )
        parts.append(m.assign(implicate=imp))
    syn = pd.concat(parts, ignore_index=True).sort_values(["implicate", "_pair"], kind="stable")
    return real.drop(columns="_pair"), syn.drop(columns="_pair").reset_index(drop=True)


def fidelity_report(
    v: Mapping[str, Any], responses: pd.DataFrame, weights: pd.DataFrame, synthetic: pd.DataFrame
) -> pd.DataFrame:
    """Body of the fidelity_metrics model: :func:`surveysynth.fidelity.fidelity_metrics` of the
    synthetic records against the real respondents of the same cells (:func:`fidelity_inputs`),
    implicates combined, with the worst region (``ss_fidelity_region_col``), rare categories and
    cell combinations, and the regression ``ss_fidelity_regression``."""
    if len(synthetic) == 0:
        raise GateConfigError("synthetic_microdata has no rows: nothing to measure")
    dims = list(v.get("ss_cell_dims") or [])
    spec = {**{d: "categorical" for d in dims}, **dict(v.get("ss_outcomes") or {})}
    thr = _thresholds(
        DEFAULT_FIDELITY_THRESHOLDS, v.get("ss_fidelity_thresholds"), "ss_fidelity_thresholds"
    )
    region = v.get("ss_fidelity_region_col") or (dims[0] if dims else None)
    if region is not None and region not in dims:
        raise GateConfigError(
            f"ss_fidelity_region_col = {region!r} is not a cell dimension (ss_cell_dims = {dims})"
        )
    regression = v.get("ss_fidelity_regression")
    for reg in [regression] if isinstance(regression, Mapping) else (regression or []):
        wanted = [reg.get("y"), *(reg.get("x") or [])]
        missing = [c for c in wanted if c not in spec]
        if missing:
            raise GateConfigError(
                f"ss_fidelity_regression {dict(reg)}: {missing} are not outcomes or cell "
                f"dimensions ({sorted(spec)}); name others, or set the var to null"
            )
    aux = list(v.get("ss_frame_auxiliaries") or [])
    match_on = v.get("ss_fidelity_match_on") or (aux[0] if aux else None)
    if match_on is not None and (
        match_on not in responses.columns or match_on not in synthetic.columns
    ):
        raise GateConfigError(
            f"ss_fidelity_match_on = {match_on!r} is not a column of both the responses and "
            "synthetic_microdata: name a frame auxiliary (ss_frame_auxiliaries) or set it to null"
        )
    seed = int(v.get("ss_seed") or 0)
    w = weights[["_row_id", "calibrated_weight"]].rename(columns={"calibrated_weight": "_weight"})
    r = responses.merge(w, on="_row_id", how="left", validate="one_to_one")
    if r["_weight"].isna().any():
        raise GateConfigError("some staged responses have no calibrated weight")
    real, syn = fidelity_inputs(r, synthetic, ["cell_id", "wave"], "_weight", match_on, seed)
    m = fidelity_metrics(
        real,
        syn,
        spec,
        weights="_weight",
        region_col=region,
        regression=regression,
        thresholds=thr,
        synthetic_weights="_weight",
        implicate_col="implicate",
        rare_combinations=dims or None,
        pmse_max_rows=int(v.get("ss_fidelity_pmse_rows") or PMSE_MAX_ROWS),
        seed=seed,
    )
    m["n_real"] = len(real)
    m["n_synthetic"] = len(syn)
    m["matched_on"] = match_on or "a seeded random record of the cell x wave"
    m["passed"] = m["passed"].astype(bool)
    m["column"] = m["column"].astype(object)
    m["message"] = _metric_messages(m)
    return m


# ------------------------------------------------------------------------------ release manifest


def _metric_values(frame: pd.DataFrame, keys: Sequence[str]) -> list[dict[str, Any]]:
    cols = [*keys, "metric", "column", "value", "threshold", "comparison", "passed"]
    rows = frame[[c for c in cols if c in frame.columns]].to_dict(orient="records")
    clean = []
    for r in rows:
        clean.append(
            {k: (None if isinstance(x, float) and not np.isfinite(x) else x) for k, x in r.items()}
        )
    return clean


def _jsonable(x: Any) -> Any:
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.floating,)):
        return float(x)
    if isinstance(x, (np.bool_,)):
        return bool(x)
    return str(x)


#: vars that say where a build keeps its files, not what it computes
OPERATIONAL_VARS = ("ss_synth_run_dir",)


def release_manifest(
    v: Mapping[str, Any],
    gates: pd.DataFrame,
    synthesis: pd.DataFrame,
    disclosure: pd.DataFrame,
    fidelity: pd.DataFrame,
    releases: Mapping[str, pd.DataFrame],
) -> pd.DataFrame:
    """Body of the release_manifest model: one row that signs off the release. ``release_id`` is
    a hash of the synthesis run id, the parameters and the content of every released table, so
    the same inputs, vars and seed give the same id, and a changed table a new one. Gate outcomes
    come from release_gates (every one passed, or this model would not run: it is downstream of
    all of them); the metric values from disclosure_metrics and fidelity_metrics."""
    failed = gates.loc[~gates["passed"].astype(bool), "gate"].tolist()
    if failed:
        raise RuntimeError(
            f"release gates {failed} did not pass: no release manifest is written (their data "
            "tests should have stopped the build before this model)"
        )
    syn = synthesis.iloc[0].to_dict() if len(synthesis) else {}
    tables = {
        name: {"rows": len(df), "content_hash": content_hash(df)}
        for name, df in sorted(releases.items())
    }
    # the parameters of the release, not where this build kept its run files: a path per build
    # would make the same release's manifest differ between reruns
    kept = {k: x for k, x in dict(v).items() if k not in OPERATIONAL_VARS}
    params = json.dumps(kept, sort_keys=True, default=_jsonable)
    gate_rows = gates.sort_values("gate_order")[
        ["gate", "gated_model", "gate_test", "n_checked", "n_failing", "passed"]
    ].to_dict(orient="records")
    gate_json = json.dumps(gate_rows, default=_jsonable)
    payload = json.dumps(
        {"synth_run_id": syn.get("synth_run_id"), "parameters": params, "tables": tables},
        sort_keys=True,
        default=_jsonable,
    )
    row = {
        "release_id": hashlib.sha256(payload.encode()).hexdigest()[:16],
        "synth_run_id": syn.get("synth_run_id"),
        "seed": v.get("ss_seed"),
        "synth_method": syn.get("synth_method"),
        "mode": syn.get("mode"),
        "m": syn.get("m"),
        "hash_synthesis_responses": syn.get("hash_responses"),
        "hash_frame": syn.get("hash_frame"),
        "hash_support": syn.get("hash_support"),
        "released_tables": json.dumps(tables, sort_keys=True),
        "parameters": params,
        "synthesis_parameters": syn.get("parameters"),
        "versions": json.dumps(
            package_versions(
                ("surveysynth", "dbt-core", "dbt-duckdb", "duckdb", "numpy", "pandas", "scipy")
            ),
            sort_keys=True,
        ),
        "gates": gate_json,
        "n_gates": len(gates),
        "all_gates_passed": True,
        "disclosure_metrics": json.dumps(
            _metric_values(disclosure, ["implicate"]), default=_jsonable
        ),
        "fidelity_metrics": json.dumps(_metric_values(fidelity, []), default=_jsonable),
    }
    return pd.DataFrame([row])
