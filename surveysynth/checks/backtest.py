"""Holdout back-test of the augmented estimates: do the intervals cover, and do they beat direct?

Take well-supported cells, thin their respondents by repeated random subsampling (seeded) to
sparse sizes (e.g. 2, 3 and 5 per wave), synthesize those cells as if they were sparse (the
library's synthesizer on the thinned responses, with the cells' support class set to sparse;
size 0, below, empties a cell),
and compare, per cell x wave x indicator:

* the augmented estimate: each implicate completes the cell (thinned respondents count once each,
  synthetic records stand for the N - n others, as in augmented_microdata), combined across
  implicates by Rubin's rule with within variance 0 (T = (1 + 1/m) b, df = m - 1: see
  :mod:`surveysynth.estimation.combining`);
* the direct estimate from the thinned respondents (Hajek, linearised SE with the finite
  population correction, normal 95% interval, as direct_estimates);
* the reference: the full-sample (unthinned) direct estimate, and the true population value where
  a truth table is given (the demo's demo_truth).

Only the thinned cells are synthesized in a replicate (other sparse and empty cells are marked
supported for the run), which does not change the fit: the synthesizer's model uses every
respondent whatever the support map says; the support class only decides which cells get records.

Size 0 empties a cell: in a replicate where a cell's turn is 0, every one of its respondents is
dropped in every wave and its support class is set to empty. An empty domain has no respondent in
any wave; a cell emptied in one wave only would still lend the synthesizer its answers of the
other waves (its cell effect), and the allowance measured would be too small for a real empty
cell. The direct estimate of an emptied cell is null, so its rows are left out of the gate's
comparisons with the direct estimate and serve the bias allowance of empty domains.

A survey with few supported cells (fewer than ``ss_backtest_cells``) would measure little or
nothing, and its published estimates would carry no bias allowance. The list is then filled with
other cells (sparse, mostly) of 2+ respondents in every wave, 5 at least, which are only ever
emptied, a group at a time (each
replicate holds out about a tenth of the respondents at most, so the replicate's fit stays close
to the survey's): their full-sample direct estimate comes from respondents the fit did not see, so
it is a reference independent of the augmented estimate, whose variance the allowance takes out.
For an outcome with a ratio auxiliary (``ss_ratio_estimators``) an emptied cell's reference is the
ratio estimator's mean: a skewed total's Hajek mean of 2 or 3 units mostly misses the large units,
with a small SE too, and the allowance measured against it would be the reference's own error.
They measure the allowance of size 0, which domain_estimates also gives cells with respondents
when no size >= 1 was measured (the empty cell's allowance bounds theirs: the model part of a
cell with respondents leans on them through the cell effect).

Sabotage (back-test only, to prove the gate can fail): ``ignore_cells`` replaces every synthetic
record's outcomes with those of a respondent drawn from the whole wave (a synthesizer blind to
cell effects); ``identical_implicates`` copies implicate 1 into every implicate (improper
synthesis: no between-implicate variance, so intervals collapse).

Public entry points: :func:`run_backtest` (pandas in, pandas out), :func:`summarize` (the metrics
of backtest_summary, in Python), :class:`BacktestConfig`, and :func:`backtest_model` for the dbt
Python model.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from surveysynth.contract.config import SynthConfig
from surveysynth.contract.inputs import CELL_ID, make_cell_id
from surveysynth.estimation.combining import t_quantile
from surveysynth.seeding import stable_int_hash, stream_rng, unit_keys

log = logging.getLogger("surveysynth")

SABOTAGE: tuple[str, ...] = ("none", "ignore_cells", "identical_implicates")
Z975 = 1.959963984540054


class BacktestConfigError(ValueError):
    """A back-test var is malformed; the message names the var."""


@dataclass(frozen=True)
class BacktestConfig:
    """Back-test settings (vars ``ss_backtest_*``)."""

    n_cells: int = 24
    sizes: tuple[int, ...] = (2, 3, 5)
    repeats: int = 2
    max_records: int = 300
    sabotage: str = "none"
    seed: int = 0
    ratio: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if self.n_cells < 1:
            raise BacktestConfigError(f"ss_backtest_cells must be >= 1; got {self.n_cells}")
        if not any(int(s) >= 1 for s in self.sizes) or any(int(s) < 0 for s in self.sizes):
            raise BacktestConfigError(
                "ss_backtest_sizes must list sizes >= 0 with at least one size >= 1 (0 empties a "
                f"cell in every wave); got {list(self.sizes)}"
            )
        if self.repeats < 1:
            raise BacktestConfigError(f"ss_backtest_repeats must be >= 1; got {self.repeats}")
        if self.max_records < 1:
            raise BacktestConfigError(
                f"ss_backtest_max_records must be >= 1; got {self.max_records}"
            )
        if self.sabotage not in SABOTAGE:
            raise BacktestConfigError(
                f"ss_backtest_sabotage '{self.sabotage}' unknown; use one of {SABOTAGE}"
            )

    @classmethod
    def from_vars(cls, v: Mapping[str, Any]) -> BacktestConfig:
        sizes = v.get("ss_backtest_sizes") or [2, 3, 5]
        if isinstance(sizes, (int, float)):
            sizes = [sizes]
        return cls(
            n_cells=int(v.get("ss_backtest_cells", 24)),
            sizes=tuple(int(s) for s in sizes),
            repeats=int(v.get("ss_backtest_repeats", 2)),
            max_records=int(v.get("ss_backtest_max_records", 300)),
            sabotage=str(v.get("ss_backtest_sabotage") or "none"),
            seed=int(v.get("ss_seed", 0)),
            ratio=tuple((str(y), str(x)) for y, x in (v.get("ss_ratio_estimators") or {}).items()),
        )


# ----------------------------------------------------------------------- indicators
def indicator_names(config: SynthConfig) -> list[str]:
    """Indicator names as in direct_estimates and demo_truth."""
    out = []
    for o in config.outcomes:
        if o.is_numeric:
            out.append(o.name)
        else:
            out += [f"{o.name}={lv}" for lv in o.category_levels]
    return out


def indicator_matrix(df: pd.DataFrame, config: SynthConfig) -> np.ndarray:
    """(rows x indicators) values: the outcome for numeric ones, the 0/1 indicator of the level
    for shares; nan where the answer is missing."""
    cols = []
    for o in config.outcomes:
        s = df[o.name]
        miss = s.isna().to_numpy()
        if o.is_numeric:
            x = pd.to_numeric(s, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
            cols.append(np.where(miss, np.nan, x))
        else:
            if o.type == "binary":
                x = pd.to_numeric(s, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
                for lv in o.category_levels:
                    cols.append(np.where(miss, np.nan, (x == float(lv)).astype(float)))
            else:
                xs = s.astype(object).to_numpy()
                for lv in o.category_levels:
                    cols.append(np.where(miss, np.nan, (xs == lv).astype(float)))
    return np.column_stack(cols) if cols else np.zeros((len(df), 0))


def _group_sums(codes: np.ndarray, n_groups: int, w: np.ndarray, Y: np.ndarray):
    """Per group and indicator: sum of w over answers, sum w y, sum w^2, sum w^2 y, sum w^2 y^2."""
    ok = np.isfinite(Y)
    Y0 = np.where(ok, Y, 0.0)
    W = np.where(ok, w[:, None], 0.0)
    out = []
    for arr in (W, W * Y0, W * W, W * W * Y0, W * W * Y0 * Y0):
        g = np.zeros((n_groups, Y.shape[1]))
        np.add.at(g, codes, arr)
        out.append(g)
    n_units = np.bincount(codes, minlength=n_groups).astype(float)
    return (*out, n_units)


# ----------------------------------------------------------------------- the steps
#: the share of the survey's respondents one replicate may hold out of the sparse cells it empties
#: (choose_cells' fallback): with more held out at once, the replicate's fit would be much poorer
#: than the survey's own, and the allowance measured too large
FALLBACK_DROP_SHARE = 0.10
#: the fewest fallback cells worth emptying: domain_estimates uses an allowance measured on 5 cells
#: or more only (augmented_error_allowance.n_cells)
MIN_FALLBACK_CELLS = 5


def choose_cells(support: pd.DataFrame, config: SynthConfig, bt: BacktestConfig) -> pd.DataFrame:
    """The cells to thin, in a seeded order: the cells supported in every wave with more
    respondents than the largest thinned size (the first ``bt.n_cells``). A census cell (as many
    respondents as population units) qualifies: thinned, its dropped respondents are the units the
    records stand for, and its full-sample value is the cell's true value.

    Fallback, when fewer than ``bt.n_cells`` cells qualify (a survey whose cells are nearly all
    sparse): the list is filled with cells of any support class that have at least 2 respondents
    in every wave and more population units than respondents (``fallback`` true). They are only
    ever emptied (size 0: every respondent held out), so that their full-sample estimate, from
    respondents the replicate's fit did not see, is a reference independent of the augmented one
    (E (a - f)^2 = MSE_a + V_f, the form augmented_error_allowance takes V_f out of). ``group``
    is the replicate group a fallback cell is emptied in (:func:`fallback_groups`; -1 for the
    others)."""
    s = support.copy()
    if CELL_ID not in s.columns:
        s[CELL_ID] = make_cell_id(s, config.cell_dims)
    g = s.groupby(CELL_ID)
    n_min, n_max = g["n_respondents"].min(), g["n_respondents"].max()
    pop_min = pd.to_numeric(g["n_population"].min(), errors="coerce")
    all_supported = g["support_class"].agg(lambda x: bool((x == "supported").all()))
    ok = all_supported & (n_min > max(bt.sizes)) & (pop_min >= n_max)
    cells = _seeded_order(ok[ok].index, bt).head(bt.n_cells)
    spare = (
        (n_min >= 2)
        & (pop_min > n_max)
        & ~ok
        & (g[config.wave].nunique() == s[config.wave].nunique())
    )
    fallback = _seeded_order(spare[spare].index, bt).head(max(bt.n_cells - len(cells), 0))
    if len(fallback) < MIN_FALLBACK_CELLS:  # too few to measure an allowance domain_estimates uses
        fallback = fallback.iloc[:0]
    out = pd.DataFrame(
        {
            CELL_ID: pd.concat([cells, fallback], ignore_index=True),
            "fallback": np.r_[np.zeros(len(cells), bool), np.ones(len(fallback), bool)],
        }
    )
    out["cell_index"] = np.arange(len(out))
    held_out = float(g["n_respondents"].sum().reindex(fallback).sum())
    out["group"], out["n_groups"] = fallback_groups(out["fallback"].to_numpy(), held_out, s, bt)
    return out


def _seeded_order(cells: pd.Index, bt: BacktestConfig) -> pd.Series:
    cells = pd.Series(cells, name=CELL_ID, dtype=object)
    order = np.array(
        [stable_int_hash(("backtest-cells", bt.seed, c)) for c in cells], dtype=np.uint64
    )
    return cells.iloc[np.argsort(order, kind="stable")].reset_index(drop=True)


def fallback_groups(
    fallback: np.ndarray, held_out: float, support: pd.DataFrame, bt: BacktestConfig
) -> tuple[np.ndarray, int]:
    """The replicate group of each fallback cell (-1 for the others) and the group count G: the
    cells dealt in turn to G = max(repeats, ceil(held_out / (FALLBACK_DROP_SHARE x the survey's
    respondents))) groups, so that a replicate holds out about a tenth of the survey at most; the
    back-test then runs G replicates, replicate r emptying group r, each fallback cell once (G is
    0 without fallback cells)."""
    groups = np.full(len(fallback), -1, dtype=np.int64)
    if not fallback.any():
        return groups, 0
    total = float(support["n_respondents"].sum())
    n_groups = max(bt.repeats, int(np.ceil(held_out / (FALLBACK_DROP_SHARE * total))))
    groups[fallback] = np.arange(int(fallback.sum())) % n_groups
    return groups, n_groups


def n_replicates(chosen: pd.DataFrame, bt: BacktestConfig) -> int:
    """Replicates of a back-test: ``repeats``, or the fallback's group count (at least repeats)."""
    n_groups = int(chosen["n_groups"].max()) if "n_groups" in chosen and len(chosen) else 0
    return max(bt.repeats, n_groups)


