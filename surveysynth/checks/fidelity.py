"""Fidelity of synthetic microdata to the real survey: does it answer questions the same way?

    report = fidelity_metrics(real, synthetic, columns_spec, weights="design_weight",
                              region_col="region",
                              regression={"y": "turnover", "x": ["employees", "applied_finance"]})

One row per metric, in the same shape as :func:`surveysynth.risk.disclosure_metrics`
(``metric``, ``column``, ``value``, ``threshold``, ``comparison``, ``passed``, ``detail``).

Three levels, each a gate (formulas in STATS.md, "Fidelity"):

1. Marginals and dependence: KS distance (numeric) or total variation (categorical,
   ordinal, binary) per column, missing-rate differences, the worst pair's Spearman
   correlation difference, and the worst pair's contingency-table total variation (numerics
   cut at the real data's quintiles) for pairs involving a categorical column.
2. Propensity: pMSE of a "synthetic vs real" logistic model with main effects and all
   pairwise interactions (Snoke et al. 2018), S_pMSE = pMSE / its null expectation; a
   CART version with a permutation null on request. The logistic null is
   (k - 1)(1 - c)^2 c / n_real, which is STATS.md's (k - 1)(1 - c)^2 c / N with N read as the
   number of real rows (n_real = (1 - c) N), i.e. (k - 1) c (1 - c) / N for the N stacked
   rows: the fitted propensities of an unpenalised logit under the null satisfy
   sum (p_i - c)^2 ~ c (1 - c) chi2_{k-1}. With N read as the stacked rows the null would be
   too small by 1 - c and a perfect synthesis would score S_pMSE = 2 at c = 1/2
   (tests/test_fidelity.py checks the mean is about 1). A synthesizer that gets every marginal
   right but shuffles the columns passes level 1's marginals and fails here.
3. Inference: confidence-interval overlap (Karr et al. 2006) of weighted domain means (by
   region, say) and of the coefficients of a named regression, reporting the worst domain as
   well as the average; the worst region's marginal distance; survival of rare categories.

Sparse surveys have small domains, where even two honest samples differ. So distance
thresholds are read above the sampling noise: the threshold of a KS, TV or correlation gate
is ``base + noise_allowance * floor``, where ``floor`` is the statistic's expected value when
real and synthetic come from one distribution at these (Kish effective) sizes:
KS 0.8687 sqrt(1/n_r + 1/n_s) (mean of the Kolmogorov distribution); TV
1/2 sum_k sqrt(2/pi) sqrt(p_k (1 - p_k)(1/n_r + 1/n_s)); a difference of two shares or
correlations sqrt(2/pi) times its standard error. The detail column shows the floor.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import linalg, stats
from scipy.special import expit

from surveysynth.checks.risk import (
    METRIC_COLUMNS,
    Kind,
    _frame,
    _merge_thresholds,
    _numeric,
    _ordinal_codes,
    _row,
    normalise_labels,
    resolve_column_types,
)

__all__ = [
    "DEFAULT_FIDELITY_THRESHOLDS",
    "METRIC_COLUMNS",
    "PMSE_MAX_ROWS",
    "ci_overlap",
    "fidelity_metrics",
    "pmse",
]

#: Defaults for ``fidelity_metrics(thresholds=...)``. ``None`` makes a metric report-only.
DEFAULT_FIDELITY_THRESHOLDS: dict[str, float | None] = {
    # multiplier of the sampling-noise floor added to the distance thresholds (0: none)
    "noise_allowance": 1.0,
    # KS (numeric) / TV (discrete) distance per column, above the noise floor
    "marginal_max": 0.10,
    # |missing share real - missing share synthetic| per column, above the noise floor
    "missing_rate_diff_max": 0.05,
    # worst pair's |Spearman rho real - rho synthetic|, above the noise floor
    "dependence_corr_max": 0.10,
    # worst pair's contingency-table TV (a categorical column in the pair), above the floor
    "dependence_contingency_max": 0.10,
    # S_pMSE of the logistic propensity model (STATS.md: < 10, better < 3)
    "s_pmse_max": 10.0,
    # S_pMSE of the CART propensity model (permutation null), when asked for: its ratio runs
    # lower than the logistic one (the permutation null absorbs the tree's overfitting)
    "s_pmse_cart_max": 3.0,
    # CI overlap of domain means: the average over domains, and the worst domain
    "ci_overlap_mean_min": 0.5,
    "ci_overlap_worst_min": 0.0,
    # CI overlap of each regression coefficient
    "regression_ci_overlap_min": 0.5,
    # worst region's marginal distance (KS / TV within the region), above the noise floor
    "region_marginal_worst_max": 0.10,
    # a level is rare when its weighted real share is below this
    "rare_share": 0.05,
    # share of the rare real levels (and rare real combinations) seen in the synthetic data
    "rare_survival_min": 0.9,
}

#: Rows (real + synthetic, a seeded subsample) the pMSE propensity model is fitted on, by default:
#: the same number as var ss_fidelity_pmse_rows in dbt_project.yml, so the library and the build
#: judge alike (S_pMSE grows with the rows for any fixed imperfection).
PMSE_MAX_ROWS = 6000

_KS_MEAN = 0.8687  # E[sup |B(t)|] of the Brownian bridge: sqrt(pi/2) ln 2
_E_ABS = math.sqrt(2.0 / math.pi)  # E|Z| for Z ~ N(0, 1)
_TOP_LEVELS = 30

Combining = Literal["partial", "full"]
PropensityModel = Literal["logit", "cart"]


# ------------------------------------------------------------------------------ small pieces


def _weights(frame: pd.DataFrame, col: str | None, what: str) -> np.ndarray:
    if col is None:
        return np.ones(len(frame))
    if col not in frame.columns:
        raise KeyError(
            f"weight column {col!r} is not in the {what} frame (columns: {list(frame.columns)})"
        )
    w = pd.to_numeric(frame[col], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    bad = ~np.isfinite(w) | (w < 0)
    if bad.any():
        raise ValueError(
            f"weight column {col!r} of the {what} frame has {int(bad.sum())} missing, infinite or "
            "negative values; fix them (or quarantine the rows) before measuring fidelity"
        )
    return w


def _kish(w: np.ndarray) -> float:
    s2 = float(np.sum(w * w))
    return float(np.sum(w)) ** 2 / s2 if s2 > 0 else 0.0


def _inv(n_r: float, n_s: float) -> float:
    return (1.0 / n_r if n_r > 0 else math.inf) + (1.0 / n_s if n_s > 0 else math.inf)


def _weighted_ks(x_r: np.ndarray, w_r: np.ndarray, x_s: np.ndarray, w_s: np.ndarray) -> float:
    """sup_t |F_r(t) - F_s(t)| of the weighted ECDFs."""
    grid = np.unique(np.concatenate([x_r, x_s]))

    def ecdf(x: np.ndarray, w: np.ndarray) -> np.ndarray:
        o = np.argsort(x, kind="stable")
        cw = np.concatenate([[0.0], np.cumsum(w[o])]) / w.sum()
        return cw[np.searchsorted(x[o], grid, side="right")]

    return float(np.max(np.abs(ecdf(x_r, w_r) - ecdf(x_s, w_s))))


def _shares(labels: np.ndarray, w: np.ndarray) -> pd.Series:
    s = pd.Series(w).groupby(pd.Series(labels, dtype=object)).sum()
    return s / s.sum()


def _tv(
    lab_r: np.ndarray, w_r: np.ndarray, lab_s: np.ndarray, w_s: np.ndarray
) -> tuple[float, pd.Series, pd.Series]:
    pr, ps = _shares(lab_r, w_r), _shares(lab_s, w_s)
    idx = pr.index.union(ps.index)
    pr, ps = pr.reindex(idx, fill_value=0.0), ps.reindex(idx, fill_value=0.0)
    return 0.5 * float(np.abs(pr - ps).sum()), pr, ps


def _tv_floor(pr: pd.Series, ps: pd.Series, n_r: float, n_s: float) -> float:
    p = ((pr * n_r + ps * n_s) / (n_r + n_s)).to_numpy()
    return 0.5 * _E_ABS * float(np.sum(np.sqrt(p * (1 - p) * _inv(n_r, n_s))))


def _sdmetrics_complement(name: str, real: Any, syn: Any) -> float | None:
    """1 - sdmetrics' KSComplement / TVComplement where sdmetrics is installed, else None."""
    try:
        from sdmetrics import single_column
    except ImportError:  # pragma: no cover - sdmetrics is an optional (baselines) dependency
        return None
    return float(getattr(single_column, name).compute(real, syn))


