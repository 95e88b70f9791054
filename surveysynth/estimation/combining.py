"""Combining estimates across m implicates: the reference implementation in Python.

The SQL `estimate` macro (macros/estimation/estimate.sql) computes the same quantities in the
warehouse; this module is the independent implementation the tests compare it with, and the one
the back-test (:mod:`surveysynth.checks.backtest`) uses. Formulas: ../shared/STATS.md.

With q_l the estimate from implicate l and u_l its within-implicate (design) variance:
q_bar = mean(q_l), b = var(q_l) (divisor m - 1), u_bar = mean(u_l).

``mi`` (Rubin 1987, multiple imputation): T = u_bar + (1 + 1/m) b,
    df = (m - 1) (1 + u_bar / ((1 + 1/m) b))^2.
``partial`` (Reiter 2003, partially synthetic data): T = u_bar + b / m,
    df = (m - 1) (1 + m u_bar / b)^2.
``full`` (Raghunathan, Reiter & Rubin 2003, fully synthetic data): T = (1 + 1/m) b - u_bar,
    df = (m - 1) (1 - m u_bar / ((m + 1) b))^2; when T <= 0, Reiter (2002)'s (n_syn / n) u_bar
    with a normal reference (df infinite).

Which rule fits augment mode, and why: in an augmented cell the real respondents represent
themselves and the synthetic records stand for the N - n units that were never observed, so
every implicate is a completed population (a census of an imputed population). That is the
missing-data setting of multiple imputation, with within variance u_l = 0 in the completed cells
and the design variance of the real sample in the cells left as observed. Rubin's rule applies:
in a completed cell it reduces to T = (1 + 1/m) b with df = m - 1 (the full-synthesis rule gives
the same there, because u_bar = 0); in a domain that mixes completed and observed cells the
observed part's design variance u_bar is added, as Rubin's rule does and the full-synthesis rule
(which subtracts it) does not. Reiter's partial-synthesis rule would count b only once over m:
it is for synthetic versions of values that were collected, where the observed-data estimate is
the target; here the synthesized values were never collected, and their uncertainty is real.

b = 0 (all implicates equal, or no synthetic records) gives df = infinity: the interval uses the
normal quantile. m = 1 leaves b undefined: T, SE and the interval are null unless b is not used.

Degrees of freedom of ``mi`` (Barnard & Rubin 1999): with nu_com the complete-data df (the observed
records' design df, item respondents less strata, in strata with a finite population correction
above 0) and lambda = (1 + 1/m) b / T,
    df_old = (m - 1) / lambda^2,  df_obs = (nu_com + 1) / (nu_com + 3) nu_com (1 - lambda),
    df = 1 / (1 / df_old + 1 / df_obs);
nu_com infinite (no observed records: a completed cell alone) or u_bar = 0 (below 1e-9 T: a
rounding residue) leave df = df_old, and b = 0 leaves df = df_obs.

Intervals: q_bar +- t_df sqrt(T) for means and totals; a share of a domain of about n_pop units
(the implicates' mean sum of weights over item respondents) is built on the empirical logit of the
population count (docs/estimation.md): theta = ln((N q + 1/2) / (N (1 - q) + 1/2)),
theta +- t_df sqrt(T) dtheta/dq, back by q = ((N + 1) expit(theta) - 1/2) / N, each end moved out
by half a step 1 / (2N) when T > 0 (the population share is a multiple of 1/N: the equal-tailed
interval on that lattice, ``LATTICE_HALF_STEP``), clipped to [0, 1];
at q = 0 or 1 with T = 0 and n real answers in a domain of N > n units, Wilson's interval with n.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

RULES: tuple[str, ...] = ("mi", "partial", "full")


def t_quantile(df: np.ndarray | float, conf_level: float = 0.95) -> np.ndarray:
    """Two-sided t quantile; df = inf (or nan meaning infinite) gives the normal quantile.
    As the SQL macro does: df in (1, 2) interpolates ln t linearly in 1 / df between t_1 and t_2
    (at most 4% above the exact quantile: conservative, with no jump at df = 2); df below 1 is
    read as 1."""
    df = np.asarray(df, dtype=float)
    p = 0.5 + conf_level / 2.0
    z = stats.norm.ppf(p)
    t1, t2 = stats.t.ppf(p, 1.0), stats.t.ppf(p, 2.0)
    fin = np.isfinite(df)
    safe = np.where(fin, np.maximum(df, 1.0), 2.0)
    exact = stats.t.ppf(p, np.where(safe < 2.0, 2.0, safe))
    between = t2 * (t1 / t2) ** (2.0 / safe - 1.0)
    return np.where(fin, np.where(safe < 2.0, between, exact), z)


# Rounding residues read as 0, as the SQL macro does. A within variance below UBAR_RESIDUE T: sums
# of squares that cancel in a completed cell give 1e-20 where the exact value is 0. A between
# variance below B_RESIDUE q_bar^2 (an SD below 1e-9 of the estimate): implicates that agree but for
# the order their sums were taken in, which engines differ in.
UBAR_RESIDUE = 1e-9
B_RESIDUE = 1e-18


def between_variance(q: np.ndarray, axis: int = 0) -> np.ndarray:
    """b, the sample variance of the implicates' estimates along ``axis``, with a rounding residue
    (below ``B_RESIDUE`` q_bar^2) read as 0."""
    b = np.asarray(q, dtype=float).var(axis=axis, ddof=1)
    qbar = np.asarray(q, dtype=float).mean(axis=axis)
    return np.where(b <= B_RESIDUE * qbar * qbar, 0.0, b)  # nan stays nan


def barnard_rubin_df(df_old: float, lam: float, df_com: float, ubar: float, T: float) -> float:
    """Barnard & Rubin (1999) df from Rubin's df_old, lambda = (1 + 1/m) b / T and nu_com, nu
    at least 1 (the direct estimate's floor, max(n - H, 1)). u_bar at most ``UBAR_RESIDUE`` T
    counts as 0 (df_old alone): otherwise df_obs, proportional to 1 - lambda, would be 0 from
    rounding alone and the interval unbounded."""
    if not np.isfinite(df_com) or not ubar > UBAR_RESIDUE * T:
        return float(df_old)
    nu = max(float(df_com), 1.0)
    df_obs = (nu + 1.0) / (nu + 3.0) * nu * (1.0 - lam)
    if not np.isfinite(df_old):
        return float(df_obs)
    return float(1.0 / (1.0 / df_old + 1.0 / df_obs))


def wilson_interval(p: float, n: float, z: float) -> tuple[float, float]:
    """Wilson's score interval of a share p from n answers, normal quantile z (always in [0, 1]).
    At p = 0 (1) the lower (upper) end is exactly 0 (1): centre - half is 0 there only up to
    rounding, and a residue of 1e-17 left the estimate outside its own interval."""
    a = z * z / n
    centre = (p + a / 2.0) / (1.0 + a)
    half = z / (1.0 + a) * np.sqrt(max(p * (1.0 - p) / n + a / (4.0 * n), 0.0))
    lo = 0.0 if p <= 0 else max(0.0, centre - half)
    return lo, 1.0 if p >= 1 else min(1.0, centre + half)


#: a share of a domain of N units is a multiple of 1/N; the ends of its continuous interval move
#: out by this many steps (a half: the equal-tailed interval on that lattice, the lattice point k/N
#: standing for the continuous interval's mass within half a step of it; docs/estimation.md)
LATTICE_HALF_STEP = 0.5


def share_interval(
    q: float, se: float, tq: float, n_pop: float, n_real: float = 0.0, half_step: bool = True
) -> tuple[float, float]:
    """Empirical-logit interval of a share of a domain of ``n_pop`` units, its ends moved out by
    half a step of the population share's lattice 1/n_pop (module docstring). ``half_step=False``
    leaves the ends where they are, as for the published intervals, whose MSE carries the
    back-test's allowance (docs/estimation.md, "The half step").
    A share of 0 or 1 with no variance at all (every implicate and every real answer alike) from
    ``n_real`` real answers in a domain of more units is not exact: Wilson's interval with those
    n_real answers, as the direct estimate's would be."""
    if se == 0 and q in (0.0, 1.0) and 0 < n_real < n_pop - 0.5:
        return wilson_interval(q, n_real, tq)
    N = float(n_pop)
    qc = min(max(q, 0.0), 1.0)
    theta = np.log((N * qc + 0.5) / (N * (1.0 - qc) + 0.5))
    slope = N / (N * qc + 0.5) + N / (N * (1.0 - qc) + 0.5)
    ends = np.clip(theta + np.array([-1.0, 1.0]) * tq * se * slope, -700.0, 700.0)
    back = ((N + 1.0) / (1.0 + np.exp(-ends)) - 0.5) / N
    if half_step and se > 0:  # a share known without error (a census) stays exact
        back = back + np.array([-1.0, 1.0]) * LATTICE_HALF_STEP / N
    lo, hi = np.clip(back, 0.0, 1.0)
    return float(lo), float(hi)


def combine_arrays(
    q: np.ndarray,
    u: np.ndarray | None = None,
    rule: str = "mi",
    conf_level: float = 0.95,
    n_syn_over_n: float = 1.0,
    df_com: float = float("inf"),
    share_n: float | None = None,
    n_real: float = 0.0,
) -> dict[str, float]:
    """Combine one estimand's per-implicate estimates ``q`` and within variances ``u``.
    ``df_com``: the complete-data df (Barnard-Rubin, rule mi); ``share_n``: for a share, the
    domain's number of units (empirical-logit interval), ``n_real`` its real answers (a share of
    0 or 1 with no variance gets Wilson's interval with them, as in :func:`share_interval`).
    A within variance below 0 (a rounding residue) or missing counts as 0, as in the ``estimate``
    macro."""
    if rule not in RULES:
        raise ValueError(f"rule '{rule}' unknown; use one of {RULES}")
    q = np.asarray(q, dtype=float)
    u = np.zeros_like(q) if u is None else np.asarray(u, dtype=float)
    ok = np.isfinite(q)
    q, u = q[ok], u[ok]
    m = int(q.size)
    nan = float("nan")
    if m == 0:
        return {
            "estimate": nan,
            "se": nan,
            "df": nan,
            "ci_low": nan,
            "ci_high": nan,
            "m": 0,
            "b": nan,
            "ubar": nan,
            "total_var": nan,
        }
    qbar = float(q.mean())
    ubar = float(np.mean(np.where(u > 0, u, 0.0)))  # nan > 0 is False: a missing u counts 0
    b = float(between_variance(q)) if m >= 2 else nan
    T, df = _rule(rule, m, b, ubar, n_syn_over_n)
    if rule == "mi" and np.isfinite(T) and T > 0:
        df = barnard_rubin_df(df, (1 + 1 / m) * b / T, df_com, ubar, T)
    se = float(np.sqrt(T)) if np.isfinite(T) else nan
    tq = float(t_quantile(df, conf_level)) if np.isfinite(se) else nan
    lo, hi = qbar - tq * se, qbar + tq * se
    if share_n is not None and np.isfinite(se) and share_n > 0:
        lo, hi = share_interval(qbar, se, tq, share_n, n_real)
    return {
        "estimate": qbar,
        "se": se,
        "df": df,
        "ci_low": lo,
        "ci_high": hi,
        "m": m,
        "b": b,
        "ubar": ubar,
        "total_var": T,
    }


def _rule(rule: str, m: int, b: float, ubar: float, n_syn_over_n: float) -> tuple[float, float]:
    inf, nan = float("inf"), float("nan")
    if not np.isfinite(b):
        return nan, nan
    if rule == "mi":
        T = ubar + (1 + 1 / m) * b
        df = (m - 1) * (1 + ubar / ((1 + 1 / m) * b)) ** 2 if b > 0 else inf
    elif rule == "partial":
        T = ubar + b / m
        df = (m - 1) * (1 + m * ubar / b) ** 2 if b > 0 else inf
    else:
        T = (1 + 1 / m) * b - ubar
        if T > 0:
            df = (m - 1) * (1 - m * ubar / ((m + 1) * b)) ** 2
        else:
            T, df = n_syn_over_n * ubar, inf
    return float(T), float(df)


def combine(
    df: pd.DataFrame,
    by: Sequence[str],
    q: str = "q",
    u: str | None = "u",
    rule: str = "mi",
    conf_level: float = 0.95,
) -> pd.DataFrame:
    """Combine a long table of per-implicate estimates (one row per group x implicate)."""
    by = list(by)
    rows = []
    for key, g in df.groupby(by, sort=True, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        res = combine_arrays(
            g[q].to_numpy(), None if u is None else g[u].to_numpy(), rule, conf_level
        )
        rows.append({**dict(zip(by, key)), **res})
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------- per-implicate estimates
def implicate_estimates(
    units: pd.DataFrame,
    y: str,
    measure: str,
    by: Sequence[str],
    weight: str = "analysis_weight",
    implicate: str = "implicate",
    stratum: str = "variance_stratum",
    fpc: str = "fpc",
    level: object = None,
    classes: Sequence[str] | None = None,
) -> pd.DataFrame:
    """q_l and u_l per group x implicate from a stacked augmented table, the definitions of the
    SQL macro: Hajek mean / share or total over item respondents, and the linearised variance
    for a stratified design with units as PSUs (STATS.md), z_i = w_i (y_i - q) / sum w (mean,
    share) or w_i y_i (total), zero outside the group or without an answer,
    V = sum_h fpc_h n_h / (n_h - 1) sum_{i in h} (z_i - zbar_h)^2 (n_h = 1: fpc_h z_i^2), where
    n_h counts every unit of stratum h in the implicate. With ``classes`` (columns; the macro's
    item_classes=true groups by them and the stratum) a mean's or share's weights are first
    scaled within each implicate x class x stratum by its weight over its item respondents' weight
    (item nonresponse adjusted within the class; totals are not scaled)."""
    by = list(by)
    d = units.copy()
    x = d[y]
    if measure == "share":
        val = np.where(x.isna(), np.nan, (x == level).astype(float))
    elif measure in ("mean", "total"):
        val = pd.to_numeric(x, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    else:
        raise ValueError(f"measure '{measure}' unknown; use mean, share or total")
    d["_y"] = val
    d["_w"] = d[weight].astype(float)
    if classes is not None and measure != "total":
        d["_w"] = _item_class_weights(d, [implicate, *classes, stratum])
    n_h = d.groupby([implicate, stratum]).size().rename("_n_h").reset_index()
    out = []
    for key, g in d.groupby([implicate, *by], sort=True, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        ok = g["_y"].notna().to_numpy()
        w, yy = g["_w"].to_numpy(), g["_y"].to_numpy()
        if not ok.any():
            continue
        sw = w[ok].sum()
        if measure == "total":
            qv = float((w[ok] * yy[ok]).sum())
            z = np.where(ok, w * np.nan_to_num(yy), 0.0)
        else:
            qv = float((w[ok] * yy[ok]).sum() / sw)
            z = np.where(ok, w * (np.nan_to_num(yy) - qv) / sw, 0.0)
        zz = pd.DataFrame({stratum: g[stratum].to_numpy(), "_z": z, "_fpc": g[fpc].to_numpy()})
        s = (
            zz.groupby(stratum)
            .agg(sz=("_z", "sum"), szz=("_z", lambda v: float((v * v).sum())), f=("_fpc", "max"))
            .reset_index()
        )
        s = s.merge(n_h[n_h[implicate] == key[0]][[stratum, "_n_h"]], on=stratum)
        nh = s["_n_h"].to_numpy(dtype=float)
        term = np.where(nh >= 2, nh / np.maximum(nh - 1, 1) * (s.szz - s.sz**2 / nh), s.szz)
        uv = float((s.f * term).sum())
        # complete-data df: item respondents less strata, over strata with fpc > 0
        obs = g[ok & (g[fpc].to_numpy() > 0)]
        dfc = float(len(obs) - obs[stratum].nunique())
        out.append(
            {
                implicate: key[0],
                **dict(zip(by, key[1:])),
                "q": qv,
                "u": max(uv, 0.0),
                "df_com": dfc,
                "sw": float(sw),
            }
        )
    return pd.DataFrame(out)


def _item_class_weights(d: pd.DataFrame, keys: list[str]) -> pd.Series:
    """d._w times (sum of _w over the class) / (sum of _w over its units with an answer _y)."""
    g = d.groupby(keys, dropna=False)
    w_all = g["_w"].transform("sum")
    w_obs = d["_w"].where(d["_y"].notna(), 0.0).groupby([d[k] for k in keys], dropna=False)
    w_obs = w_obs.transform("sum")
    return d["_w"] * (w_all / w_obs.where(w_obs > 0)).fillna(1.0)