def thinned_sizes(
    cell_index: np.ndarray, wave_pos: np.ndarray, bt: BacktestConfig, replicate: int
) -> np.ndarray:
    """The respondents each chosen cell x wave keeps in a replicate. The sizes take turns over
    cells, waves and replicates; size 0 (when listed) takes its turn per cell and replicate only,
    so an emptied cell is empty in every wave, and the other cells cycle over the sizes >= 1."""
    sizes = np.asarray(bt.sizes, dtype=np.int64)
    positive = sizes[sizes > 0]
    turn = positive[(cell_index + wave_pos + replicate) % len(positive)]
    if (sizes == 0).any():
        emptied = (cell_index + replicate) % len(sizes) == 0
        turn = np.where(emptied, 0, turn)
    return turn


def thin(
    responses: pd.DataFrame,
    chosen: pd.DataFrame,
    config: SynthConfig,
    bt: BacktestConfig,
    replicate: int,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Thinned responses (the chosen cells keep n of their respondents per wave, weights scaled by
    n_full / n) and the thinning plan (cell x wave: n_full, n_thinned). A fallback cell
    (:func:`choose_cells`) is emptied in the replicates of its group and left whole in the
    others."""
    r = responses
    waves = np.sort(r[config.wave].unique())
    wave_pos = {w: i for i, w in enumerate(waves)}
    chosen = _this_replicate(chosen, replicate)
    sel = r[CELL_ID].isin(chosen[CELL_ID]).to_numpy()
    if not sel.any():  # a replicate whose group has no cell (fewer fallback cells than groups)
        plan = pd.DataFrame({CELL_ID: [], config.wave: [], "n_full": [], "n_thinned": []})
        return r.reset_index(drop=True), plan
    sub = r.loc[sel, [config.unit_id, config.wave, CELL_ID]].copy()
    sub["_row"] = np.flatnonzero(sel)
    cidx = dict(zip(chosen[CELL_ID], chosen["cell_index"]))
    sub["n_thinned"] = thinned_sizes(
        sub[CELL_ID].map(cidx).to_numpy(), sub[config.wave].map(wave_pos).to_numpy(), bt, replicate
    )
    emptied = set(chosen.loc[chosen["fallback"], CELL_ID]) if "fallback" in chosen else set()
    sub.loc[sub[CELL_ID].isin(emptied), "n_thinned"] = 0
    seed_r = stable_int_hash(("backtest-thin", bt.seed, replicate)) & 0x7FFFFFFFFFFFFFFF
    sub["_key"] = unit_keys(seed_r, sub[config.unit_id], sub[config.wave])
    sub = sub.sort_values([CELL_ID, config.wave, "_key"], kind="mergesort")
    sub["_rank"] = sub.groupby([CELL_ID, config.wave], sort=False).cumcount()
    sub["n_full"] = sub.groupby([CELL_ID, config.wave], sort=False)[config.unit_id].transform(
        "size"
    )
    drop = sub.loc[sub["_rank"] >= sub["n_thinned"], "_row"].to_numpy()
    keep_mask = np.ones(len(r), dtype=bool)
    keep_mask[drop] = False
    out = r.loc[keep_mask].copy()
    plan = (
        sub.groupby([CELL_ID, config.wave], sort=True)
        .agg(n_full=("n_full", "first"), n_thinned=("n_thinned", "first"))
        .reset_index()
    )
    if config.weight:
        f = out[[CELL_ID, config.wave]].merge(plan, on=[CELL_ID, config.wave], how="left")
        scale = np.where(f["n_full"].notna(), f["n_full"] / f["n_thinned"], 1.0)
        out[config.weight] = out[config.weight].to_numpy(dtype=float) * scale
    return out.reset_index(drop=True), plan


def _this_replicate(chosen: pd.DataFrame, replicate: int) -> pd.DataFrame:
    """The chosen cells thinned in a replicate: every supported one, and the fallback cells of the
    replicate's group."""
    if "fallback" not in chosen or not chosen["fallback"].any():
        return chosen
    n_groups = int(chosen["n_groups"].max())
    return chosen[~chosen["fallback"] | (chosen["group"] == replicate % n_groups)]


def sabotage(
    synthetic: pd.DataFrame, responses: pd.DataFrame, config: SynthConfig, how: str, seed: int
) -> pd.DataFrame:
    """Back-test-only perturbations of a synthesizer's output (see the module docstring)."""
    if how == "none" or len(synthetic) == 0:
        return synthetic
    out = synthetic.copy()
    outs = list(config.outcome_names)
    if how == "identical_implicates":
        first = out.loc[
            out["implicate"] == out["implicate"].min(), [config.unit_id, config.wave, *outs]
        ]
        merged = out[[config.unit_id, config.wave]].merge(
            first, on=[config.unit_id, config.wave], how="left"
        )
        for c in outs:
            out[c] = merged[c].to_numpy()
        return out
    # ignore_cells: every record takes the answers of a respondent of its wave, drawn with
    # probability proportional to the weight, whatever the cell
    rng = stream_rng(seed, "backtest-sabotage")
    for wv, idx in out.groupby(config.wave, sort=True).indices.items():
        pool = responses[responses[config.wave] == wv]
        w = pool[config.weight].to_numpy(dtype=float) if config.weight else np.ones(len(pool))
        pick = rng.choice(len(pool), size=len(idx), p=w / w.sum())
        for c in outs:
            out.iloc[idx, out.columns.get_loc(c)] = pool[c].to_numpy()[pick]
    return out


def _cell_estimates(
    thinned: pd.DataFrame,
    full: pd.DataFrame,
    synthetic: pd.DataFrame,
    plan: pd.DataFrame,
    support: pd.DataFrame,
    config: SynthConfig,
    m: int,
    ratio: RatioReference | None = None,
) -> pd.DataFrame:
    """Direct (thinned), full-sample and augmented estimates for the thinned cells x waves."""
    keys = [CELL_ID, config.wave]
    plan = plan.merge(support[[CELL_ID, config.wave, "n_population"]], on=keys, how="left")
    pk = pd.MultiIndex.from_frame(plan[keys])

    def codes(df: pd.DataFrame) -> np.ndarray:
        return pk.get_indexer(pd.MultiIndex.from_frame(df[keys]))

    N = pd.to_numeric(plan["n_population"], errors="coerce").to_numpy(dtype=float)[:, None]
    direct = _direct_estimates(thinned, codes, N, config)
    reference = _direct_estimates(full, codes, N, config)
    if ratio is not None:
        _ratio_reference(reference, plan, full, codes, config, ratio)
    Q, n_syn = _implicate_estimates(thinned, synthetic, codes, len(plan), config, m)
    with np.errstate(invalid="ignore"):
        qbar = np.nanmean(Q, axis=0) if m else np.full(Q.shape[1:], np.nan)
        b = np.nanvar(Q, axis=0, ddof=1) if m >= 2 else np.full(Q.shape[1:], np.nan)
    T = (1.0 + 1.0 / m) * b
    df = np.where(b > 0, m - 1.0, np.inf)
    tq = t_quantile(df)
    se_aug = np.sqrt(T)

    base = plan[[*keys, "n_full", "n_thinned", "n_population"]]
    parts = []
    for k, name in enumerate(indicator_names(config)):
        d = base.copy()
        d["indicator"] = name
        d["measure"] = "share" if "=" in name else "mean"
        d["full_sample_value"] = reference[0][:, k]
        d["full_sample_se"] = reference[1][:, k]
        d["direct_estimate"] = direct[0][:, k]
        d["direct_se"] = direct[1][:, k]
        d["augmented_estimate"] = qbar[:, k]
        d["augmented_se"] = se_aug[:, k]
        d["augmented_df"] = np.where(np.isfinite(df[:, k]), df[:, k], np.nan)
        d["augmented_ci_low"] = qbar[:, k] - tq[:, k] * se_aug[:, k]
        d["augmented_ci_high"] = qbar[:, k] + tq[:, k] * se_aug[:, k]
        d["between_var"] = b[:, k]
        d["n_synthetic"] = n_syn
        parts.append(d)
    out = pd.concat(parts, ignore_index=True)
    out["direct_ci_low"] = out["direct_estimate"] - Z975 * out["direct_se"]
    out["direct_ci_high"] = out["direct_estimate"] + Z975 * out["direct_se"]
    out["m"] = m
    return out


@dataclass(frozen=True)
class RatioReference:
    """The ratio estimators of the survey (ss_ratio_estimators: outcome -> register auxiliary) and
    each cell's population mean of the auxiliary (cell_id -> X_bar)."""

    pairs: tuple[tuple[str, str], ...]
    x_bar: pd.Series


def ratio_reference(
    responses: pd.DataFrame, frame: pd.DataFrame | None, config: SynthConfig, bt: BacktestConfig
) -> tuple[RatioReference | None, pd.DataFrame]:
    """The ratio estimators the back-test can use (those of an outcome whose auxiliary the frame
    carries; None without any), and ``responses`` with each such auxiliary joined on the unit id
    where they lack it."""
    if not bt.ratio or frame is None:
        return None, responses
    pairs = tuple((y, x) for y, x in bt.ratio if y in config.outcome_names and x in frame.columns)
    for y, x in set(bt.ratio) - set(pairs):
        log.warning(
            "back-test: the ratio estimator of %s on %s is not used for emptied cells (the frame "
            "has no column %s, or %s is no outcome): their reference is the weighted mean",
            y,
            x,
            x,
            y,
        )
    if not pairs:
        return None, responses
    f = frame.copy()
    if CELL_ID not in f.columns:
        f[CELL_ID] = make_cell_id(f, config.cell_dims)
    xs = list(dict.fromkeys(x for _, x in pairs))
    for x in xs:
        f[x] = pd.to_numeric(f[x], errors="coerce").astype(float)
    missing = [x for x in xs if x not in responses.columns]
    if missing:
        keys = f[config.unit_id].astype(str)
        responses = responses.copy()
        for x in missing:
            responses[x] = responses[config.unit_id].astype(str).map(dict(zip(keys, f[x])))
    g = f.groupby(CELL_ID)
    x_bar = g[xs].sum(min_count=1).div(g.size(), axis=0)  # X / N: an unknown x leaves it NaN
    x_bar[g[xs].count().lt(g.size(), axis=0)] = np.nan
    return RatioReference(pairs, x_bar), responses


def _ratio_reference(reference, plan, full, codes, config: SynthConfig, ratio: RatioReference):
    """For an emptied cell (n_thinned 0) and an outcome with a ratio auxiliary x: the reference is
    the ratio estimator's mean from the cell's full sample, R X_bar with R = sum w y / sum w x, and
    its linearised SE, (X_bar / x_bar_w) times that of the weighted mean of y - R x (the form of
    _direct_estimates). A skewed total's Hajek mean of 2 or 3 units misses its large units most
    of the time, and its SE is then small too, so the allowance measured against it is mostly the
    reference's own error; the ratio estimator follows the register. Cells thinned to n >= 1 keep
    the Hajek reference (the back-test gate's nested comparison with the direct estimate needs
    it); the emptied ones have no direct estimate and no gate row."""
    q_all, se_all, _ = reference
    names = indicator_names(config)
    emptied = (plan["n_thinned"] == 0).to_numpy()
    c = codes(full)
    rows = full[c >= 0]
    c = c[c >= 0]
    w = rows[config.weight].to_numpy(dtype=float) if config.weight else np.ones(len(rows))
    N = pd.to_numeric(plan["n_population"], errors="coerce").to_numpy(dtype=float)[:, None]
    for y, x in ratio.pairs:
        k = names.index(y)
        yx = rows[[y, x]].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
        ok = np.isfinite(yx).all(axis=1)
        means, _, n = _weighted_means(c[ok], N, w[ok], yx[ok])
        x_bar = ratio.x_bar[x].reindex(plan[CELL_ID]).to_numpy(dtype=float)
        with np.errstate(invalid="ignore", divide="ignore"):
            R = means[:, 0] / means[:, 1]
            z = yx[ok, 0] - R[c[ok]] * yx[ok, 1]
            se_z = _weighted_means(c[ok], N, w[ok], z[:, None])[1][:, 0]
            q = R * x_bar
            se = np.abs(x_bar / means[:, 1]) * se_z
        use = emptied & np.isfinite(q) & (n >= 2)  # a reference with an SE, or none replaced
        q_all[use, k] = q[use]
        se_all[use, k] = se[use]


def _direct_estimates(df: pd.DataFrame, codes, N: np.ndarray, config: SynthConfig):
    """Per plan row (cell x wave) and indicator: the weighted mean of ``df``'s respondents, its
    SE (with-replacement form with the finite population correction 1 - n / N, from 2
    respondents) and the respondents counted."""
    c = codes(df)
    df = df[c >= 0]
    c = c[c >= 0]
    w = df[config.weight].to_numpy(dtype=float) if config.weight else np.ones(len(df))
    return _weighted_means(c, N, w, indicator_matrix(df, config))


def _weighted_means(c: np.ndarray, N: np.ndarray, w: np.ndarray, Y: np.ndarray):
    """Per group (codes ``c``, population counts ``N`` as a column) and column of ``Y``: the
    weighted mean, its SE (see _direct_estimates) and the rows counted."""
    sw, swy, sww, swwy, swwyy, n_units = _group_sums(c, len(N), w, Y)
    with np.errstate(invalid="ignore", divide="ignore"):
        q = swy / sw
        sz = (swy - q * sw) / sw  # 0 up to rounding
        szz = (swwyy - 2 * q * swwy + q * q * sww) / (sw * sw)
        n = n_units[:, None]
        fpc = np.clip(1.0 - n / N, 0.0, 1.0)
        var = np.where(n >= 2, fpc * n / (n - 1) * (szz - sz * sz / n), np.nan)
    return q, np.sqrt(np.maximum(var, 0.0)), n_units


def _implicate_estimates(thinned, synthetic, codes, G: int, config: SynthConfig, m: int):
    """Each implicate's completed cell means (m x cells x indicators: the real records weight 1,
    the synthetic ones their synth_weight) and the records per cell in implicate 1."""
    c_real = codes(thinned)
    real = thinned[c_real >= 0]
    c_real = c_real[c_real >= 0]
    if getattr(config, "augment_units", "nonrespondents") == "all":
        # the synthetic records stand for all N units: the respondents are not added to them
        real, c_real = real.iloc[:0], c_real[:0]
    Yr = indicator_matrix(real, config)
    K = Yr.shape[1]
    okr = np.isfinite(Yr)
    r_sw = np.zeros((G, K))
    r_swy = np.zeros((G, K))
    np.add.at(r_sw, c_real, okr.astype(float))
    np.add.at(r_swy, c_real, np.where(okr, Yr, 0.0))
    Q = np.full((m, G, K), np.nan)
    if not len(synthetic):
        return Q, np.zeros(G)
    cs = codes(synthetic)
    syn = synthetic[cs >= 0]
    cs = cs[cs >= 0]
    Ys = indicator_matrix(syn, config)
    oks = np.isfinite(Ys)
    ws = syn["synth_weight"].to_numpy(dtype=float)
    imp = syn["implicate"].to_numpy(dtype=np.int64)
    for l in range(1, m + 1):
        sel = imp == l
        s_sw = np.zeros((G, K))
        s_swy = np.zeros((G, K))
        np.add.at(s_sw, cs[sel], np.where(oks[sel], ws[sel, None], 0.0))
        np.add.at(s_swy, cs[sel], np.where(oks[sel], ws[sel, None] * Ys[sel], 0.0))
        with np.errstate(invalid="ignore", divide="ignore"):
            Q[l - 1] = (r_swy + s_swy) / (r_sw + s_sw)
    return Q, np.bincount(cs[imp == 1], minlength=G).astype(float)


def run_backtest(
    responses: pd.DataFrame,
    frame: pd.DataFrame | None,
    support: pd.DataFrame,
    config: SynthConfig,
    bt: BacktestConfig,
    truth: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per replicate x thinned cell x wave x indicator (see the module docstring).

    ``responses`` carry the weight column of ``config`` (the analysis weight in dbt) and the cell
    id; ``support`` is cell_support (cell_id, dims, wave, n_respondents, n_population,
    support_class); ``truth`` (optional) has the cell dims, the wave, indicator and true_value."""
    from surveysynth.synthesis.api import synthesize

    t0 = time.monotonic()
    c = config
    r = responses.copy()
    if CELL_ID not in r.columns:
        r[CELL_ID] = make_cell_id(r, c.cell_dims)
    s = support.copy()
    if CELL_ID not in s.columns:
        s[CELL_ID] = make_cell_id(s, c.cell_dims)
    chosen = choose_cells(s, c, bt)
    if chosen.empty:
        log.warning(
            "back-test: no cell is supported in every wave with more than %d respondents "
            "(max(ss_backtest_sizes)), and none has 2 to empty; the gate reports not_assessable",
            max(bt.sizes),
        )
        return empty_results(c)
    n_fallback = int(chosen["fallback"].sum())
    if n_fallback:
        log.warning(
            "back-test: %d cells are supported in every wave with more than %d respondents; "
            "%d other cells with 2+ respondents are emptied in turn instead, their full-sample "
            "estimate the reference (the gate compares with the direct estimate only where "
            "there is one)",
            len(chosen) - n_fallback,
            max(bt.sizes),
            n_fallback,
        )
    repeats = n_replicates(chosen, bt)
    ratio, r_x = ratio_reference(r, frame, c, bt)
    run_cfg = c.with_(
        mode="augment",
        augment_classes=("sparse", "empty"),
        max_records_per_cell=min(bt.max_records, c.max_records_per_cell),
    )
    parts = []
    for rep in range(repeats):
        thinned, plan = thin(r, chosen, c, bt, rep)
        if plan.empty:
            continue
        sup = s.copy()
        sup["support_class"] = "supported"
        key = sup[[CELL_ID, c.wave]].merge(plan, on=[CELL_ID, c.wave], how="left")
        hit = key["n_thinned"].notna().to_numpy()
        n_kept = key["n_thinned"].to_numpy()
        sup.loc[hit, "support_class"] = np.where(n_kept[hit] > 0, "sparse", "empty")
        sup.loc[hit, "n_respondents"] = n_kept[hit].astype(np.int64)
        syn = synthesize(thinned, frame, sup, run_cfg.with_(seed=_rep_seed(c.seed, rep)))
        syn.attrs = {}
        syn = sabotage(syn, thinned, c, bt.sabotage, _rep_seed(c.seed, rep))
        est = _cell_estimates(thinned, r_x, syn, plan, s, c, run_cfg.m, ratio)
        est.insert(0, "replicate", rep + 1)
        parts.append(est)
        log.info(
            "back-test: replicate %d/%d, %d cells x waves, %d synthetic rows, %.1fs",
            rep + 1,
            repeats,
            len(plan),
            len(syn),
            time.monotonic() - t0,
        )
    out = pd.concat(parts, ignore_index=True)
    dims = s.drop_duplicates(CELL_ID)[[CELL_ID, *c.cell_dims]]
    out = out.merge(dims, on=CELL_ID, how="left")
    if truth is not None and len(truth):
        t = truth[[*c.cell_dims, c.wave, "indicator", "true_value"]].copy()
        for d in c.cell_dims:
            t[d] = t[d].astype(str)
        out = out.merge(t, on=[*c.cell_dims, c.wave, "indicator"], how="left")
    else:
        out["true_value"] = np.nan
    out["sabotage"] = bt.sabotage
    return out[result_columns(c)]


def _rep_seed(seed: int, rep: int) -> int:
    return int(stable_int_hash(("backtest-synth", seed, rep)) & 0x7FFFFFFF)


def result_columns(config: SynthConfig) -> list[str]:
    return [
        "replicate",
        CELL_ID,
        *config.cell_dims,
        config.wave,
        "indicator",
        "measure",
        "n_population",
        "n_full",
        "n_thinned",
        "n_synthetic",
        "m",
        "full_sample_value",
        "full_sample_se",
        "true_value",
        "direct_estimate",
        "direct_se",
        "direct_ci_low",
        "direct_ci_high",
        "augmented_estimate",
        "augmented_se",
        "augmented_df",
        "augmented_ci_low",
        "augmented_ci_high",
        "between_var",
        "sabotage",
    ]


def empty_results(config: SynthConfig) -> pd.DataFrame:
    cols = result_columns(config)
    text = {CELL_ID, *config.cell_dims, "indicator", "measure", "sabotage"}
    return pd.DataFrame({c: pd.Series(dtype="object" if c in text else "float64") for c in cols})


# ----------------------------------------------------------------------- metrics
METRICS: tuple[tuple[str, str, str], ...] = (
    ("augmented_rmse_ratio", "<=", "ss_backtest_max_rmse_ratio"),
    ("augmented_coverage", ">=", "ss_backtest_min_coverage"),
    ("augmented_coverage", "<=", "ss_backtest_max_coverage"),
    ("augmented_abs_bias", "<=", "ss_backtest_max_abs_bias"),
    ("interval_width_ratio", "<=", "ss_backtest_max_width_ratio"),
)


def _cluster_var(x: np.ndarray, y: np.ndarray, ratio: float, n_total: float) -> float:
    """Linearised variance of sum(x_c) / sum(y_c)-type means over C clusters:
    C / (C - 1) sum_c (x_c - ratio y_c)^2 / n_total^2."""
    c = len(x)
    if c < 2 or not np.isfinite(ratio):
        return float("nan")
    return float(c / (c - 1) * np.sum((x - ratio * y) ** 2) / n_total**2)


def summarize(
    results: pd.DataFrame,
    thresholds: Mapping[str, float] | None = None,
    alpha: float = 0.01,
    min_rows: int = 20,
    not_assessable_blocks: bool = False,
) -> pd.DataFrame:
    """The metrics of backtest_summary, computed in Python as models/augmented/backtest_summary.sql
    does (its header says why): errors scaled by the reference's sd per indicator; with a
    full-sample reference its variance taken out (MSE(d) = mean((d - f)^2) + mean(v), MSE(a) >=
    mean((a - f)^2) - mean(v)); each metric judged by its one-sided bound at ``alpha`` / 5 with a
    cluster (cell) linearised standard error; not_assessable below ``min_rows`` cell x wave rows
    or 5 cells."""
    th = dict(thresholds or {})
    d, use_truth = _scaled_errors(results)
    g = d.groupby("cell_id").agg(
        n=("ea", "size"),
        a2=("a2", "sum"),
        d2=("d2", "sum"),
        s_ea=("ea", "sum"),
        s_cov=("cov_a", "sum"),
        s_wa=("w_a", "sum"),
        s_wd=("w_d", "sum"),
    )
    judged, info = _cluster_means(g, d, alpha)
    n_cw = len(d[["cell_id", "wave"]].drop_duplicates()) if "wave" in d.columns else len(d)
    na = n_cw < min_rows or len(g) < 5
    rows = [
        _judged_row(name, op, var, judged, th, na, not_assessable_blocks)
        for name, op, var in METRICS
    ]
    for name, v in info.items():
        rows.append({"metric": name, "direction": None, "value": v, "status": "report"})
    out = pd.DataFrame(rows)
    out["reference"] = "truth" if use_truth else "full_sample"
    return out


def _scaled_errors(results: pd.DataFrame) -> tuple[pd.DataFrame, bool]:
    """The rows with both estimates and a reference (the truth where every row has it, else the
    full-sample value and its SE), errors, coverage and widths scaled by the reference's sd per
    indicator; (rows, whether the truth is the reference)."""
    d = results.dropna(subset=["direct_estimate", "augmented_estimate"]).copy()
    use_truth = len(d) > 0 and bool(d["true_value"].notna().all())
    ref = "true_value" if use_truth else "full_sample_value"
    d = d[d[ref].notna()]
    sd = d.groupby("indicator")[ref].transform("std")
    d = d[sd > 0]
    sd = sd[sd > 0]
    ref_se = 0.0 if use_truth else d["full_sample_se"].fillna(0.0)
    d["ea"] = (d["augmented_estimate"] - d[ref]) / sd
    d["ed"] = (d["direct_estimate"] - d[ref]) / sd
    d["v"] = (ref_se / sd) ** 2
    ha = np.sqrt(
        ((d["augmented_ci_high"] - d["augmented_ci_low"]).fillna(0) / 2) ** 2 + (Z975 * ref_se) ** 2
    )
    hd = np.sqrt(((d["direct_ci_high"] - d["direct_ci_low"]) / 2) ** 2 + (Z975 * ref_se) ** 2)
    d["cov_a"] = ((d["augmented_estimate"] - d[ref]).abs() <= ha + 1e-12).astype(float)
    d["cov_d"] = ((d["direct_estimate"] - d[ref]).abs() <= hd.fillna(-1.0) + 1e-12).astype(float)
    d["w_a"] = (d["augmented_ci_high"] - d["augmented_ci_low"]) / sd
    d["w_d"] = ((d["direct_ci_high"] - d["direct_ci_low"]) / sd).fillna(0.0)
    d["a2"], d["d2"] = d["ea"] ** 2 - d["v"], d["ed"] ** 2 + d["v"]
    return d, use_truth


def _cluster_means(g: pd.DataFrame, d: pd.DataFrame, alpha: float) -> tuple[dict, dict]:
    """Each judged metric's value and its one-sided bound at ``alpha`` / 5 (cell-clustered
    linearised SEs), and the report-only figures."""
    from scipy import stats

    n = float(g["n"].sum())
    nan = float("nan")
    mean = (lambda col: float(g[col].sum() / n)) if n else (lambda col: nan)
    mse_a, mse_d, bias, cov = mean("a2"), mean("d2"), mean("s_ea"), mean("s_cov")
    wa, wd = mean("s_wa"), mean("s_wd")
    r = float(np.sqrt(max(mse_a, 0.0) / mse_d)) if n and mse_d > 0 else nan
    r2 = mse_a / mse_d if n and mse_d > 0 else nan
    se_r = (
        float(
            np.sqrt(_cluster_var(g["a2"].to_numpy(), g["d2"].to_numpy(), r2, n * mse_d)) / (2 * r)
        )
        if n and r > 0
        else 0.0
    )
    se_cov = float(np.sqrt(_cluster_var(g["s_cov"].to_numpy(), g["n"].to_numpy(), cov, n)))
    se_b = float(np.sqrt(_cluster_var(g["s_ea"].to_numpy(), g["n"].to_numpy(), bias, n)))
    wr = wa / wd if n and wd > 0 else nan
    se_wr = float(np.sqrt(_cluster_var(g["s_wa"].to_numpy(), g["s_wd"].to_numpy(), wr, n * wd)))
    z = float(stats.norm.ppf(1 - alpha / 5))
    judged = {
        ("augmented_rmse_ratio", "<="): (r, r - z * se_r),
        ("augmented_coverage", ">="): (cov, cov + z * se_cov),
        ("augmented_coverage", "<="): (cov, cov - z * se_cov),
        ("augmented_abs_bias", "<="): (abs(bias), abs(bias) - z * se_b),
        ("interval_width_ratio", "<="): (wr, wr - z * se_wr),
    }
    info = {
        "n_rows": n,
        "n_cells": float(len(g)),
        "augmented_rmse": float(np.sqrt(max(mse_a, 0.0))) if n else nan,
        "direct_rmse": float(np.sqrt(mse_d)) if n else nan,
        "augmented_rmse_vs_reference": float(np.sqrt(np.mean(d["ea"] ** 2))) if n else nan,
        "direct_rmse_vs_reference": float(np.sqrt(np.mean(d["ed"] ** 2))) if n else nan,
        "direct_coverage": float(d["cov_d"].mean()) if n else nan,
        "augmented_mean_width": wa,
        "direct_mean_width": wd,
    }
    return judged, info


def _judged_row(name, op, var, judged, th, na: bool, not_assessable_blocks: bool) -> dict:
    """One metric's row: report-only without a threshold, not_assessable on too few rows,
    else pass or fail by its bound."""
    v, bound = judged[(name, op)]
    t = th.get(var)
    if t is None:
        status = "report"
    elif na:
        status = "not_assessable"
    elif not (np.isfinite(v) and np.isfinite(bound)):
        status = "fail"
    else:
        status = "fail" if (bound > t if op == "<=" else bound < t) else "pass"
    blocks = status == "fail" or (status == "not_assessable" and not_assessable_blocks)
    return {
        "metric": name,
        "direction": op,
        "value": v,
        "bound": bound,
        "threshold": t,
        "threshold_var": var,
        "status": status,
        "blocks_release": blocks,
        "passed": None if status == "report" else not blocks,
    }


# ----------------------------------------------------------------------- dbt glue
def read_relation_var(value: str | None, session: Any = None) -> pd.DataFrame | None:
    """A relation var read from Python: ``file:<path>`` (Parquet or CSV) on any engine, or
    ``<schema>.<table>`` through the session (dbt-duckdb, Spark)."""
    if value is None or str(value).strip() == "":
        return None
    value = str(value)
    if value.startswith("file:"):
        path = value[len("file:") :]
        return pd.read_csv(path) if path.lower().endswith(".csv") else pd.read_parquet(path)
    if value.startswith(("ref:", "source:")):
        raise BacktestConfigError(
            f"ss_backtest_truth = '{value}': a Python model cannot read ref:/source: vars; "
            "give a file:<path> or a <schema>.<table> name"
        )
    if session is None:
        raise BacktestConfigError(f"ss_backtest_truth = '{value}' needs a database session to read")
    for method in ("sql",):
        fn = getattr(session, method, None)
        if callable(fn):
            rel = fn(f"select * from {value}")
            for conv in ("df", "toPandas", "to_pandas"):
                f = getattr(rel, conv, None)
                if callable(f):
                    return f()
    raise BacktestConfigError(f"cannot read ss_backtest_truth = '{value}' on this engine")


def backtest_model(
    v: Mapping[str, Any],
    responses: Any,
    frame: Any,
    support: Any,
    weights: Any,
    session: Any = None,
) -> pd.DataFrame:
    """Body of the backtest_results dbt Python model."""
    from surveysynth.dbt_glue import _inputs, synth_config

    r, f, s = _inputs(dict(v), responses, frame, support, weights)
    cfg = synth_config(dict(v))
    bt = BacktestConfig.from_vars(v)
    truth = read_relation_var(v.get("ss_backtest_truth"), session)
    if truth is not None:
        wave_col = v.get("ss_wave") or "wave"
        if wave_col != "wave" and wave_col in truth.columns:
            truth = truth.rename(columns={wave_col: "wave"})
        missing = [
            col
            for col in [*cfg.cell_dims, "wave", "indicator", "true_value"]
            if col not in truth.columns
        ]
        if missing:
            raise BacktestConfigError(
                f"ss_backtest_truth is missing column(s) {missing}: it needs the cell dimensions, "
                "the wave, indicator and true_value (or set ss_backtest_truth: null)"
            )
    out = run_backtest(r, f, s, cfg, bt, truth)
    out.attrs = {}
    return out
