"""Sparse-cell synthesizer: public entry points.

    config = SynthConfig.from_vars(dbt_vars)
    synthetic = synthesize(responses, frame, support, config)   # pandas in, pandas out
    info = manifest(responses, frame, support, config, output=synthetic)

Method (backend ``hierarchical``; docs/synthesizer.md, and the pipeline's modules
``structure``, ``fit``, ``plan``, ``sample``): outcomes are synthesized one after another, each
from a model conditional on the cell (its direct estimate shrunk toward main effects and two-way
interactions of the cell dimensions and wave, in proportion to its sampling variance), the
unit's register auxiliaries and the answers drawn before it: continuation-ratio logits for
discrete answers, spikes and missingness, and a location-scale model with the data's own
residual distribution for numeric ones. Structure found in the data (exact relations, spikes,
structural zeros and bounds, skip cut points) holds by construction, as do the business rules.
Records are generated for each sparse/empty cell's non-responding frame units; each of the m
implicates draws the slopes, the prior means and the cell effects from their posterior.

Modes: ``augment`` generates records for the non-responding frame units of sparse and
empty cells x waves (capped per cell by a seeded sample without replacement;
``synth_weight`` = non-responding units / records). ``replica`` generates a fully
synthetic copy of the survey: as many rows per cell x wave as it has respondents, with
their design weights and register auxiliaries, under synthetic ids.

The FIT step is global and vectorised; the SAMPLE step is a pure per-cell function, so
:func:`synthesize_spark` runs it under ``groupBy(...).applyInPandas`` with identical
results.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import time
from typing import Any

import numpy as np
import pandas as pd

from surveysynth.contract.config import SynthConfig, SynthConfigError
from surveysynth.contract.inputs import (
    CELL_ID,
    Inputs,
    SynthInputError,
    make_cell_id,
    prepare_inputs,
    support_table,
)
from surveysynth.seeding import content_hash, package_versions
from surveysynth.synthesis.fit import SynthModel, fit
from surveysynth.synthesis.plan import IMPLICATE, build_plan, with_implicates
from surveysynth.synthesis.sample import (
    attach_params,
    empty_output,
    make_cell_sampler,
    sample_batched,
    sample_cell,
)

__all__ = [
    "SynthConfig",
    "SynthConfigError",
    "SynthInputError",
    "SynthModel",
    "fit_model",
    "make_cell_id",
    "make_cell_sampler",
    "manifest",
    "plan_records",
    "run_id",
    "sample_cell",
    "spark_input",
    "spark_schema",
    "support_table",
    "synthesize",
    "synthesize_spark",
]

log = logging.getLogger("surveysynth")
MANIFEST_ATTR = "surveysynth_manifest"


def run_id(
    config: SynthConfig, responses: pd.DataFrame, frame: pd.DataFrame | None, support: pd.DataFrame
) -> str:
    """Deterministic run id: sha256 of the seed, the canonical config and the inputs'
    content hashes (order-insensitive)."""
    return _run_id(config, input_hashes(responses, frame, support))


def input_hashes(
    responses: pd.DataFrame, frame: pd.DataFrame | None, support: pd.DataFrame
) -> dict[str, str]:
    return {
        "responses": content_hash(responses),
        "frame": content_hash(frame),
        "support": content_hash(support),
    }


def _run_id(config: SynthConfig, hashes: dict[str, str]) -> str:
    payload = json.dumps(
        {"seed": config.seed, "config": config.to_json(), **hashes}, sort_keys=True
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _method(config: SynthConfig) -> str:
    return config.backend


def fit_model(
    responses: pd.DataFrame,
    frame: pd.DataFrame | None,
    support: pd.DataFrame,
    config: SynthConfig,
    inputs: Inputs | None = None,
    rid: str | None = None,
) -> SynthModel:
    """FIT step only (hierarchical backend): the cell x wave parameter table and texture."""
    inputs = inputs or prepare_inputs(responses, frame, support, config)
    rid = rid or _run_id(config, inputs.hashes)
    return fit(inputs, config, rid, _method(config))


def plan_records(
    responses: pd.DataFrame,
    frame: pd.DataFrame | None,
    support: pd.DataFrame,
    config: SynthConfig,
    inputs: Inputs | None = None,
) -> pd.DataFrame:
    """The records to generate, one row per record x implicate (no outcomes yet)."""
    inputs = inputs or prepare_inputs(responses, frame, support, config)
    return with_implicates(build_plan(inputs, config), config.m, config.wave)


def synthesize(
    responses: pd.DataFrame,
    frame: pd.DataFrame | None,
    support: pd.DataFrame,
    config: SynthConfig,
) -> pd.DataFrame:
    """Synthetic records (pandas). The manifest is in ``result.attrs['surveysynth_manifest']``.

    Inputs: ``responses`` (unit id, wave, cell dims, optional cell_id, weight, outcomes,
    auxiliaries or joinable from the frame), ``frame`` (unit id, cell dims, auxiliaries;
    None when only cell totals are known), ``support`` (cell_id, dims, wave,
    n_respondents, n_population, support_class).
    """
    t0 = time.monotonic()
    inputs = prepare_inputs(responses, frame, support, config)
    hashes = inputs.hashes
    rid = _run_id(config, hashes)
    plan = with_implicates(build_plan(inputs, config), config.m, config.wave)
    timings: dict[str, float] = {"prepare_s": time.monotonic() - t0}
    log.info(
        "synthesize: %s, mode %s, %d records x implicates planned",
        config.backend,
        config.mode,
        len(plan),
    )
    if config.backend == "hierarchical":
        t1 = time.monotonic()
        model = fit(inputs, config, rid, _method(config))
        timings["fit_s"] = time.monotonic() - t1
        t2 = time.monotonic()
        out = sample_batched(plan, model, config.progress_seconds)
        timings["sample_s"] = time.monotonic() - t2
        diagnostics = model.diagnostics
    else:
        from surveysynth.synthesis.sdv import synthesize_sdv

        out, timings_b = synthesize_sdv(inputs, config, plan, rid)
        timings.update(timings_b)
        diagnostics = None
    timings["total_s"] = time.monotonic() - t0
    if not isinstance(out.index, pd.RangeIndex):
        out = out.reset_index(drop=True)
    out.attrs[MANIFEST_ATTR] = manifest(
        responses,
        frame,
        support,
        config,
        timings=timings,
        output=out,
        hashes=hashes,
        hash_output=len(out) <= 2_000_000,
    )
    if diagnostics is not None:
        out.attrs["surveysynth_pooling"] = diagnostics.to_dict(orient="list")
    return out


# ----------------------------------------------------------------------- Spark
_SPARK_TYPES = {
    "object": "string",
    "string": "string",
    "int64": "bigint",
    "Int64": "bigint",
    "float64": "double",
    "bool": "boolean",
    "boolean": "boolean",
    "int32": "int",
}


def spark_schema(model: SynthModel, plan: pd.DataFrame | None = None) -> str:
    """DDL schema of the sampler's output for ``applyInPandas`` (pass-through columns take
    the plan's types)."""
    dtypes = {c: str(t) for c, t in empty_output(model.spec).dtypes.items()}
    if plan is not None:
        for c in (model.spec.wave, *model.spec.cell_dims):
            dtypes[c] = str(plan[c].dtype)
    parts = []
    for c, t in dtypes.items():
        if t not in _SPARK_TYPES:
            raise TypeError(f"column '{c}' has dtype {t} with no Spark mapping")
        parts.append(f"`{c}` {_SPARK_TYPES[t]}")
    return ", ".join(parts)


