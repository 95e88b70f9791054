"""SAMPLE step: the per-cell pure function, the batched pandas path and the plan of
records to generate.

:func:`sample_cell` takes one cell x wave x implicate group (its rows: the units to
generate, with the cell's parameter columns attached and constant within the group) and
returns synthetic rows. It is what Spark runs::

    sdf.groupBy("cell_id", wave, "implicate").applyInPandas(make_cell_sampler(spec), schema)

:func:`sample_batched` produces the same rows for many groups at once: it draws each
group's random numbers from the group's own stream (same calls, same order as
:func:`sample_cell`) and then applies the same elementwise transforms to all rows. Nothing
in the transforms mixes rows (no BLAS, no reductions), so both paths are bit-identical.

Per group, with stream Generator(PCG64(SeedSequence([seed, h(cell), h(wave), implicate]))):
  1. eps ~ N(0, I_K): parameter draw theta* = posterior mean + posterior sd * eps
     (proper multiple synthesis: each implicate has its own cell parameters);
  2. Z ~ N(0, I) (n x d), correlated by the pooled copula, U = Phi(Z L');
  3. V ~ U(0,1) (n x outcomes) for item nonresponse.
Each outcome is its marginal's quantile at U: categories by the cell's cumulative
probabilities, numeric values as a point mass at the minimum (share p0*) or the cell's
location + auxiliary slopes + scale * pooled residual quantile, back on the data scale.
Business rules and ranges are then enforced (rows of a rule's condition take the rule's
value; the free model was fitted on rows where no rule fires).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import numpy as np
import pandas as pd
from scipy.special import expit

from surveysynth.contract.config import SynthConfig
from surveysynth.contract.inputs import CELL_ID, Inputs, SynthInputError, take_rows
from surveysynth.contract.rules import enforce
from surveysynth.seeding import cell_rng, key_str, stable_int_hash, unit_keys
from surveysynth.synthesis import copula
from surveysynth.synthesis.fit import (
    SamplerSpec,
    SynthModel,
    aux_matrix,
    cumulative_probs,
    from_link,
)

log = logging.getLogger("surveysynth")

IMPLICATE = "implicate"


# ----------------------------------------------------------------------- draws + transforms
def draw_group(spec: SamplerSpec, rng: np.random.Generator, n: int):
    """The random numbers of one group, always in this order."""
    eps = rng.standard_normal(len(spec.params))
    z = rng.standard_normal((n, len(spec.outcomes)))
    v = rng.random((n, len(spec.outcomes)))
    return eps, z, v


def generate(
    spec: SamplerSpec,
    theta: np.ndarray,
    gidx: np.ndarray,
    z: np.ndarray,
    v: np.ndarray,
    X: np.ndarray,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Outcome values (and missing masks) for rows whose group's drawn parameters are
    ``theta[gidx]``. Elementwise only."""
    u = copula.uniforms(copula.correlate(z, spec.chol))
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    n = len(gidx)
    for om in spec.models:
        o = om.spec
        uj = u[:, om.latent]
        if om.miss is not None and spec.item_missing:
            miss = v[:, om.latent] < expit(theta[:, om.miss])[gidx]
        else:
            miss = np.zeros(n, dtype=bool)
        if o.is_discrete:
            F = cumulative_probs(theta[:, list(om.cats)])
            code = np.zeros(n, dtype=np.int64)
            for j in range(F.shape[1]):
                code = code + (uj > F[gidx, j])
            out[o.name] = (code, miss)
        else:
            p0 = expit(theta[:, om.atmin])[gidx] if om.atmin is not None else np.zeros(n)
            at_min = uj < p0
            vv = np.clip((uj - p0) / (1.0 - p0), 0.0, 1.0)
            r = copula.grid_quantile(vv, om.grid_p, om.grid_q)
            lin = theta[:, om.loc][gidx]
            for k in range(X.shape[1]):
                lin = lin + om.slope[k] * X[:, k]
            zz = lin + np.exp(theta[:, om.logscale])[gidx] * r
            y = from_link(zz, o)
            lo = o.lower
            if o.type == "count":
                y = np.round(y)
                if lo is not None:
                    y = np.maximum(y, lo + 1.0 if om.atmin is not None else lo)
            if lo is not None:
                y = np.where(at_min, lo, y)
            out[o.name] = (y, miss)
    return out


