"""The disclosure-risk gate (model disclosure_metrics), cross-fitted, each statistic read against
its own chance distribution.

Cross-fitting. A holdout that the released synthesizer never sees would starve it (half the
respondents, by default). So two fits of the same synthesizer run:

- the *release* fit, on every respondent (synthetic_microdata, what is released);
- the *risk* fit, on every respondent except a seeded half of the units, the holdout
  (risk_synthetic_microdata, never released).

Membership, distance and attribute-inference attacks are run on the risk fit's records, against
the units it saw (train) and the units it did not (holdout). They measure how much the synthesis
*procedure* reveals about the units it is fitted on. The release fit is the same procedure
applied to twice as many units from the same population: every unit weighs half as much in the
pooled estimates it borrows from, so it can reveal no more about a unit than the risk fit does
about a training unit, up to the sampling variation that the test below allows for. A procedure
that copies or nearly copies what it sees does so at any sample size, and is caught on the risk
fit; and the released records themselves are checked for copies of any respondent
(``informative_match_rate``) and near-copies (``near_copy_rate``: magnitudes within 1%, every
other column equal), each against the chance rate of real rows, where no holdout is needed;
``close_ratio_released`` is reported beside them.

Chance. Every attack statistic (DCR share, membership AUC, attribute-inference advantage, the
exact-match and replicated-unique rates over the holdout's) is recomputed with the train and
holdout labels permuted among the units (``ss_risk_permutations`` times): if the synthetic
records carry no information about which units were seen, the observed labels are one more random
split, so the permuted values are the statistic's null distribution at these sizes. The gate is a
max-T permutation test over them with tolerances (:func:`surveysynth.checks.reference.max_t_gate`)
at level ``ss_gate_alpha``; fewer than ``ss_gate_min_rows`` units in either half makes the attack
part ``not_assessable``.
"""

from __future__ import annotations

import itertools
import logging
import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from scipy.stats import rankdata

from surveysynth.checks.fidelity_gate import gate_implicates
from surveysynth.checks.reference import Statistic, max_t_gate, permutations_for
from surveysynth.checks.risk import (
    _raw_codes,
    _row_ids,
    encode_mixed,
    nearest_neighbours,
    normalise_labels,
    resolve_column_types,
)
from surveysynth.checks.status import (
    GateConfigError,
    GateSettings,
    finish,
    not_assessable_row,
    p_value_row,
)

log = logging.getLogger("surveysynth")

__all__ = ["DEFAULT_RISK_TOLERANCES", "disclosure_gate", "risk_synthesis"]

ROLE_COL = "risk_role"
DEFAULT_PERMUTATIONS = 199
#: Rows per side (real respondents, by whole units; records of each implicate) the attacks and
#: the copy checks read, a seeded sample (var ss_risk_max_rows; null = all).
DEFAULT_MAX_ROWS = 10_000

#: Tolerances of the attack statistics over their chance distribution (var ss_risk_tolerances),
#: and of the copy checks of the released records.
DEFAULT_RISK_TOLERANCES: dict[str, float] = {
    "exact_match": 0.01,
    "replicated_uniques": 0.01,
    "dcr_share": 0.05,
    "membership_auc": 0.05,
    "attribute_advantage": 0.05,
    "attribute_numeric_rel_tol": 0.10,
    "informative_match": 0.001,
    "near_copy": 0.001,
    "close_ratio_max": 1.5,
}


# ------------------------------------------------------------------------------ the risk fit


def risk_synthesis(
    v: Mapping[str, Any], responses: Any, roles: Any, frame: Any, support: Any, weights: Any
) -> pd.DataFrame:
    """Body of the risk_synthetic_microdata model: the synthesizer fitted on the responses
    without the holdout, the implicates the gate reads only; in augment mode a record for every
    frame unit of the synthesized cells (``all``), so that seen and unseen units alike have one."""
    from surveysynth.dbt_glue import _inputs, synth_config, to_pandas
    from surveysynth.synthesis.api import synthesize

    r = to_pandas(responses)
    ro = to_pandas(roles)[["_row_id", ROLE_COL]]
    seen = r.merge(ro, on="_row_id", how="inner", validate="one_to_one")
    seen = seen[seen[ROLE_COL] != "holdout"].drop(columns=ROLE_COL)
    r2, f, s = _inputs(dict(v), seen, frame, support, weights)
    cfg = synth_config(dict(v))
    want = v.get("ss_risk_implicates")
    m = cfg.m if want is None else max(int(x) for x in (want if isinstance(want, list) else [want]))
    cfg = cfg.with_(m=m, augment_units="all" if cfg.mode == "augment" else cfg.augment_units)
    out = synthesize(r2, f, s, cfg)
    out.attrs = {}
    if want is not None:
        keep = [int(x) for x in (want if isinstance(want, list) else [want])]
        out = out[out["implicate"].isin(keep)].reset_index(drop=True)
    return out