def _weighted_quantile(x: np.ndarray, w: np.ndarray, q: float) -> float:
    o = np.argsort(x)
    cw = np.cumsum(w[o])
    return float(x[o][min(np.searchsorted(cw, q * cw[-1]), len(x) - 1)])


def _hajek(y: np.ndarray, w: np.ndarray) -> tuple[float, float, int]:
    """Hájek mean and its linearised variance (one stratum, units as PSUs, no fpc; STATS.md)."""
    n = len(y)
    sw = w.sum()
    if n == 0 or sw <= 0:
        return float("nan"), float("nan"), n
    m = float(np.sum(w * y) / sw)
    if n < 2:
        return m, float("nan"), n
    z = w * (y - m) / sw
    return m, float(n / (n - 1) * np.sum((z - z.mean()) ** 2)), n


def ci_overlap(lo_o: float, hi_o: float, lo_s: float, hi_s: float) -> float:
    """Karr et al. (2006) interval overlap: 1/2 [(min U - max L)/(U_o - L_o) + (same)/(U_s - L_s)].

    1 for identical intervals, <= 0 when disjoint; clipped to [-1, 1] so that one far-off
    domain does not swamp an average (the worst-domain row still shows it). Zero-width
    intervals count as identical when equal and disjoint otherwise."""
    inter = min(hi_o, hi_s) - max(lo_o, lo_s)
    wo, ws = hi_o - lo_o, hi_s - lo_s
    if wo <= 0 and ws <= 0:
        return 1.0 if inter >= 0 else -1.0
    terms = []
    for w in (wo, ws):
        terms.append(inter / w if w > 0 else (1.0 if inter >= 0 else -1.0))
    return float(np.clip(0.5 * sum(terms), -1.0, 1.0))


def _combine(q: np.ndarray, u: np.ndarray, combining: Combining) -> tuple[float, float, float]:
    """Estimate, variance and df across m implicates (STATS.md: Reiter 2003 partial; Raghunathan,
    Reiter & Rubin 2003 full, with Reiter 2002's ū fallback when T_f <= 0)."""
    m = len(q)
    qbar, ubar = float(np.mean(q)), float(np.mean(u))
    if m == 1:
        return qbar, ubar, math.inf
    b = float(np.var(q, ddof=1))
    if combining == "partial":
        t = ubar + b / m
        df = (m - 1) * (1 + m * ubar / b) ** 2 if b > 0 else math.inf
    else:
        t = (1 + 1 / m) * b - ubar
        df = (m - 1) * (1 - m * ubar / ((m + 1) * b)) ** 2 if b > 0 else math.inf
        if t <= 0:
            t, df = ubar, math.inf
    return qbar, t, df


def _interval(est: float, var: float, df: float, level: float) -> tuple[float, float]:
    if not (np.isfinite(est) and np.isfinite(var)) or var < 0:
        return float("nan"), float("nan")
    crit = (
        stats.norm.ppf(0.5 + level / 2) if not np.isfinite(df) else stats.t.ppf(0.5 + level / 2, df)
    )
    half = float(crit) * math.sqrt(var)
    return est - half, est + half


# ------------------------------------------------------------------------------ column values


def _values(
    frame: pd.DataFrame, col: str, kind: Kind, levels: Mapping[str, tuple[Any, ...]]
) -> np.ndarray:
    """Numbers for numeric/binary/ordinal columns (ordinal: level position), labels otherwise."""
    if kind in ("numeric", "binary"):
        return _numeric(frame[col], col)
    if kind == "ordinal":
        return _ordinal_codes(frame[col], col, levels[col])
    return normalise_labels(frame[col])


def _missing(v: np.ndarray) -> np.ndarray:
    return pd.isna(v) if v.dtype == object else np.isnan(v)


def _filled(labels: np.ndarray) -> np.ndarray:
    """Labels as a str array with missing values as the level "<missing>"."""
    return np.where(pd.isna(labels), "<missing>", labels).astype(str)


# ------------------------------------------------------------------------------ propensity