def _assemble(spec: SamplerSpec, rows: pd.DataFrame, values: dict) -> pd.DataFrame:
    """Output rows in the final column order (built without copies or reordering: at
    millions of rows pandas' block consolidation and column reindexing dominate)."""
    n = len(rows)
    cols: dict[str, object] = {}
    for c in (spec.unit_id, spec.wave, *spec.cell_dims, CELL_ID):
        cols[c] = rows[c].to_numpy()
    for om in spec.models:
        o = om.spec
        val, miss = values[o.name]
        if o.type in ("categorical", "ordinal"):
            arr = np.asarray(o.category_levels, dtype=object)[val]
            arr[miss] = None
            cols[o.name] = arr
        elif o.type == "binary" or o.type == "count":
            cols[o.name] = pd.arrays.IntegerArray(np.asarray(val, dtype=np.int64), miss.copy())
        else:
            cols[o.name] = np.where(miss, np.nan, val)
    for a in spec.auxiliaries:
        cols[a] = (
            pd.to_numeric(rows[a], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
            if a in rows.columns
            else np.full(n, np.nan)
        )
    cols["synth_weight"] = rows["synth_weight"].to_numpy(dtype=float)
    cols["is_synthetic"] = np.ones(n, dtype=bool)
    cols[IMPLICATE] = rows[IMPLICATE].to_numpy(dtype=np.int64)
    cols["synth_run_id"] = np.full(n, spec.run_id, dtype=object)
    cols["synth_method"] = np.full(n, spec.method, dtype=object)
    cols["support_class"] = rows["support_class"].to_numpy(dtype=object)
    df = pd.DataFrame(cols, copy=False)
    enforce(df, spec.rules, spec.outcomes)
    if list(df.columns) != spec.output_columns:
        df = df[spec.output_columns]
    return df


def _param_matrix(rows: pd.DataFrame, spec: SamplerSpec) -> tuple[np.ndarray, np.ndarray]:
    means = rows[[p.mean_col for p in spec.params]].to_numpy(dtype=float)
    sds = rows[[p.sd_col for p in spec.params]].to_numpy(dtype=float)
    return means, sds


# ----------------------------------------------------------------------- the per-cell function
def sample_cell(pdf: pd.DataFrame, spec: SamplerSpec) -> pd.DataFrame:
    """Synthetic rows for one cell x wave x implicate group. Pure: output depends only on
    the group's rows (in any order) and ``spec``."""
    if len(pdf) == 0:
        return empty_output(spec)
    for k in (CELL_ID, spec.wave, IMPLICATE):
        if pdf[k].nunique(dropna=False) != 1:
            raise ValueError(f"sample_cell got a group with several values of '{k}'")
    pdf = pdf.sort_values(spec.unit_id, kind="mergesort").reset_index(drop=True)
    cell = pdf[CELL_ID].iat[0]
    wave = pdf[spec.wave].iat[0]
    imp = int(pdf[IMPLICATE].iat[0])
    means, sds = _param_matrix(pdf.iloc[:1], spec)
    rng = cell_rng(spec.seed, cell, wave, imp)
    eps, z, v = draw_group(spec, rng, len(pdf))
    theta = means + sds * eps[None, :]
    gidx = np.zeros(len(pdf), dtype=np.int64)
    values = generate(spec, theta, gidx, z, v, aux_matrix(pdf, spec))
    return _assemble(spec, pdf, values)


def make_cell_sampler(spec: SamplerSpec) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """The function to hand to ``applyInPandas`` (a closure over the small, picklable spec)."""

    def _fn(pdf: pd.DataFrame) -> pd.DataFrame:
        return sample_cell(pdf, spec)

    return _fn


def empty_output(spec: SamplerSpec) -> pd.DataFrame:
    dtypes: dict[str, str] = {spec.unit_id: "object", spec.wave: "int64", CELL_ID: "object"}
    for d in spec.cell_dims:
        dtypes[d] = "object"
    for o in spec.outcomes:
        dtypes[o.name] = {"continuous": "float64", "count": "Int64", "binary": "Int64"}.get(
            o.type, "object"
        )
    for a in spec.auxiliaries:
        dtypes[a] = "float64"
    dtypes.update(
        synth_weight="float64",
        is_synthetic="bool",
        implicate="int64",
        synth_run_id="object",
        synth_method="object",
        support_class="object",
    )
    return pd.DataFrame({c: pd.Series(dtype=dtypes[c]) for c in spec.output_columns})


# ----------------------------------------------------------------------- batched path
def sample_batched(
    plan: pd.DataFrame, model: SynthModel, progress_seconds: float = 5.0
) -> pd.DataFrame:
    """All groups of ``plan`` at once; identical to :func:`sample_cell` per group."""
    spec = model.spec
    if len(plan) == 0:
        return empty_output(spec)
    t0 = last = time.monotonic()
    order = [CELL_ID, spec.wave, IMPLICATE, spec.unit_id]
    if not is_sorted(plan, order):
        plan = plan.sort_values(order, kind="mergesort")
    if not isinstance(plan.index, pd.RangeIndex) or plan.index.start != 0 or plan.index.step != 1:
        plan = plan.set_axis(pd.RangeIndex(len(plan)), axis=0, copy=False)
    keys = plan[[CELL_ID, spec.wave, IMPLICATE]]
    bound = np.zeros(len(plan), dtype=bool)
    bound[0] = True
    for k in keys.columns:
        a = keys[k].to_numpy()
        bound[1:] |= a[1:] != a[:-1]
    starts = np.flatnonzero(bound)
    ends = np.append(starts[1:], len(plan))
    n_groups = len(starts)
    gidx = np.repeat(np.arange(n_groups), ends - starts)

    ptab = model.params
    pkey = pd.MultiIndex.from_frame(ptab[[CELL_ID, spec.wave]])
    grows = pkey.get_indexer(pd.MultiIndex.from_frame(plan.loc[starts, [CELL_ID, spec.wave]]))
    if (grows < 0).any():
        bad = plan.loc[starts[np.flatnonzero(grows < 0)[0]], [CELL_ID, spec.wave]].tolist()
        raise SynthInputError(f"no fitted parameters for cell x wave {bad}")
    means, sds = _param_matrix(ptab, spec)
    means, sds = means[grows], sds[grows]

    K, d = len(spec.params), len(spec.outcomes)
    eps = np.empty((n_groups, K))
    z = np.empty((len(plan), d))
    v = np.empty((len(plan), d))
    cells = plan[CELL_ID].to_numpy()
    waves = plan[spec.wave].to_numpy()
    imps = plan[IMPLICATE].to_numpy()
    for i, (s, e) in enumerate(zip(starts, ends)):
        rng = cell_rng(spec.seed, cells[s], waves[s], int(imps[s]))
        eps[i], z[s:e], v[s:e] = draw_group(spec, rng, e - s)
        now = time.monotonic()
        if now - last > progress_seconds:
            log.info("synth sample: %d/%d groups drawn, %.1fs elapsed", i + 1, n_groups, now - t0)
            last = now
    theta = means + sds * eps
    values = generate(spec, theta, gidx, z, v, aux_matrix(plan, spec))
    out = _assemble(spec, plan, values)
    log.info("synth sample: %d rows in %d groups, %.1fs", len(out), n_groups, time.monotonic() - t0)
    return out


def attach_params(plan: pd.DataFrame, model: SynthModel) -> pd.DataFrame:
    """The plan with each row's cell x wave parameter columns (the Spark input)."""
    spec = model.spec
    pcols = [c for p in spec.params for c in (p.mean_col, p.sd_col)]
    return plan.merge(
        model.params[[CELL_ID, spec.wave, *pcols]], on=[CELL_ID, spec.wave], how="left"
    )


# ----------------------------------------------------------------------- plan
def synthetic_ids(cell_ids: pd.Series, waves: pd.Series, k: np.ndarray) -> np.ndarray:
    """Deterministic ids of records that stand for no frame unit: syn-<cell hash>-<wave>-<k>."""
    cw = pd.DataFrame({"c": cell_ids.to_numpy(), "w": waves.to_numpy()})
    grp = cw.groupby(["c", "w"], sort=False)
    inv = grp.ngroup().to_numpy()
    firsts = cw.iloc[grp.head(1).index]
    prefix = [
        f"syn-{stable_int_hash(c):016x}"[:16] + f"-{key_str(w)}-"
        for c, w in zip(firsts["c"], firsts["w"])
    ]
    order = grp.ngroup().iloc[grp.head(1).index].to_numpy()
    pre = np.empty(len(prefix), dtype=object)
    pre[order] = prefix
    return np.array([f"{p}{int(j):07d}" for p, j in zip(pre[inv], k)], dtype=object)


def build_plan(inputs: Inputs, config: SynthConfig) -> pd.DataFrame:
    """Which records to generate: one row per record (before implicates), with unit id,
    wave, dims, cell id, auxiliaries, synth_weight and support class."""
    c = config
    s, r, f = inputs.support, inputs.responses, inputs.frame
    dims = list(c.cell_dims)
    aux = [a for a in c.auxiliaries]
    if c.mode == "replica":
        # responses are in content-hash order; a stable sort by support row keeps that
        # order within each cell x wave, so record k of a cell is reproducible and says
        # nothing about the real unit ids
        order = np.argsort(inputs.cell_wave, kind="stable")
        g = inputs.cell_wave[order]
        rr = take_rows(r, order)
        rows = rr[[c.unit_id, c.wave, CELL_ID, *dims, *[a for a in aux if a in rr.columns]]].copy()
        if c.weight:
            rows["synth_weight"] = rr[c.weight].to_numpy(dtype=float)
        else:
            npop = pd.to_numeric(s["n_population"], errors="coerce").to_numpy(dtype=float)
            nres = s["n_respondents"].to_numpy(dtype=float)
            with np.errstate(divide="ignore", invalid="ignore"):
                rows["synth_weight"] = (npop / nres)[g]  # g only points at cells with n > 0
        rows["support_class"] = s["support_class"].to_numpy(dtype=object)[g]
        starts = np.ones(len(g), dtype=bool)
        starts[1:] = g[1:] != g[:-1]
        first = np.maximum.accumulate(np.where(starts, np.arange(len(g)), 0))
        k = np.arange(len(g)) - first
        rows[c.unit_id] = synthetic_ids(rows[CELL_ID], rows[c.wave], k)
        return _finish(rows, c, aux)

    targets = s.loc[s["support_class"].isin(c.augment_classes), [CELL_ID, c.wave, "support_class"]]
    if f is not None:
        fu = f[[c.unit_id, CELL_ID, *dims, *[a for a in aux if a in f.columns]]]
        rows = fu.merge(targets, on=CELL_ID, how="inner")
        resp = r[[c.unit_id, c.wave]].assign(_resp=True)
        rows = rows.merge(resp, on=[c.unit_id, c.wave], how="left")
        if c.augment_units == "nonrespondents":
            # the respondents represent themselves; records stand in for the other units
            rows = rows[rows["_resp"].isna()]
        rows = rows.drop(columns="_resp")
        rows = rows.assign(_key=unit_keys(c.seed, rows[c.unit_id], rows[c.wave]))
        rows = rows.sort_values([CELL_ID, c.wave, "_key"], kind="mergesort")
        rank = rows.groupby([CELL_ID, c.wave], sort=False).cumcount().to_numpy()
        n_non = rows.groupby([CELL_ID, c.wave], sort=False)[c.unit_id].transform("size").to_numpy()
        keep = rank < c.max_records_per_cell
        kept = np.minimum(n_non, c.max_records_per_cell)
        rows = rows.assign(synth_weight=n_non / kept)[keep].drop(columns="_key")
        rows = rows.sort_values([CELL_ID, c.wave, c.unit_id], kind="mergesort")
        return _finish(rows, c, aux)

    # totals only: records with synthetic ids, no auxiliaries
    t = s.loc[s["support_class"].isin(c.augment_classes)].copy()
    npop = pd.to_numeric(t["n_population"], errors="coerce")
    if npop.isna().any():
        bad = t.loc[npop.isna(), CELL_ID].iloc[0]
        raise SynthInputError(
            f"frame is None and support.n_population is null for cell '{bad}'; "
            "set ss_population_totals (with ss_population_count) or give a frame"
        )
    n_resp = (
        t["n_respondents"].to_numpy(dtype=float) if c.augment_units == "nonrespondents" else 0.0
    )
    n_non = np.maximum(npop.to_numpy(dtype=float) - n_resp, 0.0)
    n_rec = np.minimum(np.ceil(n_non), c.max_records_per_cell).astype(np.int64)
    t = t.assign(_n_non=n_non, _n_rec=n_rec)[n_rec > 0]
    rep = t.loc[t.index.repeat(t["_n_rec"])].reset_index(drop=True)
    k = rep.groupby([CELL_ID, c.wave], sort=False).cumcount().to_numpy()
    rep[c.unit_id] = synthetic_ids(rep[CELL_ID], rep[c.wave], k)
    rep["synth_weight"] = rep["_n_non"] / rep["_n_rec"]
    return _finish(rep, c, aux)


def _finish(rows: pd.DataFrame, c: SynthConfig, aux: list[str]) -> pd.DataFrame:
    for a in aux:
        if a not in rows.columns:
            rows[a] = np.nan
        rows[a] = pd.to_numeric(rows[a], errors="coerce").astype(float)
    cols = [c.unit_id, c.wave, *c.cell_dims, CELL_ID, *aux, "synth_weight", "support_class"]
    return pd.DataFrame({k: rows[k].to_numpy() for k in cols}, copy=False)


def is_sorted(df: pd.DataFrame, keys: list[str]) -> bool:
    """Whether rows are in lexicographic order of ``keys`` (cheaper than sorting)."""
    n = len(df)
    if n < 2:
        return True
    lt = np.zeros(n - 1, dtype=bool)
    eq = np.ones(n - 1, dtype=bool)
    for k in keys:
        a = df[k].to_numpy()
        lt |= eq & (a[:-1] < a[1:])
        eq &= a[:-1] == a[1:]
    return bool((lt | eq).all())


def with_implicates(plan: pd.DataFrame, m: int, wave: str) -> pd.DataFrame:
    """The plan repeated for implicates 1..m (same records, own random streams), in
    (cell, wave, implicate, unit) order when the plan is in (cell, wave, unit) order."""
    n = len(plan)
    if n == 0:
        return plan.assign(**{IMPLICATE: np.zeros(0, dtype=np.int64)})
    cell = plan[CELL_ID].to_numpy()
    wv = plan[wave].to_numpy()
    start = np.ones(n, dtype=bool)
    start[1:] = (cell[1:] != cell[:-1]) | (wv[1:] != wv[:-1])
    starts = np.flatnonzero(start)
    lens = np.diff(np.append(starts, n))
    block = lens * m
    pos = np.arange(n * m) - np.repeat(np.cumsum(block) - block, block)
    L = np.repeat(lens, block)
    idx = np.repeat(starts, block) + pos % L
    return take_rows(plan, idx, **{IMPLICATE: (pos // L + 1).astype(np.int64)})
