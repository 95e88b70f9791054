"""SDV whole-table backends (``sdv_gaussian_copula``, ``sdv_ctgan``, ``sdv_tvae``): the
baselines the hierarchical synthesizer is measured against.

How they produce rows for the requested cells: the synthesizer is fitted once on the
respondents (cell dimensions, wave and outcomes; SDV 2.x single-table API, imported
lazily), then for each implicate a pool of rows is sampled and each planned record takes
an outcome vector from a pool row of its own cell x wave, backing off to coarser matches
(cell pooled over waves, then dropping the last dimension, ...) where the pool holds none.
Business rules and ranges are then enforced exactly as for the hierarchical backend.

Limitations (by design of these models, stated in outputs' method label):
* design weights are ignored (the synthesizers learn the unweighted respondent
  distribution, so over-sampled cells are over-represented);
* auxiliaries are not conditioned on (records keep their frame unit's register values,
  but outcomes do not depend on them);
* empty and very sparse cells are served by back-off, not by partial pooling;
* implicates are draws from one fitted model (not proper multiple synthesis: the
  between-implicate spread carries no parameter uncertainty).
"""

from __future__ import annotations

import logging
import time
import warnings
from typing import Any

import numpy as np
import pandas as pd

from surveysynth.contract.config import SynthConfig, SynthConfigError
from surveysynth.contract.inputs import CELL_ID, Inputs, record_columns
from surveysynth.contract.rules import enforce
from surveysynth.seeding import cell_rng, stable_int_hash
from surveysynth.synthesis.plan import IMPLICATE

log = logging.getLogger("surveysynth")

TABLE = "responses"


def _synth_class(backend: str):
    try:
        from sdv.single_table import (
            CTGANSynthesizer,
            GaussianCopulaSynthesizer,
            TVAESynthesizer,
        )
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise SynthConfigError(
            f"ss_synth_backend '{backend}' needs the sdv package (pip install 'surveysynth[baselines]')"
        ) from exc
    return {
        "sdv_gaussian_copula": GaussianCopulaSynthesizer,
        "sdv_ctgan": CTGANSynthesizer,
        "sdv_tvae": TVAESynthesizer,
    }[backend]


def training_table(responses: pd.DataFrame, config: SynthConfig) -> pd.DataFrame:
    """Dims and wave as text, discrete outcomes as text, numeric outcomes as float."""
    c = config
    out = pd.DataFrame({d: responses[d].astype(str).to_numpy() for d in c.cell_dims})
    out[c.wave] = responses[c.wave].map(str).to_numpy()
    for o in c.outcomes:
        s = responses[o.name]
        if o.is_numeric:
            out[o.name] = pd.to_numeric(s, errors="coerce").astype(float).to_numpy()
        elif o.type == "binary":
            x = pd.to_numeric(s, errors="coerce")
            out[o.name] = np.where(x.isna(), None, x.fillna(0).astype(np.int64).astype(str)).astype(
                object
            )
        else:
            out[o.name] = s.astype(object).where(s.notna(), None).to_numpy()
    return out


def metadata_dict(config: SynthConfig) -> dict[str, Any]:
    cols: dict[str, dict[str, str]] = {d: {"sdtype": "categorical"} for d in config.cell_dims}
    cols[config.wave] = {"sdtype": "categorical"}
    for o in config.outcomes:
        cols[o.name] = {"sdtype": "numerical"} if o.is_numeric else {"sdtype": "categorical"}
    return {"tables": {TABLE: {"columns": cols}}, "METADATA_SPEC_VERSION": "V1"}


def fit_sdv(responses: pd.DataFrame, config: SynthConfig, options: dict[str, Any] | None = None):
    """Fit the configured SDV synthesizer on the respondents (seeded)."""
    from sdv.metadata import Metadata

    opts = dict(config.options if options is None else options)
    cls = _synth_class(config.backend)
    md = Metadata.load_from_dict(metadata_dict(config))
    if config.backend in ("sdv_ctgan", "sdv_tvae"):
        opts.setdefault("epochs", 50)
        opts.setdefault("enable_gpu", False)
        try:
            import torch

            torch.manual_seed(config.seed % (2**63))
        except ImportError:  # pragma: no cover
            pass
    np.random.seed(config.seed % (2**32))
    synth = cls(md, **opts)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        synth.fit({TABLE: training_table(responses, config)})
    return synth