def spark_input(plan: pd.DataFrame, model: SynthModel) -> pd.DataFrame:
    """Plan rows with their cell's parameter columns: what Spark groups and samples."""
    return attach_params(plan, model)


def synthesize_spark(
    spark: Any,
    responses: pd.DataFrame,
    frame: pd.DataFrame | None,
    support: pd.DataFrame,
    config: SynthConfig,
):
    """FIT on the driver (pandas), SAMPLE on Spark: returns a Spark DataFrame with the same
    rows as :func:`synthesize` (hierarchical backend)."""
    if config.backend != "hierarchical":
        raise SynthConfigError("synthesize_spark runs the hierarchical backend only")
    inputs = prepare_inputs(responses, frame, support, config)
    model = fit_model(responses, frame, support, config, inputs=inputs)
    plan = with_implicates(build_plan(inputs, config), config.m, config.wave)
    sdf = spark.createDataFrame(spark_input(plan, model))
    return sdf.groupBy(CELL_ID, config.wave, IMPLICATE).applyInPandas(
        make_cell_sampler(model.spec), schema=spark_schema(model, plan)
    )


# ----------------------------------------------------------------------- manifest
@functools.lru_cache(maxsize=8)
def _versions_json(backend: str) -> str:
    """The versions as the manifest writes them: looked up once per process (reading the
    installed packages' metadata took longer than hashing the inputs' support table)."""
    return json.dumps(_versions(backend), sort_keys=True)


