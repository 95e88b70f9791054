"""Cell estimates from the synthesizer's output, completed and combined as the warehouse does.

The dbt path is synthetic_microdata -> int_augmented_units / augmented_microdata -> the `estimate`
macro -> domain_estimates. :func:`augmented_cell_estimates` computes the same cell x wave estimates
from pandas tables, so a script or a test can score the augmented estimator without a build:

* a cell whose support class is in ``config.augment_classes`` (augment mode) is *completed*: in
  every implicate its real respondents count once each (weight 1) and its synthetic records stand
  for the N - n units that did not respond (weight ``synth_weight``), so q_l is the mean (share) of
  a completed population and its within variance u_l is 0 (a census of an imputed population);
  with ``augment_units = 'all'`` the records alone stand for the cell;
* any other cell is *observed*: the Hajek estimate from its respondents with their design
  weights, the same in every implicate, with the linearised variance of a stratified design (units
  as PSUs, STATS.md) as u_l. As in augmented_microdata, the variance strata hold the observed
  cells' respondents only (a completed cell is its own stratum with fpc 0), so n_h counts the
  stratum's respondents in observed cells; fpc_h is given per respondent (1 - n_h / N_h of the
  design, as design_strata has it).

The implicates are combined with Rubin's rule as the macro does (formulas in
:mod:`surveysynth.estimation.combining`): T = u_bar + (1 + 1/m) b; df by Barnard & Rubin (1999)
from Rubin's df_old = (m - 1)(1 + u_bar / ((1 + 1/m) b))^2 and the complete-data df (item
respondents less strata, over strata with fpc > 0: observed cells only); interval q_bar +- t_df
sqrt(T) for a mean, and for a share the empirical-logit interval of the domain's population count
(the implicates' mean sum of weights over item respondents). A completed cell has
T = (1 + 1/m) b and df = m - 1; an observed one T = u and df = (nu + 1) / (nu + 3) nu.

Not reproduced: raking the implicates to the margins (augmented_microdata). The rake's factors are
constant within a cell (every margin is a function of the cell), so they cancel in a cell's mean,
share and linearised variance; they change only an observed cell's sum of weights, which a
share's interval reads: pass the raked weights as ``weight`` where that matters (with the strata
as the only calibration margin, g_h = (N_h - N of the completed cells in h) / (sum of the observed
respondents' design weights in h)). Domains coarser than a cell would need the rake itself.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from surveysynth.checks.backtest import indicator_matrix, indicator_names
from surveysynth.contract.config import SynthConfig
from surveysynth.contract.inputs import CELL_ID, make_cell_id
from surveysynth.estimation.combining import (
    UBAR_RESIDUE,
    between_variance,
    share_interval,
    t_quantile,
)
from surveysynth.seeding import key_str

IMPLICATE = "implicate"


def augmented_cell_estimates(
    responses: pd.DataFrame,
    synthetic: pd.DataFrame,
    support: pd.DataFrame,
    config: SynthConfig,
    stratum: str | None = None,
    fpc: str | None = None,
    conf_level: float = 0.95,
    weight: str | None = None,
) -> pd.DataFrame:
    """One row per support cell x wave x indicator (indicators as direct_estimates names them).

    ``responses``: the real respondents (cell dims, wave, outcomes, and the weight of observed
    cells: ``weight``, default ``config.weight``); ``stratum`` / ``fpc``: their variance-stratum
    and 1 - n_h / N_h columns (None: the cell is the stratum, fpc 1). ``synthetic``: what
    :func:`surveysynth.synthesis.api.synthesize` returned (``implicate``, ``synth_weight``).
    ``support``: cell_id, wave, support_class (and the cell dims) for every cell to estimate.

    Columns: cell_id, cell dims, wave, support_class, cell_role (completed / observed),
    indicator, measure, estimate, se, df (inf: normal reference), ci_low, ci_high, m,
    between_var, within_var, df_com, n_weighted, n_real, n_synthetic (item respondents;
    synthetic: per implicate)."""
    c = config
    keys = _keys(support, c)
    completed = _completed(keys, c)
    r_code = _codes(keys, responses, c)
    r = responses[r_code >= 0]
    r_code = r_code[r_code >= 0]
    Yr = indicator_matrix(r, c)
    Q, SW, n_syn = _completed_q(keys, completed, r, r_code, Yr, synthetic, c)
    obs = _observed_qu(keys, ~completed, r, r_code, Yr, c, stratum, fpc, weight or c.weight)
    o = ~completed
    U = np.zeros_like(Q)
    Q[:, o, :], U[:, o, :], SW[:, o, :] = obs["q"][o], obs["u"][o], obs["sw"][o]
    dfc = np.where(o[:, None], obs["dfc"], 0.0)
    share = np.array(["=" in n for n in indicator_names(c)])
    n_real = np.zeros((len(keys), Yr.shape[1]))
    np.add.at(n_real, r_code, np.isfinite(Yr).astype(float))
    out = _combine(Q, U, SW.mean(axis=0), dfc, share, conf_level, n_real)
    return _long(keys, completed, out, n_real, n_syn, c)


def _keys(support: pd.DataFrame, c: SynthConfig) -> pd.DataFrame:
    s = support.copy()
    if CELL_ID not in s.columns:
        s[CELL_ID] = make_cell_id(s, list(c.cell_dims))
    cols = [CELL_ID, *[d for d in c.cell_dims if d in s.columns], c.wave, "support_class"]
    s = s[cols].drop_duplicates([CELL_ID, c.wave]).sort_values([CELL_ID, c.wave], kind="mergesort")
    return s.reset_index(drop=True)


def _key_text(df: pd.DataFrame, c: SynthConfig) -> pd.Index:
    cell = df[CELL_ID] if CELL_ID in df.columns else make_cell_id(df, list(c.cell_dims))
    wave = df[c.wave].map(key_str)
    return pd.Index(cell.astype(str).to_numpy() + "#" + wave.astype(str).to_numpy())


def _codes(keys: pd.DataFrame, df: pd.DataFrame, c: SynthConfig) -> np.ndarray:
    """Row of ``keys`` of every row of ``df`` (-1: a cell x wave not in the support table)."""
    return _key_text(keys, c).get_indexer(_key_text(df, c))


def _completed(keys: pd.DataFrame, c: SynthConfig) -> np.ndarray:
    if c.mode != "augment":
        return np.zeros(len(keys), dtype=bool)
    return keys["support_class"].isin(c.augment_classes).to_numpy()


def _completed_q(keys, completed, r, r_code, Yr, synthetic, c):
    """Per implicate: the completed cells' means (real records weight 1 plus synthetic records
    weight synth_weight) and sums of weights over item respondents, (m, G, K); n_syn (G, K)."""
    G, K, m = len(keys), Yr.shape[1], c.m
    real = completed[r_code] if c.augment_units != "all" else np.zeros(len(r_code), bool)
    okr = np.isfinite(Yr) & real[:, None]
    base_w = np.zeros((G, K))
    base_wy = np.zeros((G, K))
    np.add.at(base_w, r_code, okr.astype(float))
    np.add.at(base_wy, r_code, np.where(okr, Yr, 0.0))
    Q = np.full((m, G, K), np.nan)
    SW = np.zeros((m, G, K))
    n_syn = np.zeros((G, K))
    s_code = _codes(keys, synthetic, c) if len(synthetic) else np.zeros(0, dtype=np.int64)
    s = synthetic[s_code >= 0] if len(synthetic) else synthetic
    s_code = s_code[s_code >= 0]
    Ys = indicator_matrix(s, c) if len(s) else np.zeros((0, K))
    ws = s["synth_weight"].to_numpy(dtype=float) if len(s) else np.zeros(0)
    imp = s[IMPLICATE].to_numpy(dtype=np.int64) if len(s) else np.zeros(0, dtype=np.int64)
    for lv in range(1, m + 1):
        sel = (imp == lv) & completed[s_code] if len(s_code) else np.zeros(0, bool)
        ok = np.isfinite(Ys[sel])
        sw, swy = base_w.copy(), base_wy.copy()
        np.add.at(sw, s_code[sel], np.where(ok, ws[sel, None], 0.0))
        np.add.at(swy, s_code[sel], np.where(ok, ws[sel, None] * Ys[sel], 0.0))
        with np.errstate(invalid="ignore", divide="ignore"):
            Q[lv - 1] = np.where(sw > 0, swy / sw, np.nan)
        SW[lv - 1] = sw
        if lv == 1:
            np.add.at(n_syn, s_code[sel], ok.astype(float))
    return Q, SW, n_syn


def _observed_qu(keys, observed, r, r_code, Yr, c, stratum, fpc, weight):
    """Every observed cell's Hajek estimate q, linearised variance u, sum of weights sw over item
    respondents and complete-data df (item respondents less strata, strata with fpc > 0)."""
    G, K = len(keys), Yr.shape[1]
    sel = observed[r_code]
    code, Y = r_code[sel], Yr[sel]
    w = r[weight].to_numpy(dtype=float)[sel] if weight else np.ones(int(sel.sum()))
    ok = np.isfinite(Y)
    W = np.where(ok, w[:, None], 0.0)
    sw, swy = np.zeros((G, K)), np.zeros((G, K))
    np.add.at(sw, code, W)
    np.add.at(swy, code, W * np.where(ok, Y, 0.0))
    with np.errstate(invalid="ignore", divide="ignore"):
        q = np.where(sw > 0, swy / sw, np.nan)
        z = np.where(ok, W * (np.nan_to_num(Y) - q[code]) / sw[code], 0.0)
    rs = r[sel]
    wave = rs[c.wave].map(key_str).astype(str).to_numpy()
    h_lab = wave + "#" + (rs[stratum].astype(str).to_numpy() if stratum else np.asarray(code, str))
    h_code, h_index = pd.factorize(h_lab)
    n_h = np.bincount(h_code, minlength=len(h_index)).astype(float)
    f_h = np.ones(len(h_index))
    if fpc:
        f_h = pd.Series(rs[fpc].to_numpy(dtype=float)).groupby(h_code).max().to_numpy()
    u = _stratified_variance(code, h_code, z, n_h, f_h, G)
    dfc = _complete_data_df(code, h_code, ok, f_h, G)
    return {"q": q, "u": u, "sw": sw, "dfc": dfc}


def _complete_data_df(code, h_code, ok, f_h, G):
    """Per group: item respondents in strata with fpc > 0, less the number of such strata that
    have item respondents in the group (the macro's df_com; read as at least 1 where the group
    has an observed part with a sampling variance)."""
    K = ok.shape[1]
    live = (f_h[h_code] > 0)[:, None] & ok
    n = np.zeros((G, K))
    np.add.at(n, code, live.astype(float))
    n_strata = max(len(f_h), 1)
    pair = np.asarray(code) * n_strata + np.asarray(h_code)
    strata = np.zeros((G, K))
    for k in range(K):
        used = np.unique(pair[live[:, k]])
        np.add.at(strata[:, k], used // n_strata, 1.0)
    return n - strata


def _stratified_variance(code, h_code, z, n_h, f_h, G):
    """sum_h f_h n_h / (n_h - 1) sum_{i in h} (z_i - zbar_h)^2 per group, z zero outside the
    group (n_h = 1: f_h z^2), from the per (group, stratum) sums of z and z^2."""
    K = z.shape[1]
    n_strata = max(len(n_h), 1)
    pairs, pair = np.unique(np.asarray(code) * n_strata + np.asarray(h_code), return_inverse=True)
    s1 = np.zeros((len(pairs), K))
    s2 = np.zeros((len(pairs), K))
    np.add.at(s1, pair, z)
    np.add.at(s2, pair, z * z)
    g, h = pairs // n_strata, pairs % n_strata
    n = n_h[h][:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        term = np.where(n >= 2, n / np.maximum(n - 1, 1) * (s2 - s1 * s1 / n), s2)
    v = np.zeros((G, K))
    np.add.at(v, g, f_h[h][:, None] * term)
    return np.maximum(v, 0.0)


def _combine(Q, U, n_weighted, dfc, share, conf_level: float, n_real) -> dict[str, np.ndarray]:
    """Rubin's rule over the first axis (implicates) with Barnard-Rubin df, element by element;
    shares get the empirical-logit interval of a domain of n_weighted units (Wilson's with the
    n_real real answers where the share is 0 or 1 with no variance)."""
    m = Q.shape[0]
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        qbar = Q.mean(axis=0)
        b = between_variance(Q) if m >= 2 else np.full(qbar.shape, np.nan)
        ubar = U.mean(axis=0)
        T = ubar + (1.0 + 1.0 / m) * b
        df_old = np.where(b > 0, (m - 1) * (1.0 + ubar / ((1.0 + 1.0 / m) * b)) ** 2, np.inf)
        lam = (1.0 + 1.0 / m) * b / T
        use = (T > 0) & (ubar > UBAR_RESIDUE * T)  # an observed part with a sampling variance
        nu = np.maximum(dfc, 1.0)  # the direct estimate's floor, max(n - H, 1)
        df_obs = np.where(use, (nu + 1.0) / (nu + 3.0) * nu * (1.0 - lam), np.inf)
        df = 1.0 / (1.0 / df_old + 1.0 / df_obs)
        df = np.where(np.isfinite(b), df, np.nan)
        se = np.sqrt(T)
        tq = t_quantile(np.where(np.isnan(df), np.inf, df), conf_level)
        tq = np.where(np.isfinite(se), tq, np.nan)
    lo, hi = qbar - tq * se, qbar + tq * se
    for g, k in zip(*np.nonzero(share[None, :] & np.isfinite(se) & (n_weighted > 0))):
        lo[g, k], hi[g, k] = share_interval(
            qbar[g, k], se[g, k], tq[g, k], n_weighted[g, k], n_real[g, k]
        )
    return {
        "estimate": qbar,
        "se": se,
        "df": df,
        "ci_low": lo,
        "ci_high": hi,
        "between_var": b,
        "within_var": ubar,
        "df_com": dfc,
        "n_weighted": n_weighted,
    }


def _long(keys, completed, out, n_real, n_syn, c) -> pd.DataFrame:
    names = indicator_names(c)
    parts = []
    for k, name in enumerate(names):
        d = keys.copy()
        d["cell_role"] = np.where(completed, "completed", "observed")
        d["indicator"] = name
        d["measure"] = "share" if "=" in name else "mean"
        for col, arr in out.items():
            d[col] = arr[:, k]
        d["m"] = c.m
        d["n_real"] = n_real[:, k].astype(np.int64)
        d["n_synthetic"] = n_syn[:, k].astype(np.int64)
        parts.append(d)
    cols = ["estimate", "se", "df", "ci_low", "ci_high", "m", "between_var", "within_var"]
    cols += ["df_com", "n_weighted"]
    res = pd.concat(parts, ignore_index=True)
    lead = [x for x in keys.columns if x != "support_class"]
    return res[
        [
            *lead,
            "support_class",
            "cell_role",
            "indicator",
            "measure",
            *cols,
            "n_real",
            "n_synthetic",
        ]
    ]