def sample_sdv(synth, n: int, seed: int) -> pd.DataFrame:
    """n rows from a fitted synthesizer, reproducibly (resets SDV's transformer and model
    random states)."""
    synth.reset_sampling()
    if hasattr(synth, "_set_random_state"):
        synth._set_random_state(int(seed % (2**31)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = synth.sample(n)
    return out[TABLE] if isinstance(out, dict) else out


def _backoff_keys(df: pd.DataFrame, config: SynthConfig) -> list[np.ndarray]:
    dims = list(config.cell_dims)
    levels = [dims + [config.wave]] + [dims[:k] for k in range(len(dims), -1, -1)]
    keys = []
    for cols in levels:
        if not cols:
            keys.append(np.full(len(df), "", dtype=object))
            continue
        k = df[cols[0]].astype(str)
        for col in cols[1:]:
            k = k + "\x1f" + df[col].astype(str)
        keys.append(k.to_numpy(dtype=object))
    return keys


def synthesize_sdv(inputs: Inputs, config: SynthConfig, plan: pd.DataFrame, run_id: str):
    """Synthetic rows for ``plan`` (records x implicates) from an SDV backend."""
    c = config
    t0 = time.monotonic()
    synth = fit_sdv(inputs.responses, c)
    timings = {"fit_s": time.monotonic() - t0}
    t1 = time.monotonic()
    plan = plan.sort_values([CELL_ID, c.wave, IMPLICATE, c.unit_id], kind="mergesort").reset_index(
        drop=True
    )
    parts = []
    used = np.zeros(len(_backoff_keys(plan.head(1), c)), dtype=np.int64)
    for imp, pl in plan.groupby(IMPLICATE, sort=True):
        n_need = len(pl)
        pool = sample_sdv(synth, max(4 * n_need, 20000), stable_int_hash((c.seed, "sdv", int(imp))))
        pool_keys = _backoff_keys(pool, c)
        plan_keys = _backoff_keys(pl, c)
        index = [
            pd.Series(np.arange(len(pool))).groupby(k).apply(np.asarray).to_dict()
            for k in pool_keys
        ]
        pick = np.empty(n_need, dtype=np.int64)
        grp = pl.groupby([CELL_ID, c.wave], sort=True).indices
        for (cell, wave), rows in grp.items():
            rng = cell_rng(c.seed, cell, wave, int(imp))
            for lev, idx in enumerate(index):
                cand = idx.get(plan_keys[lev][rows[0]])
                if cand is not None and len(cand):
                    pick[rows] = cand[rng.integers(0, len(cand), len(rows))]
                    used[lev] += len(rows)
                    break
        got = pool.iloc[pick].reset_index(drop=True)
        part = pl.reset_index(drop=True).copy()
        for o in c.outcomes:
            v = got[o.name]
            if o.type == "binary":
                v = pd.to_numeric(v, errors="coerce")
            part[o.name] = v.to_numpy()
        parts.append(part)
    out = pd.concat(parts, ignore_index=True)
    for o in c.outcomes:
        if o.type in ("categorical", "ordinal"):
            out[o.name] = out[o.name].astype(object).where(out[o.name].notna(), None)
    out["is_synthetic"] = True
    out["synth_run_id"] = run_id
    out["synth_method"] = c.backend
    enforce(out, c.rules, c.outcomes)
    log.info(
        "sdv backend %s: rows by back-off level (cell x wave, cell, coarser...): %s",
        c.backend,
        used.tolist(),
    )
    timings["sample_s"] = time.monotonic() - t1
    cols = record_columns(c.unit_id, c.wave, c.cell_dims, c.outcome_names, c.auxiliaries)
    for a in c.auxiliaries:
        if a not in out.columns:
            out[a] = np.nan
    return out[cols], timings