def _design_blocks(
    real: pd.DataFrame,
    syn: pd.DataFrame,
    columns: Sequence[str],
    kinds: Mapping[str, Kind],
    levels: Mapping[str, tuple[Any, ...]],
    top_levels: int,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per source column: (main-effect columns that interact, extra columns that do not)."""
    blocks = []
    n_r = len(real)
    for col in columns:
        kind = kinds[col]
        v = np.concatenate([_values(real, col, kind, levels), _values(syn, col, kind, levels)])
        miss = _missing(v)
        if kind == "numeric":
            ref = np.sort(v[:n_r][~miss[:n_r]].astype(float))
            x = v.astype(float)
            if len(ref):
                r = (np.searchsorted(ref, x, "left") + np.searchsorted(ref, x, "right")) / (
                    2.0 * len(ref)
                )
            else:
                r = np.zeros_like(x)
            r = np.where(miss, 0.5, r) - 0.5
            main = [r] + ([miss.astype(float)] if miss.any() else [])
            blocks.append((np.column_stack(main), (r * r)[:, None]))
            continue
        if kind == "binary":
            x = np.where(miss, 0.0, v.astype(float))
            main = [x] + ([miss.astype(float)] if miss.any() else [])
            blocks.append((np.column_stack(main), np.zeros((len(v), 0))))
            continue
        lab = np.where(miss, "<missing>", v.astype(object)).astype(object).astype(str)
        counts = pd.Series(lab[:n_r]).value_counts()
        keep = list(counts.index[:top_levels])
        lab = np.where(np.isin(lab, keep), lab, "<other>")
        cats = pd.Index(sorted(set(lab)))
        codes = cats.get_indexer(lab)
        base = cats.get_loc(keep[0]) if keep else 0
        dummies = np.zeros((len(v), len(cats)))
        dummies[np.arange(len(v)), codes] = 1.0
        dummies = np.delete(dummies, base, axis=1)
        blocks.append((dummies, np.zeros((len(v), 0))))
    return blocks


def _design(blocks: list[tuple[np.ndarray, np.ndarray]], interactions: bool) -> np.ndarray:
    cols = [b for blk in blocks for b in blk if b.shape[1]]
    if interactions:
        for i in range(len(blocks)):
            for j in range(i + 1, len(blocks)):
                a, b = blocks[i][0], blocks[j][0]
                if a.shape[1] and b.shape[1]:
                    cols.append((a[:, :, None] * b[:, None, :]).reshape(len(a), -1))
    x = np.column_stack(cols) if cols else np.zeros((len(blocks[0][0]) if blocks else 0, 0))
    sd = x.std(axis=0)
    return x[:, sd > 1e-12]


def _fit_logit(x: np.ndarray, y: np.ndarray, ridge: float = 1e-6, max_iter: int = 50) -> np.ndarray:
    """Fitted probabilities of an (almost) unpenalised logistic regression with an intercept.

    Newton-Raphson (IRLS) with Armijo step halving: a few dozen Hessian solves instead of the
    hundreds of gradient steps a quasi-Newton method needs with many interaction terms. The
    tiny ridge keeps the Hessian invertible under separation (a category only one frame
    has), where the fitted probabilities still converge to 0 / 1 as they should."""
    mu, sd = x.mean(axis=0), x.std(axis=0)
    z = np.column_stack([np.ones(len(x)), (x - mu) / sd])
    n, k = z.shape
    pen = np.full(k, ridge)
    pen[0] = 0.0

    def loss(beta: np.ndarray) -> float:
        eta = z @ beta
        return float(np.sum(np.logaddexp(0.0, eta) - y * eta) / n + 0.5 * np.sum(pen * beta**2))

    c = float(y.mean())
    beta = np.zeros(k)
    beta[0] = math.log(c / (1 - c))
    current = loss(beta)
    for _ in range(max_iter):
        p = expit(z @ beta)
        grad = z.T @ (p - y) / n + pen * beta
        hess = (z * (p * (1 - p))[:, None]).T @ z / n + np.diag(pen + 1e-12)
        try:
            step = linalg.solve(hess, grad, assume_a="pos")
        except (linalg.LinAlgError, ValueError):
            step = np.linalg.lstsq(hess, grad, rcond=None)[0]
        t, slope = 1.0, float(grad @ step)
        while True:
            trial = beta - t * step
            new = loss(trial)
            if new <= current - 1e-4 * t * slope or t < 1e-6:
                break
            t /= 2
        beta, done = trial, current - new < 1e-10 * max(1.0, abs(current))
        current = new
        if done:
            break
    return expit(z @ beta)


def pmse(
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    columns_spec: Mapping[str, Any],
    *,
    model: PropensityModel = "logit",
    interactions: bool = True,
    max_rows: int = PMSE_MAX_ROWS,
    n_permutations: int = 10,
    seed: int = 0,
    max_terms: int = 250,
) -> dict[str, float]:
    """pMSE and S_pMSE (Snoke et al. 2018; STATS.md) of a "synthetic vs real" classifier.

    ``logit``: main effects (numerics as centred ECDF rank and its square, with a missing
    indicator; categorical and ordinal columns as dummies, the 30 most frequent real levels)
    plus all pairwise interactions between different columns, with the levels kept per
    categorical column halved until there are at most ``max_terms`` terms (more terms cost
    k^2 per Newton step and raise the null, which costs power: on the demo survey a
    within-cell shuffle scores S_pMSE 7.6 with 165 terms but 2.4 with 771); null (k - 1) c (1 - c) / N
    with k the number of parameters and N the stacked rows (the module docstring says why
    this is STATS.md's formula with N the real rows). ``cart``: a scikit-learn decision tree on the main
    effects (min leaf max(5, N / 100), so that it cannot simply memorise rows), null = mean
    pMSE over ``n_permutations`` refits with permuted labels.
    Each frame is cut to ``max_rows`` / 2 rows by a seeded subsample at most, to bound the cost
    of the interaction design; N and c are those of the rows used. Unweighted: it compares
    records, so pass the rows that the synthetic ones stand in for."""
    columns = list(columns_spec)
    kinds, levels = resolve_column_types(columns, columns_spec, [real, synthetic])
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x9E5]))
    half = max(max_rows // 2, 1)
    r, s = _subsample(real, half, rng), _subsample(synthetic, half, rng)
    y = np.concatenate([np.zeros(len(r)), np.ones(len(s))])
    if len(r) == 0 or len(s) == 0:
        raise ValueError("pmse needs rows in both the real and the synthetic frame")
    x = _propensity_design(
        r, s, columns, kinds, levels, interactions and model == "logit", max_terms
    )
    if model == "logit":
        return _logit_pmse(x, y)
    if model == "cart":
        return _cart_pmse(x, y, n_permutations, seed, rng)
    raise ValueError(f"model must be 'logit' or 'cart', not {model!r}")


def _subsample(f: pd.DataFrame, half: int, rng: np.random.Generator) -> pd.DataFrame:
    """At most ``half`` rows of ``f``, a seeded subsample in the original order."""
    return f if len(f) <= half else f.iloc[np.sort(rng.choice(len(f), half, replace=False))]


def _propensity_design(r, s, columns, kinds, levels, interactions: bool, max_terms: int):
    """The stacked design, with the levels kept per categorical column halved (from 30,
    down to 2) until it has at most ``max_terms`` terms."""
    top = _TOP_LEVELS
    while True:
        x = _design(_design_blocks(r, s, columns, kinds, levels, top), interactions)
        if x.shape[1] <= max_terms or top <= 2:
            return x
        top = max(top // 2, 2)


def _logit_pmse(x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """pMSE of the logistic propensity model and its null (k - 1) c (1 - c) / N."""
    n, c = len(y), float(y.mean())
    p = _fit_logit(x, y)
    k = x.shape[1] + 1
    value = float(np.mean((p - c) ** 2))
    null = (k - 1) * (1 - c) ** 2 * c / (n * (1 - c))  # = (k - 1) c (1 - c) / N
    return {
        "pmse": value,
        "null": null,
        "s_pmse": value / null,
        "k": float(k),
        "n": float(n),
        "c": c,
    }


def _cart_pmse(x, y, n_permutations: int, seed: int, rng: np.random.Generator) -> dict[str, float]:
    """pMSE of a decision tree (min leaf max(5, N / 100)) and the mean over refits on
    permuted labels as its null."""
    try:
        from sklearn.tree import DecisionTreeClassifier
    except ImportError as exc:  # pragma: no cover
        raise ImportError("the CART pMSE needs scikit-learn (pip install scikit-learn)") from exc
    n, c = len(y), float(y.mean())
    leaf = max(5, n // 100)

    def fit(labels: np.ndarray) -> float:
        tree = DecisionTreeClassifier(min_samples_leaf=leaf, random_state=seed).fit(x, labels)
        return float(np.mean((tree.predict_proba(x)[:, 1] - c) ** 2))

    value = fit(y)
    null = float(np.mean([fit(rng.permutation(y)) for _ in range(n_permutations)]))
    return {
        "pmse": value,
        "null": null,
        "s_pmse": value / null,
        "k": float("nan"),
        "n": float(n),
        "c": c,
    }


# ------------------------------------------------------------------------------ entry point


def fidelity_metrics(
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    columns_spec: Mapping[str, Any],
    weights: str | None = None,
    region_col: str | None = None,
    ci_domains: Sequence[str] | None = None,
    regression: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
    thresholds: Mapping[str, float | None] | None = None,
    *,
    synthetic_weights: str | None = None,
    ci_outcomes: Sequence[str] | None = None,
    implicate_col: str | None = None,
    combining: Combining = "partial",
    rare_combinations: Sequence[str] | None = None,
    propensity_models: Sequence[PropensityModel] = ("logit",),
    ci_level: float = 0.95,
    pmse_max_rows: int = PMSE_MAX_ROWS,
    seed: int = 0,
) -> pd.DataFrame:
    """Fidelity metrics of ``synthetic`` against ``real`` on the ``columns_spec`` columns.

    ``columns_spec`` follows the ``ss_outcomes`` var (``{name: {type, levels}}``); list the
    cell dimensions in it too (``{"region": "categorical"}``) to compare them. ``weights``
    names the real frame's weight column; ``synthetic_weights`` the synthetic one's (default:
    the same name when the synthetic frame has it, else unweighted). Marginals, dependence and
    CIs are weighted; pMSE is not (see :func:`pmse`).

    Rows (``column`` names the column, pair, "outcome by domain" or regression term):

    - ``marginal_distance`` per column: KS (numeric) or TV (discrete) of observed values;
      sdmetrics' KSComplement / TVComplement compute it when unweighted.
    - ``missing_rate_diff`` per column with missing values in either frame.
    - ``dependence_correlation``: the pair with the largest Spearman difference above its
      noise floor (numeric, ordinal and binary columns; pairwise-complete rows).
    - ``dependence_contingency``: the pair (one categorical at least) with the largest
      contingency-table TV above its noise floor; numerics cut at real quintiles.
    - ``pmse`` (report) and ``s_pmse`` (gate) per propensity model (``s_pmse_cart``).
    - ``ci_overlap_mean`` and ``ci_overlap_worst`` per outcome and domain column (the whole
      data as domain "(all)", plus ``ci_domains``, default ``[region_col]``): Karr overlap of
      the weighted Hájek mean's interval, averaged over domains and at the worst domain.
      ``ci_outcomes`` defaults to the numeric and binary columns. With ``implicate_col`` the
      synthetic estimate combines implicates (``combining``: ``partial`` = Reiter 2003,
      ``full`` = Raghunathan, Reiter & Rubin 2003).
    - ``regression_ci_overlap`` per coefficient of each ``regression``
      (``{"y": col, "x": [cols], "log_y": bool}``): weighted least squares with a
      linearised (sandwich) variance; categorical x as dummies against the real modal level.
    - ``region_marginal_worst``: within each ``region_col`` level, the column with the
      largest marginal distance above its noise floor; the row shows the worst region.
    - ``rare_category_survival`` per discrete column, and ``rare_combination_survival`` of
      ``rare_combinations`` (the cell dimensions, say): the share of real levels (or
      combinations) with weighted share below ``rare_share`` that occur in the synthetic data.
    """
    thr = _merge_thresholds(DEFAULT_FIDELITY_THRESHOLDS, thresholds)
    fx = _Compared.of(real, synthetic, columns_spec, weights, synthetic_weights, thr)
    imp_s = _implicates(synthetic, implicate_col)
    rows = _marginal_rows(fx)
    rows += _correlation_rows(fx)
    rows += _contingency_rows(fx)
    rows += _pmse_rows(fx, columns_spec, propensity_models, pmse_max_rows, seed)
    domains: list[str | None] = [
        None,
        *(ci_domains if ci_domains is not None else ([region_col] if region_col else [])),
    ]
    outcomes = (
        list(ci_outcomes)
        if ci_outcomes is not None
        else [c for c in fx.columns if fx.kinds[c] in ("numeric", "binary")]
    )
    for dcol in domains:
        rows += _ci_overlap_rows(fx, dcol, outcomes, imp_s, combining, ci_level)
    specs = (
        []
        if regression is None
        else ([regression] if isinstance(regression, Mapping) else list(regression))
    )
    for spec in specs:
        rows += _regression_rows(
            real, synthetic, spec, fx.w_r, fx.w_s, imp_s, combining, ci_level, thr
        )
    if region_col is not None:
        rows += _region_rows(fx, region_col)
    rows += _survival_rows(fx, rare_combinations)
    return _frame(rows)


@dataclass
class _Compared:
    """The two frames as every family of metrics reads them: column kinds and levels, weights,
    values (``_values``), labels of discrete columns (None = missing) and the thresholds."""

    real: pd.DataFrame
    synthetic: pd.DataFrame
    columns: list[str]
    kinds: dict[str, Kind]
    levels: dict[str, list]
    w_r: np.ndarray
    w_s: np.ndarray
    vals_r: dict[str, np.ndarray]
    vals_s: dict[str, np.ndarray]
    labs_r: dict[str, np.ndarray]
    labs_s: dict[str, np.ndarray]
    thr: dict[str, float | None]
    unweighted: bool  # neither frame has weights
    real_weighted: bool

    @classmethod
    def of(cls, real, synthetic, columns_spec, weights, synthetic_weights, thr) -> _Compared:
        columns = list(columns_spec)
        if not columns:
            raise ValueError("columns_spec is empty: name the columns to compare")
        kinds, levels = resolve_column_types(columns, columns_spec, [real, synthetic])
        if len(real) == 0 or len(synthetic) == 0:
            raise ValueError("fidelity_metrics needs rows in both the real and the synthetic frame")
        if synthetic_weights is None and weights is not None and weights in synthetic.columns:
            synthetic_weights = weights
        discrete = [c for c in columns if kinds[c] != "numeric"]
        return cls(
            real=real,
            synthetic=synthetic,
            columns=columns,
            kinds=kinds,
            levels=levels,
            w_r=_weights(real, weights, "real"),
            w_s=_weights(synthetic, synthetic_weights, "synthetic"),
            vals_r={c: _values(real, c, kinds[c], levels) for c in columns},
            vals_s={c: _values(synthetic, c, kinds[c], levels) for c in columns},
            labs_r={c: normalise_labels(real[c]) for c in discrete},
            labs_s={c: normalise_labels(synthetic[c]) for c in discrete},
            thr=thr,
            unweighted=weights is None and synthetic_weights is None,
            real_weighted=weights is not None,
        )

    def thr_plus(self, key: str, floor: float) -> float | None:
        """The threshold ``key`` widened by the noise allowance x the metric's noise floor."""
        base = self.thr[key]
        return None if base is None else base + float(self.thr["noise_allowance"] or 0.0) * floor

    def marginal(self, col: str, mr: np.ndarray, ms: np.ndarray) -> tuple[float, float, str] | None:
        """(distance, noise floor, method) on the observed values of rows mr / ms."""
        vr, vs = self.vals_r[col][mr], self.vals_s[col][ms]
        wr, ws = self.w_r[mr], self.w_s[ms]
        okr, oks = ~_missing(vr), ~_missing(vs)
        vr, wr, vs, ws = vr[okr], wr[okr], vs[oks], ws[oks]
        if len(vr) == 0 or len(vs) == 0 or wr.sum() <= 0 or ws.sum() <= 0:
            return None
        n_r, n_s = _kish(wr), _kish(ws)
        if self.kinds[col] == "numeric":
            d = None
            if self.unweighted:
                comp = _sdmetrics_complement("KSComplement", pd.Series(vr), pd.Series(vs))
                d = None if comp is None else 1.0 - comp
            if d is None:
                d = _weighted_ks(vr.astype(float), wr, vs.astype(float), ws)
            return d, _KS_MEAN * math.sqrt(_inv(n_r, n_s)), "KS"
        lr, ls = self.labs_r[col][mr][okr].astype(str), self.labs_s[col][ms][oks].astype(str)
        tv, pr, ps = _tv(lr, wr, ls, ws)
        if self.unweighted:
            comp = _sdmetrics_complement("TVComplement", pd.Series(lr), pd.Series(ls))
            tv = tv if comp is None else 1.0 - comp
        return tv, _tv_floor(pr, ps, n_r, n_s), "TV"


def _implicates(synthetic: pd.DataFrame, implicate_col: str | None) -> np.ndarray | None:
    if implicate_col is None:
        return None
    if implicate_col not in synthetic.columns:
        raise KeyError(f"implicate column {implicate_col!r} is not in the synthetic frame")
    return synthetic[implicate_col].to_numpy()


def _marginal_rows(fx: _Compared) -> list[dict[str, Any]]:
    """``marginal_distance`` of every column, and ``missing_rate_diff`` where either frame has
    missing values."""
    rows: list[dict[str, Any]] = []
    all_r, all_s = np.ones(len(fx.real), bool), np.ones(len(fx.synthetic), bool)
    for col in fx.columns:
        res = fx.marginal(col, all_r, all_s)
        if res is None:
            rows.append(
                _row(
                    "marginal_distance",
                    float("nan"),
                    fx.thr["marginal_max"],
                    "<=",
                    "no observed values in one of the frames",
                    column=col,
                )
            )
            continue
        d, floor, how = res
        rows.append(
            _row(
                "marginal_distance",
                d,
                fx.thr_plus("marginal_max", floor),
                "<=",
                f"{how} distance of observed values (weighted: {fx.real_weighted}); "
                f"noise floor {floor:.4f}",
                column=col,
            )
        )
        rows += _missing_rows(fx, col)
    return rows


def _missing_rows(fx: _Compared, col: str) -> list[dict[str, Any]]:
    mr, ms = _missing(fx.vals_r[col]), _missing(fx.vals_s[col])
    if not (mr.any() or ms.any()):
        return []
    w_r, w_s = fx.w_r, fx.w_s
    pr, ps = float(np.sum(w_r * mr) / w_r.sum()), float(np.sum(w_s * ms) / w_s.sum())
    p = (pr + ps) / 2
    floor = _E_ABS * math.sqrt(p * (1 - p) * _inv(_kish(w_r), _kish(w_s)))
    return [
        _row(
            "missing_rate_diff",
            abs(pr - ps),
            fx.thr_plus("missing_rate_diff_max", floor),
            "<=",
            f"missing share real {pr:.4f}, synthetic {ps:.4f}; noise floor {floor:.4f}",
            column=col,
        )
    ]


def _spearman(vals: dict[str, np.ndarray], w: np.ndarray, a: str, b: str) -> tuple[float, float]:
    """Weighted Spearman correlation of columns a and b (pairwise-complete) and its Kish n."""
    x, y = vals[a].astype(float), vals[b].astype(float)
    ok = ~(np.isnan(x) | np.isnan(y))
    if ok.sum() < 3 or np.ptp(x[ok]) == 0 or np.ptp(y[ok]) == 0:
        return float("nan"), 0.0
    rx, ry, ww = stats.rankdata(x[ok]), stats.rankdata(y[ok]), w[ok]
    mx, my = np.average(rx, weights=ww), np.average(ry, weights=ww)
    cov = np.average((rx - mx) * (ry - my), weights=ww)
    sx = math.sqrt(np.average((rx - mx) ** 2, weights=ww))
    sy = math.sqrt(np.average((ry - my) ** 2, weights=ww))
    return float(cov / (sx * sy)), _kish(ww)


def _correlation_rows(fx: _Compared) -> list[dict[str, Any]]:
    """``dependence_correlation``: the pair of ordered columns with the largest Spearman
    difference above its noise floor."""
    ordered = [c for c in fx.columns if fx.kinds[c] != "nominal"]
    pairs: list[tuple[float, float, str, str]] = []
    for i, a in enumerate(ordered):
        for b in ordered[i + 1 :]:
            r_r, n_r = _spearman(fx.vals_r, fx.w_r, a, b)
            r_s, n_s = _spearman(fx.vals_s, fx.w_s, a, b)
            if np.isfinite(r_r) and np.isfinite(r_s):
                floor = _E_ABS * (1 - r_r**2) * math.sqrt(_inv(n_r, n_s)) + 1e-12
                note = f"{a} x {b}: {r_r:+.3f} vs {r_s:+.3f}"
                pairs.append((abs(r_r - r_s), floor, f"{a} x {b}", note))
    return _worst_pair_rows(
        fx,
        "dependence_correlation",
        "dependence_corr_max",
        pairs,
        lambda n, floor, top: (
            f"worst of {n} pairs by |Spearman rho difference| above its noise "
            f"floor {floor:.4f}; real vs synthetic: {top}"
        ),
    )


def _worst_pair_rows(fx: _Compared, metric: str, key: str, pairs, detail) -> list[dict]:
    """The row of the pair whose value exceeds its noise floor most (the first such pair);
    ``pairs`` holds (value, floor, pair, note), ``detail(n, floor, top three notes)``."""
    if not pairs:
        return []
    value, floor, pair, _ = max(pairs, key=lambda p: p[0] - p[1])
    notes = [(v - f, note) for v, f, _, note in pairs]
    top = "; ".join(n for _, n in sorted(notes, reverse=True)[:3])
    return [
        _row(
            metric,
            value,
            fx.thr_plus(key, floor),
            "<=",
            detail(len(pairs), floor, top),
            column=pair,
        )
    ]


def _binned(fx: _Compared) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Every column as labels: numerics cut at the real quintiles, missing as '<missing>'."""
    binned_r: dict[str, np.ndarray] = {}
    binned_s: dict[str, np.ndarray] = {}
    for col in fx.columns:
        vr, vs = fx.vals_r[col], fx.vals_s[col]
        if fx.kinds[col] == "numeric":
            obs = vr[~np.isnan(vr)]
            edges = np.unique(np.quantile(obs, [0.2, 0.4, 0.6, 0.8])) if len(obs) else np.array([])
            binned_r[col] = np.where(
                np.isnan(vr), "<missing>", np.searchsorted(edges, vr, "right").astype(str)
            )
            binned_s[col] = np.where(
                np.isnan(vs), "<missing>", np.searchsorted(edges, vs, "right").astype(str)
            )
        else:
            binned_r[col] = _filled(fx.labs_r[col])
            binned_s[col] = _filled(fx.labs_s[col])
    return binned_r, binned_s


def _contingency_rows(fx: _Compared) -> list[dict[str, Any]]:
    """``dependence_contingency``: the pair (one nominal column at least) with the largest
    contingency-table TV above its noise floor."""
    binned_r, binned_s = _binned(fx)
    pairs: list[tuple[float, float, str, str]] = []
    columns = fx.columns
    for i, a in enumerate(columns):
        for b in columns[i + 1 :]:
            if fx.kinds[a] != "nominal" and fx.kinds[b] != "nominal":
                continue
            jr = np.char.add(np.char.add(binned_r[a], "\x1f"), binned_r[b])
            js = np.char.add(np.char.add(binned_s[a], "\x1f"), binned_s[b])
            tv, pr, ps = _tv(jr, fx.w_r, js, fx.w_s)
            floor = _tv_floor(pr, ps, _kish(fx.w_r), _kish(fx.w_s))
            pairs.append((tv, floor, f"{a} x {b}", f"{a} x {b}: {tv:.3f} (floor {floor:.3f})"))
    return _worst_pair_rows(
        fx,
        "dependence_contingency",
        "dependence_contingency_max",
        pairs,
        lambda n, floor, top: (
            f"worst of {n} pairs by contingency-table TV above its noise floor; {top}"
        ),
    )


def _pmse_rows(fx: _Compared, columns_spec, propensity_models, max_rows, seed) -> list[dict]:
    """``pmse`` (report) and ``s_pmse`` (gate) of every propensity model."""
    rows = []
    for model in propensity_models:
        res = pmse(fx.real, fx.synthetic, columns_spec, model=model, max_rows=max_rows, seed=seed)
        suffix = "" if model == "logit" else f"_{model}"
        how = (
            f"logistic, main effects + pairwise interactions, k = {int(res['k'])} parameters"
            if model == "logit"
            else "CART, null from permuted labels"
        )
        rows.append(
            _row(
                f"pmse{suffix}",
                res["pmse"],
                None,
                "<=",
                f"{how}; N = {int(res['n'])}, c = {res['c']:.3f}; null expectation {res['null']:.3g}",
            )
        )
        rows.append(
            _row(
                f"s_pmse{suffix}",
                res["s_pmse"],
                fx.thr[f"s_pmse{suffix}_max"],
                "<=",
                f"pMSE / null = {res['pmse']:.3g} / {res['null']:.3g} ({how}); STATS.md: < 10, better < 3",
            )
        )
    return rows


def _domain_labels(f: pd.DataFrame, dcol: str | None, what: str, role: str = "domain"):
    """The labels of ``dcol`` in frame ``f`` (``what``: real or synthetic); "(all)" for None."""
    if dcol is None:
        return np.full(len(f), "(all)", dtype=object)
    if dcol not in f.columns:
        raise KeyError(f"{role} column {dcol!r} is not in the {what} frame")
    return normalise_labels(f[dcol])


def _ci_overlap_rows(fx: _Compared, dcol, outcomes, imp_s, combining, ci_level) -> list[dict]:
    """``ci_overlap_mean`` (and ``ci_overlap_worst`` for a domain column) of every outcome's
    weighted mean over the levels of ``dcol`` (None: the whole data)."""
    lab_r = _domain_labels(fx.real, dcol, "real")
    lab_s = _domain_labels(fx.synthetic, dcol, "synthetic")
    dom_levels = [d for d in pd.unique(lab_r) if d is not None]
    rows = []
    for y in outcomes:
        if y not in fx.vals_r:
            yr, ys = _numeric(fx.real[y], y), _numeric(fx.synthetic[y], y)
        else:
            yr, ys = fx.vals_r[y].astype(float), fx.vals_s[y].astype(float)
        scores, skipped = [], []
        for d in dom_levels:
            mr, ms = (lab_r == d) & ~np.isnan(yr), (lab_s == d) & ~np.isnan(ys)
            res = _domain_overlap(fx, yr, ys, mr, ms, imp_s, combining, ci_level)
            if isinstance(res, str):
                skipped.append(f"{d} {res}")
            else:
                scores.append((res, str(d)))
        rows += _overlap_summary(fx, y, dcol, scores, skipped, ci_level)
    return rows


def _domain_overlap(fx, yr, ys, mr, ms, imp_s, combining, ci_level) -> float | str:
    """Karr overlap of the real and synthetic intervals of one domain's mean (the synthetic
    one combines implicates), or why there is none."""
    est_r, var_r, n_r = _hajek(yr[mr], fx.w_r[mr])
    if imp_s is None:
        est_s, var_s, n_s = _hajek(ys[ms], fx.w_s[ms])
        df_s = max(n_s - 1, 1)
    else:
        qs, us = [], []
        for imp in pd.unique(imp_s[ms]):
            mi = ms & (imp_s == imp)
            q, u, _ = _hajek(ys[mi], fx.w_s[mi])
            qs.append(q)
            us.append(u)
        n_s = int(ms.sum())
        est_s, var_s, df_s = (
            _combine(np.array(qs), np.array(us), combining) if qs else (np.nan, np.nan, np.nan)
        )
    lo_r, hi_r = _interval(est_r, var_r, max(n_r - 1, 1), ci_level)
    lo_s, hi_s = _interval(est_s, var_s, df_s, ci_level)
    if not all(np.isfinite([lo_r, hi_r, lo_s, hi_s])):
        return f"(n real {n_r}, synthetic {n_s})"
    return ci_overlap(lo_r, hi_r, lo_s, hi_s)


def _overlap_summary(fx, y, dcol, scores, skipped, ci_level) -> list[dict[str, Any]]:
    label = f"{y} by {'(all)' if dcol is None else dcol}"
    skip_note = (
        f"; no interval for {len(skipped)} domains: {', '.join(skipped[:5])}" if skipped else ""
    )
    if not scores:
        return [
            _row(
                "ci_overlap_mean",
                float("nan"),
                fx.thr["ci_overlap_mean_min"],
                ">=",
                f"no domain had an interval in both frames{skip_note}",
                column=label,
            )
        ]
    vals = np.array([s for s, _ in scores])
    worst_s, worst_d = min(scores)
    rows = [
        _row(
            "ci_overlap_mean",
            float(vals.mean()),
            fx.thr["ci_overlap_mean_min"],
            ">=",
            f"Karr overlap of {ci_level:.0%} intervals of the weighted mean, averaged over "
            f"{len(vals)} domains{skip_note}",
            column=label,
        )
    ]
    if dcol is not None:
        rows.append(
            _row(
                "ci_overlap_worst",
                worst_s,
                fx.thr["ci_overlap_worst_min"],
                ">=",
                f"worst domain {dcol} = {worst_d}; "
                + ", ".join(f"{d}: {s:.2f}" for s, d in sorted(scores)[:5]),
                column=label,
            )
        )
    return rows


def _region_rows(fx: _Compared, region_col: str) -> list[dict[str, Any]]:
    """``region_marginal_worst``: within each region, the column with the largest marginal
    distance above its noise floor; the row shows the worst region."""
    reg_r = _domain_labels(fx.real, region_col, "real", "region")
    reg_s = _domain_labels(fx.synthetic, region_col, "synthetic", "region")
    found: list[tuple[float, float, float, str, str]] = []
    missing_regions = []
    for reg in [d for d in pd.unique(reg_r) if d is not None]:
        mr, ms = reg_r == reg, reg_s == reg
        if not ms.any():
            missing_regions.append(str(reg))
            continue
        for col in fx.columns:
            res = None if col == region_col else fx.marginal(col, mr, ms)
            if res is not None:
                d, floor, how = res
                found.append((d - floor, d, floor, str(reg), f"{col} ({how})"))
    if not found:
        return []
    _ex, d, floor, reg, col = max(found)
    per_region: dict[str, float] = {}
    for e, _, _, rg, _ in found:
        per_region[rg] = max(per_region.get(rg, -math.inf), e)
    ranking = ", ".join(
        f"{r}: {e:+.3f}" for r, e in sorted(per_region.items(), key=lambda t: -t[1])[:5]
    )
    miss = f"; no synthetic rows in regions {missing_regions}" if missing_regions else ""
    return [
        _row(
            "region_marginal_worst",
            d,
            fx.thr_plus("region_marginal_worst_max", floor),
            "<=",
            f"worst region {region_col} = {reg}, column {col}, noise floor {floor:.4f}; "
            f"excess over floor by region: {ranking}{miss}",
            column=region_col,
        )
    ]


def _survival_rows(fx: _Compared, rare_combinations) -> list[dict[str, Any]]:
    """``rare_category_survival`` of every discrete column and ``rare_combination_survival``
    of ``rare_combinations``."""
    rows = [
        _survival(fx, _filled(fx.labs_r[c]), _filled(fx.labs_s[c]), c, "rare_category_survival")
        for c in fx.columns
        if fx.kinds[c] != "numeric"
    ]
    if rare_combinations:
        combo = list(rare_combinations)
        for f, what in ((fx.real, "real"), (fx.synthetic, "synthetic")):
            miss = [c for c in combo if c not in f.columns]
            if miss:
                raise KeyError(f"rare_combinations columns {miss} are not in the {what} frame")
        rows.append(
            _survival(
                fx,
                _joint_labels(fx.real, combo),
                _joint_labels(fx.synthetic, combo),
                " x ".join(combo),
                "rare_combination_survival",
            )
        )
    return rows


def _joint_labels(f: pd.DataFrame, combo: list[str]) -> np.ndarray:
    parts = [np.asarray(normalise_labels(f[c]), dtype=object).astype(str) for c in combo]
    out = parts[0]
    for p in parts[1:]:
        out = np.char.add(np.char.add(out, " | "), p)
    return out


def _survival(fx: _Compared, lab_r, lab_s, label: str, metric: str) -> dict[str, Any]:
    """The share of real levels with weighted share below ``rare_share`` that the synthetic
    data has."""
    rare_share = float(fx.thr["rare_share"] or 0.0)
    shares = _shares(lab_r, fx.w_r)
    rare = shares[shares < rare_share]
    present = set(pd.unique(lab_s))
    novel = sorted(set(present) - set(shares.index))
    novel_note = (
        f"; {len(novel)} synthetic levels absent from the real data: {novel[:5]}" if novel else ""
    )
    if len(rare) == 0:
        return _row(
            metric,
            float("nan"),
            fx.thr["rare_survival_min"],
            ">=",
            f"no real level below share {rare_share}{novel_note}",
            column=label,
            passed=True,
        )
    lost = [str(v) for v in rare.index if v not in present]
    return _row(
        metric,
        1.0 - len(lost) / len(rare),
        fx.thr["rare_survival_min"],
        ">=",
        f"{len(rare)} real levels below share {rare_share}; lost in synthetic: {lost[:10]}"
        f"{novel_note}",
        column=label,
    )


def _regression_rows(
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    spec: Mapping[str, Any],
    w_r: np.ndarray,
    w_s: np.ndarray,
    imp_s: np.ndarray | None,
    combining: Combining,
    ci_level: float,
    thr: Mapping[str, float | None],
) -> list[dict[str, Any]]:
    """CI overlap of each coefficient of a weighted least-squares regression (Karr et al. 2006)."""
    if "y" not in spec or "x" not in spec:
        raise ValueError(
            f"regression spec {dict(spec)} needs 'y' (a column) and 'x' (a list of columns)"
        )
    y, xs, log_y = spec["y"], list(spec["x"]), bool(spec.get("log_y", False))
    for f, what in ((real, "real"), (synthetic, "synthetic")):
        miss = [c for c in [y, *xs] if c not in f.columns]
        if miss:
            raise KeyError(f"regression columns {miss} are not in the {what} frame")

    xr, yr, names, okr = _regression_design(real, real, y, xs, log_y)
    xsyn, ysyn, _names_s, oks = _regression_design(synthetic, real, y, xs, log_y)
    br, vr = _wls(xr, yr, w_r[okr])
    bs, vs, df_s = _synthetic_coefficients(xsyn, ysyn, w_s[oks], imp_s, oks, combining)
    out = []
    df_r = max(len(yr) - len(br), 1)
    for j, name in enumerate(names):
        lo_r, hi_r = _interval(br[j], vr[j], df_r, ci_level)
        lo_s, hi_s = _interval(bs[j], vs[j], df_s[j], ci_level)
        ov = (
            ci_overlap(lo_r, hi_r, lo_s, hi_s)
            if all(np.isfinite([lo_r, hi_r, lo_s, hi_s]))
            else float("nan")
        )
        out.append(
            _row(
                "regression_ci_overlap",
                ov,
                thr["regression_ci_overlap_min"],
                ">=",
                f"{'log1p(' + y + ')' if log_y else y} ~ {' + '.join(xs)}: coefficient real "
                f"{br[j]:.4g} [{lo_r:.4g}, {hi_r:.4g}], synthetic {bs[j]:.4g} [{lo_s:.4g}, {hi_s:.4g}]; "
                f"n real {len(yr)}, synthetic {len(ysyn)}",
                column=f"{y} ~ {name}",
            )
        )
    return out


def _regression_design(f: pd.DataFrame, ref: pd.DataFrame, y: str, xs: list[str], log_y: bool):
    """(x, y, coefficient names, rows kept) of frame ``f``, one design for both frames:
    categorical x as dummies against the modal level of ``ref`` (the real frame)."""
    cols, names = [np.ones(len(f))], ["(intercept)"]
    ok = np.ones(len(f), bool)
    for c in xs:
        if pd.api.types.is_numeric_dtype(ref[c]) or pd.api.types.is_bool_dtype(ref[c]):
            v = _numeric(f[c], c)
            ok &= ~np.isnan(v)
            cols.append(np.nan_to_num(v))
            names.append(c)
        else:
            lab = normalise_labels(f[c])
            ref_lab = pd.Series(normalise_labels(ref[c])).dropna()
            lv = list(ref_lab.value_counts().index)
            ok &= np.array([v is not None for v in lab], bool)
            for level in lv[1:]:
                cols.append((lab == level).astype(float))
                names.append(f"{c}[{level}]")
    yy = _numeric(f[y], y)
    if log_y:
        if np.any(yy[~np.isnan(yy)] <= -1):
            raise ValueError(f"log_y regression of {y!r}: values <= -1 cannot take log1p")
        yy = np.log1p(yy)
    ok &= ~np.isnan(yy)
    return np.column_stack(cols)[ok], yy[ok], names, ok


def _wls(x: np.ndarray, yy: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weighted least squares: coefficients and their linearised (sandwich) variances."""
    n, p = x.shape
    xtwx = x.T @ (x * w[:, None])
    try:
        inv = np.linalg.inv(xtwx)
    except np.linalg.LinAlgError:
        inv = np.linalg.pinv(xtwx)
    beta = inv @ (x.T @ (w * yy))
    e = yy - x @ beta
    meat = (x * (w * e)[:, None]).T @ (x * (w * e)[:, None])
    v = inv @ meat @ inv * (n / max(n - p, 1))
    return beta, np.diag(v)


def _synthetic_coefficients(x, yy, w, imp_s, kept, combining):
    """(coefficients, variances, degrees of freedom) of the synthetic fit, implicates combined."""
    if imp_s is None:
        bs, vs = _wls(x, yy, w)
        return bs, vs, np.full(len(bs), max(len(yy) - len(bs), 1), dtype=float)
    imps = imp_s[kept]
    qs, us = [], []
    for imp in pd.unique(imps):
        m = imps == imp
        b, v = _wls(x[m], yy[m], w[m])
        qs.append(b)
        us.append(v)
    q, u = np.array(qs), np.array(us)
    comb = [_combine(q[:, j], u[:, j], combining) for j in range(q.shape[1])]
    return (
        np.array([c[0] for c in comb]),
        np.array([c[1] for c in comb]),
        np.array([c[2] for c in comb]),
    )