def _versions(backend: str) -> dict[str, str]:
    names = ["numpy", "pandas", "scipy", "pyarrow"]
    if backend.startswith("sdv"):
        names += ["sdv", "rdt", "copulas", "torch"]
    return package_versions(["surveysynth", *names], missing={"surveysynth": "0.1.0"})


def manifest(
    responses: pd.DataFrame,
    frame: pd.DataFrame | None,
    support: pd.DataFrame,
    config: SynthConfig,
    timings: dict[str, float] | None = None,
    output: pd.DataFrame | None = None,
    hashes: dict[str, str] | None = None,
    as_frame: bool = False,
    hash_output: bool = True,
) -> dict[str, Any] | pd.DataFrame:
    """Provenance of a synthesis run: run id, seed, method, parameters (JSON), input row
    counts and content hashes, library versions, timings, output size and hash
    (``synthesize`` skips the output hash above 2M rows; ask for it here)."""
    hashes = hashes or input_hashes(responses, frame, support)
    rid = _run_id(config, hashes)
    out: dict[str, Any] = {
        "synth_run_id": rid,
        "seed": config.seed,
        "synth_method": _method(config),
        "mode": config.mode,
        "m": config.m,
        "parameters": config.to_json(),
        "n_responses": len(responses),
        "n_frame": None if frame is None else len(frame),
        "n_support": len(support),
        "hash_responses": hashes["responses"],
        "hash_frame": hashes["frame"],
        "hash_support": hashes["support"],
        "versions": _versions_json(config.backend),
        "timings": json.dumps({k: round(v, 4) for k, v in (timings or {}).items()}, sort_keys=True),
        "n_output": None if output is None else len(output),
        "hash_output": content_hash(output) if output is not None and hash_output else None,
    }
    if as_frame:
        return pd.DataFrame([out])
    return out


def output_hash(df: pd.DataFrame) -> str:
    """Content hash of a synthetic table (row order ignored)."""
    return content_hash(df)


def pooled_cell_estimates(
    synthetic: pd.DataFrame, config: SynthConfig, by: list[str] | None = None
) -> pd.DataFrame:
    """Cell x wave estimates from synthetic records, weighted by synth_weight and pooled
    over implicates: means of numeric outcomes and shares ``col=level`` of discrete ones
    (nulls excluded). Long form: cell dims, wave, indicator, estimate."""
    by = by or [*config.cell_dims, config.wave]
    return weighted_cell_estimates(synthetic, config, "synth_weight", by)


def weighted_cell_estimates(
    df: pd.DataFrame, config: SynthConfig, weight: str | None, by: list[str]
) -> pd.DataFrame:
    """Hajek estimates per group (long form), the same definitions for real and synthetic."""
    w = df[weight].to_numpy(dtype=float) if weight else np.ones(len(df))
    parts = []
    keys = df[by].reset_index(drop=True)
    for o in config.outcomes:
        s = df[o.name].reset_index(drop=True)
        ok = s.notna().to_numpy()
        if o.is_numeric:
            x = pd.to_numeric(s, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
            cols = {o.name: np.where(ok, x, 0.0)}
        else:
            cols = {f"{o.name}={lv}": (s == lv).to_numpy(dtype=float) for lv in o.category_levels}
        wok = np.where(ok, w, 0.0)
        frame = keys.assign(_w=wok, **{k: v * wok for k, v in cols.items()})
        agg = frame.groupby(by, sort=True).sum()
        est = agg[list(cols)].div(agg["_w"].where(agg["_w"] > 0), axis=0)
        parts.append(
            est.reset_index().melt(id_vars=by, var_name="indicator", value_name="estimate")
        )
    return pd.concat(parts, ignore_index=True)