# ------------------------------------------------------------------------------ attack statistics


def _unit_perms(units: np.ndarray, is_train: np.ndarray, b: int, seed: int) -> np.ndarray:
    """(rows, b + 1) 0/1: column 0 the observed train labels, then b permutations of the unit
    labels (same number of training units)."""
    codes, uniq = pd.factorize(units)
    lab = np.zeros(len(uniq))
    lab[codes] = is_train
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x7157]))
    cols = [lab] + [rng.permutation(lab) for _ in range(b)]
    return np.column_stack(cols)[codes]


def _auc_columns(score: np.ndarray, lab: np.ndarray) -> np.ndarray:
    """AUC of ``score`` for label 1 vs 0, per column of ``lab`` (ties count half)."""
    r = rankdata(score)
    n1 = lab.sum(axis=0)
    n0 = len(score) - n1
    return (r @ lab - n1 * (n1 + 1) / 2) / (n1 * n0)


def _copy_rates(
    keys_real: np.ndarray, keys_syn: np.ndarray, lab: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per labelling: share of synthetic rows, and of holdout rows, equal to some training row."""
    syn, hold = [], []
    for j in range(lab.shape[1]):
        tr = lab[:, j] > 0
        ref = np.unique(keys_real[tr])
        syn.append(np.isin(keys_syn, ref).mean())
        hold.append(np.isin(keys_real[~tr], ref).mean() if (~tr).any() else np.nan)
    return np.array(syn), np.array(hold)


def _repu(q_real: np.ndarray, q_syn: np.ndarray, lab: np.ndarray) -> tuple[np.ndarray, ...]:
    """Per labelling: repU of the synthetic rows and of the holdout rows (as if released)."""
    syn, hold = [], []
    present = np.zeros(int(max(q_real.max(), q_syn.max())) + 1, dtype=bool)
    present[q_syn] = True
    for j in range(lab.shape[1]):
        tr = lab[:, j] > 0
        cnt = np.bincount(q_real[tr], minlength=len(present))
        uniq = cnt[q_real[tr]] == 1
        in_hold = np.zeros(len(present), dtype=bool)
        in_hold[q_real[~tr]] = True
        syn.append((uniq & present[q_real[tr]]).mean())
        hold.append((uniq & in_hold[q_real[tr]]).mean())
    return np.array(syn), np.array(hold)


def _attack_statistics(
    real: pd.DataFrame,
    syn: pd.DataFrame,
    lab: np.ndarray,
    qis: Sequence[str],
    sens: Sequence[str],
    spec: Mapping[str, Any],
    rel_tol: float,
) -> list[Statistic]:
    columns = list(dict.fromkeys([*qis, *spec, *sens]))
    kinds, levels = resolve_column_types(columns, spec, [real, syn])
    out: list[Statistic] = []
    # exact matches and replicated uniques on raw values
    rc, sc = _raw_codes([real, syn], columns, kinds)
    kr, ks = _row_ids([rc, sc])
    s_rate, h_rate = _copy_rates(kr, ks, lab)
    out.append(
        Statistic("exact_match", "exact_match_rate", None, s_rate - h_rate, extra={"v": s_rate})
    )
    qpos = [columns.index(c) for c in qis]
    qr, qs = _row_ids([rc[:, qpos], sc[:, qpos]])
    s_rep, h_rep = _repu(qr, qs, lab)
    out.append(
        Statistic(
            "replicated_uniques", "replicated_uniques", None, s_rep - h_rep, extra={"v": s_rep}
        )
    )
    # distances: nearest real row of each synthetic row, and nearest synthetic row of each real
    enc_r, enc_s = encode_mixed([real, syn], columns, kinds, levels, reference=[real])
    _, i_sr = nearest_neighbours(enc_s, enc_r)
    d_rs, _ = nearest_neighbours(enc_r, enc_s)
    dcr = lab[i_sr].mean(axis=0)
    out.append(Statistic("dcr_share", "dcr_share", None, dcr, extra={"v": dcr}))
    auc = _auc_columns(-d_rs, lab)
    out.append(Statistic("membership_auc", "membership_auc", None, auc, extra={"v": auc}))
    # attribute inference: the nearest synthetic row on the quasi-identifiers guesses
    q_r, q_s = encode_mixed([real, syn], list(qis), kinds, levels, reference=[real])
    _, nn = nearest_neighbours(q_r, q_s)
    for col in sens:
        hit, obs = _hits(real[col], syn[col].iloc[nn], kinds[col], levels.get(col), rel_tol)
        lo = lab * obs[:, None]
        ho = (1 - lab) * obs[:, None]
        with np.errstate(invalid="ignore", divide="ignore"):
            adv = (hit @ lo) / lo.sum(axis=0) - (hit @ ho) / ho.sum(axis=0)
        out.append(
            Statistic(
                "attribute_advantage", "attribute_inference_advantage", col, adv, extra={"v": adv}
            )
        )
    return out


def _hits(y: pd.Series, guess: pd.Series, kind: str, levels, rel_tol: float):
    if kind in ("numeric", "binary"):
        a = pd.to_numeric(y, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        g = pd.to_numeric(guess, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        hit = np.abs(g - a) <= rel_tol * np.abs(a) if kind == "numeric" else g == a
        obs = ~np.isnan(a)
    else:
        a, g = normalise_labels(y), normalise_labels(guess.reset_index(drop=True))
        obs = np.array([x is not None for x in a], dtype=bool)
        hit = a == g
    return (hit & obs).astype(float), obs.astype(float)


def _attack_part(
    v: Mapping[str, Any],
    real: pd.DataFrame,
    syn: pd.DataFrame,
    st: GateSettings,
    alpha: float,
    tol: Mapping[str, float],
) -> pd.DataFrame:
    is_train = (real[ROLE_COL] == "train").to_numpy(dtype=float)
    units = real["unit_id"].astype(str).to_numpy()
    n_tr = len(np.unique(units[is_train > 0]))
    n_ho = len(np.unique(units[is_train == 0]))
    if min(n_tr, n_ho) < st.min_rows:
        return pd.DataFrame(
            [
                not_assessable_row(
                    "disclosure_attacks",
                    f"{n_tr} training and {n_ho} holdout unit(s); the attacks need at least "
                    f"ss_gate_min_rows = {st.min_rows} in each to tell a leak from chance",
                    n_train=n_tr,
                    n_holdout=n_ho,
                )
            ]
        )
    perms = permutations_for(alpha, v.get("ss_risk_permutations") or DEFAULT_PERMUTATIONS)
    lab = _unit_perms(units, is_train, perms, int(v.get("ss_seed") or 0))
    spec = dict(v.get("ss_outcomes") or {})
    statistics = _attack_statistics(
        real,
        syn,
        lab,
        list(v.get("ss_quasi_identifiers") or []),
        list(v.get("ss_sensitive") or []),
        spec,
        tol["attribute_numeric_rel_tol"],
    )
    table, p, crit = max_t_gate(statistics, tol, alpha)
    for s in statistics:  # report the attack's own value (rates, not differences)
        hit = (table["metric"] == s.metric) & (table["column"].astype(str) == str(s.column))
        table.loc[hit, "detail"] = (
            f"{s.metric} {float(s.extra['v'][0]):.4f}; null mean over {perms} permutations of "
            f"the train / holdout units {float(np.nanmean(s.extra['v'][1:])):.4f}"
            + ("; value is the rate minus the holdout's" if s.family in _DIFFS else "")
        )
    detail = (
        f"max-T permutation test over {len(table)} attack statistics, {perms} permutations "
        f"of {n_tr} training / {n_ho} holdout units; p-value {p:.4f}, critical standardised "
        f"excess {crit:.3f}"
    )
    gate = p_value_row("disclosure_attacks", p, alpha, detail)
    out = pd.concat([pd.DataFrame([gate]), table], ignore_index=True)
    out["n_train"], out["n_holdout"] = n_tr, n_ho
    return out


_DIFFS = ("exact_match", "replicated_uniques")


# ------------------------------------------------------------------------------ released records


#: width of a magnitude's band on the log scale (1%): two grids of it, offset by half a band, hold
#: any two values within 0.5% of each other in one band on one grid or the other; no two values
#: more than 1% apart ever share a band
NEAR_BAND = np.log(1.01)


def _informative_keys(
    frame: pd.DataFrame, columns: Sequence[str], shifts: Mapping[str, float] | None = None
) -> np.ndarray:
    """A hash per row of its raw values; the magnitudes in ``shifts`` as their band of width
    ``NEAR_BAND`` on the log scale (offset by that many bands), so that a near-copy shares the
    key of its original."""
    labels = {}
    shifts = shifts or {}
    for c in columns:
        if c in shifts:
            x = pd.to_numeric(frame[c], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
            with np.errstate(invalid="ignore", divide="ignore"):
                band = np.floor(np.log(np.abs(x)) / NEAR_BAND + shifts[c]) * np.sign(x)
            labels[c] = normalise_labels(pd.Series(np.where(x == 0, 0.0, band)))
        else:
            labels[c] = normalise_labels(frame[c])
    return pd.util.hash_pandas_object(pd.DataFrame(labels).astype(object), index=False).to_numpy()


def _released_part(
    v: Mapping[str, Any],
    real: pd.DataFrame,
    released: pd.DataFrame,
    sampled: tuple[pd.DataFrame, pd.DataFrame],
    alpha: float,
    tol: Mapping,
) -> list[dict[str, Any]]:
    """Copies of respondents in the released records, where no holdout is needed: exact copies
    over every respondent and record, closeness on the ``sampled`` (real, released) rows."""
    qis = list(v.get("ss_quasi_identifiers") or [])
    spec = dict(v.get("ss_outcomes") or {})
    sens = list(v.get("ss_sensitive") or [])
    columns = list(dict.fromkeys([*qis, *spec, *sens]))
    mags = [c for c in columns if (spec.get(c) or {}).get("type") == "continuous"]
    vals = real[mags].apply(pd.to_numeric, errors="coerce") if mags else None
    informative = (
        (vals.notna() & (vals != 0)).any(axis=1).to_numpy()
        if mags
        else np.ones(len(real), dtype=bool)
    )
    keys = _informative_keys(real, columns)
    rows = [
        _informative_row(real, keys, informative, _informative_keys(released, columns), alpha, tol)
    ]
    rows[0]["detail"] += f"; {len(columns)} compared columns, magnitudes {mags}"
    rows.append(_near_copy_row(real, released, columns, mags, informative, alpha, tol))
    close = _close_ratio(*sampled, columns, spec, alpha, tol["close_ratio_max"])
    close.update({"threshold": float("nan"), "passed": True, "status": "report"})
    close["detail"] += (
        "; report only: in augment mode a thin cell's records are drawn around its own "
        "respondents, so they sit closer to respondents than other real rows do"
    )
    rows.append(close)
    return rows


def _near_copy_row(real, released, columns, mags, informative, alpha, tol) -> dict[str, Any]:
    """Near-copies: every magnitude within 1% of a respondent's, every other column equal. Per
    magnitude a pair within 0.5% shares a band on one of the two grids (not always the same
    grid for every column), so a record is a near-copy when its key equals its original's under
    one of the 2^k choices of grid for the k magnitudes: every pair within 0.5% in each
    magnitude is counted, pairs up to 1% often, none beyond. The chance rate is counted the same
    way. (One shift for all magnitudes at once had missed pairs within 0.5% when two magnitudes
    needed different grids.)"""
    choices = [dict(zip(mags, c)) for c in itertools.product((0.0, 0.5), repeat=len(mags))]
    near = _informative_row(
        real,
        np.vstack([_informative_keys(real, columns, c) for c in choices]),
        informative,
        np.vstack([_informative_keys(released, columns, c) for c in choices]),
        alpha,
        {**tol, "informative_match": tol["near_copy"]},
    )
    near["metric"] = "near_copy_rate"
    near["detail"] = (
        f"magnitudes within 1%, every other column equal ({len(choices)} band grids): "
        + near["detail"]
    )
    return near


def _matches(keys: np.ndarray, pool: np.ndarray) -> np.ndarray:
    """Per column of ``keys`` (keyings x rows): whether it is in ``pool`` under some keying."""
    return np.any([np.isin(k, p) for k, p in zip(keys, pool)], axis=0)


def _informative_row(
    real: pd.DataFrame,
    keys: np.ndarray,
    informative: np.ndarray,
    rel_keys: np.ndarray,
    alpha: float,
    tol: Mapping,
) -> dict[str, Any]:
    """Share of released records equal on every compared column to the record of a respondent
    that carries a magnitude, against each half (train, holdout) in turn, over the share of the
    other half's rows that equal such a record of that half by chance (like with like: reference
    sets of the same size). The worse half is judged, one-sided at ``alpha``. ``keys`` may hold
    several keyings of the rows (a row per keying): equal under any of them is a match."""
    z = float(stats.norm.ppf(1 - alpha))
    hold = (real[ROLE_COL] == "holdout").to_numpy()
    keys, rel_keys = np.atleast_2d(keys), np.atleast_2d(rel_keys)
    worst = None
    for ref, other, name in ((~hold, hold, "training"), (hold, ~hold, "holdout")):
        if not other.any():
            continue
        pool = keys[:, informative & ref]
        rate = float(_matches(rel_keys, pool).mean())
        chance = float(_matches(keys[:, other], pool).mean())
        se = math.sqrt(rate * (1 - rate) / rel_keys.shape[1] + chance * (1 - chance) / other.sum())
        thr = chance + tol["informative_match"] + z * se
        row = (rate - thr, rate, chance, thr, name)
        worst = row if worst is None or row[0] > worst[0] else worst
    if worst is None:
        return not_assessable_row("informative_match_rate", "no holdout to set the chance level")
    _, rate, chance, thr, name = worst
    return {
        "metric": "informative_match_rate",
        "column": None,
        "value": rate,
        "reference": chance,
        "threshold": thr,
        "comparison": "<=",
        "passed": rate <= thr,
        "detail": (
            f"share of released records equal to the record of a {name} unit with a non-zero "
            f"magnitude; the other half's real rows match one at rate {chance:.4f} (tolerance "
            f"{tol['informative_match']} plus a one-sided bound at {alpha:.3g})"
        ),
    }


def _close_ratio(real, released, columns, spec, alpha: float, max_ratio: float) -> dict[str, Any]:
    """Share of released records nearer to a respondent than tau, over the share of holdout rows
    nearer than tau to a training row (tau: the 5th percentile of the holdout rows' nonzero
    distances), each way round (train / holdout); the larger ratio is judged, one-sided."""
    kinds, levels = resolve_column_types(columns, spec, [real, released])
    tr, ho = real[real[ROLE_COL] != "holdout"], real[real[ROLE_COL] == "holdout"]
    if len(tr) < 2 or len(ho) < 2:
        return not_assessable_row("close_ratio_released", "no holdout to set the yardstick")
    enc_t, enc_h, enc_s = encode_mixed(
        [tr, ho, released], columns, kinds, levels, reference=[tr, ho]
    )
    worst = None
    for a, b, name in ((enc_t, enc_h, "training"), (enc_h, enc_t, "holdout")):
        d_ba, _ = nearest_neighbours(b, a)
        pos = d_ba[d_ba > 0]
        tau = float(np.percentile(pos, 5)) if len(pos) else 0.0
        share_b = float((d_ba <= tau).mean())
        d_sa, _ = nearest_neighbours(enc_s, a)
        share_s = float((d_sa <= tau).mean())
        se = math.sqrt(
            max_ratio**2 * share_b * (1 - share_b) / len(d_ba) + share_s * (1 - share_s) / len(d_sa)
        )
        z = float(stats.norm.ppf(1 - alpha))
        thr = max_ratio * share_b + z * se
        res = (share_s - thr, share_s / share_b, thr / share_b, name, share_s, share_b, tau)
        worst = res if worst is None or res[0] > worst[0] else worst
    _, ratio, thr_ratio, name, share_s, share_b, tau = worst
    return {
        "metric": "close_ratio_released",
        "column": None,
        "value": ratio,
        "reference": 1.0,
        "threshold": thr_ratio,
        "comparison": "<=",
        "passed": ratio <= thr_ratio,
        "detail": (
            f"released records within tau = {tau:.4g} of a {name} row: {share_s:.4f}; real rows "
            f"of the other half: {share_b:.4f}; tolerance ratio {max_ratio} plus a one-sided "
            f"bound at {alpha:.3g}"
        ),
    }


# ------------------------------------------------------------------------------ the gate


def _tolerances(v: Mapping[str, Any]) -> dict[str, float]:
    given = dict(v.get("ss_risk_tolerances") or {})
    bad = sorted(set(given) - set(DEFAULT_RISK_TOLERANCES))
    if bad:
        raise GateConfigError(
            f"ss_risk_tolerances: unknown key(s) {bad}; valid keys: {sorted(DEFAULT_RISK_TOLERANCES)}"
        )
    return {**DEFAULT_RISK_TOLERANCES, **{k: float(x) for k, x in given.items()}}


def _cap_rows(frame: pd.DataFrame, max_rows: int, seed: int, unit: str | None) -> pd.DataFrame:
    """A seeded sample of at most ``max_rows`` rows (whole units when ``unit`` is given), so
    that the nearest-neighbour searches stay fast; every test stays exact on the sample."""
    if not max_rows or len(frame) <= max_rows:
        return frame.reset_index(drop=True)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0xCA9]))
    if unit is None:
        keep = np.sort(rng.choice(len(frame), max_rows, replace=False))
        return frame.iloc[keep].reset_index(drop=True)
    codes, uniq = pd.factorize(frame[unit].astype(str))
    order = rng.permutation(len(uniq))
    sizes = np.bincount(codes, minlength=len(uniq))[order]
    chosen = order[: max(int(np.searchsorted(np.cumsum(sizes), max_rows, "right")), 1)]
    return frame[np.isin(codes, chosen)].reset_index(drop=True)


def _message(m: pd.DataFrame) -> pd.Series:
    def one(r: pd.Series) -> str:
        if r["status"] == "not_assessable":
            return f"implicate {r['implicate']}: {r['metric']} {r['detail']}"
        col = f" [{r['column']}]" if isinstance(r["column"], str) and r["column"] else ""
        return (
            f"implicate {r['implicate']}: {r['metric']}{col} = {r['value']:.4g} (must be "
            f"{r['comparison']} {r['threshold']:.4g}): {r['detail']}"
        )

    return m.apply(one, axis=1) if len(m) else pd.Series(dtype=object)


def disclosure_gate(
    v: Mapping[str, Any],
    responses: pd.DataFrame,
    roles: pd.DataFrame,
    risk_synthetic: pd.DataFrame,
    released: pd.DataFrame,
) -> pd.DataFrame:
    """Body of the disclosure_metrics model: per implicate of ``ss_risk_implicates``, the attack
    statistics on the risk fit's records (:func:`_attack_part`) and the copy checks of the
    released records (:func:`_released_part`)."""
    if len(released) == 0:
        raise GateConfigError("synthetic_microdata has no rows: nothing to measure")
    st = GateSettings.from_vars(v)
    tol = _tolerances(v)
    real = responses.merge(
        roles[["_row_id", ROLE_COL]], on="_row_id", how="left", validate="one_to_one"
    )
    if real[ROLE_COL].isna().any():
        raise GateConfigError(
            f"{int(real[ROLE_COL].isna().sum())} staged response(s) have no role in risk_holdout; "
            "rebuild risk_holdout with the responses"
        )
    imps = gate_implicates(v, released)
    alpha = st.alpha / len(imps)
    seed = int(v.get("ss_seed") or 0)
    cap = v.get("ss_risk_max_rows", DEFAULT_MAX_ROWS)
    cap = int(cap) if cap is not None else 0
    real_s = _cap_rows(real, cap, seed, "unit_id")
    parts = []
    t0 = time.monotonic()
    for i, imp in enumerate(imps):
        rel_all = released[released["implicate"] == imp].reset_index(drop=True)
        rel = _cap_rows(rel_all, cap, seed + imp, None)
        risk = _cap_rows(risk_synthetic[risk_synthetic["implicate"] == imp], cap, seed + imp, None)
        if len(risk) == 0:
            part = pd.DataFrame(
                [not_assessable_row("disclosure_attacks", "the risk fit has no records")]
            )
        else:
            log.info("disclosure: implicate %s: attacks on %d risk-fit records", imp, len(risk))
            part = _attack_part(v, real_s, risk, st, alpha / 2, tol)
        log.info("disclosure: implicate %s: copy checks, %.1fs", imp, time.monotonic() - t0)
        copies = _released_part(v, real, rel_all, (real_s, rel), alpha / 2, tol)
        part = pd.concat([part, pd.DataFrame(copies)], ignore_index=True)
        part.insert(0, "implicate", imp)
        part["n_synthetic"] = len(risk)
        part["n_released"] = len(rel_all)
        parts.append(part)
        log.info(
            "disclosure: implicate %s (%d/%d): attacks on %d risk-fit records, copy checks on %d "
            "released records, %.1fs",
            imp,
            i + 1,
            len(imps),
            len(risk),
            len(rel_all),
            time.monotonic() - t0,
        )
    out = finish(pd.concat(parts, ignore_index=True), st)
    out["column"] = out["column"].astype(object)
    out["message"] = _message(out)
    return out
