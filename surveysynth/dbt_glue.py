"""The thin layer between dbt Python models and the library.

dbt Python models cannot call `var()`, so each model's YAML config carries the project's vars as
one JSON string (config key `ss_vars`); `project_vars` reads it back. `to_pandas` accepts what
`dbt.ref()` returns on each engine (DuckDB relation, Spark or Snowpark DataFrame, pandas).
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd


def project_vars(raw: Any) -> dict[str, Any]:
    """The vars block passed to a Python model through its `ss_vars` config.

    The model file itself must call `dbt.config.get("ss_vars")`: dbt only ships config keys to a
    Python model that it sees read in the model's own source.

    Every Python model calls this first, so it also pins BLAS to one thread
    (:func:`single_threaded_blas`).
    """
    single_threaded_blas()
    if raw is None:
        raise RuntimeError(
            "this Python model has no 'ss_vars' config: add "
            '`ss_vars: "{{ tojson({...}) }}"` to its YAML config (see python_models/_python_models.yml)'
        )
    return json.loads(raw) if isinstance(raw, str) else dict(raw)


def single_threaded_blas() -> None:
    """Run BLAS (numpy's matrix products) on one thread in this process. OpenBLAS splits a
    product's sums over its threads, and runs a call on fewer threads when another Python thread
    (a model dbt runs alongside, `--threads 2`) holds them, so a fit's last bits would depend on
    what else was running: the fidelity gate's S_pMSE differed between `--threads 1` and 2."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")


def to_pandas(relation: Any) -> pd.DataFrame:
    """A pandas DataFrame from whatever `dbt.ref()` gave on this engine, its rows in a canonical
    order (:func:`canonical_order`): a warehouse returns rows in whatever order its threads
    finish, and a model that sums, fits or draws over them must not depend on it."""
    if isinstance(relation, pd.DataFrame):
        return canonical_order(relation)
    for method in ("df", "toPandas", "to_pandas"):
        fn = getattr(relation, method, None)
        if callable(fn):
            return canonical_order(fn())
    raise TypeError(f"cannot turn {type(relation).__name__} into a pandas DataFrame")


def canonical_order(df: pd.DataFrame) -> pd.DataFrame:
    """The rows sorted by their content hash (all columns): the same rows in any order come out
    in the same order (rows with equal hashes are equal but for a 2^-64 chance)."""
    import numpy as np

    from surveysynth.seeding import row_hashes

    if len(df) < 2:
        return df
    try:
        hashes = row_hashes(df)
    except TypeError:  # list or dict cells: hash their text
        hashes = row_hashes(df.astype(str))
    order = np.argsort(hashes, kind="stable")
    return df.iloc[order].reset_index(drop=True)


def _progress_to_terminal() -> None:
    """Show the library's progress lines (cells done, elapsed) in dbt's terminal output."""
    import logging
    import sys

    log = logging.getLogger("surveysynth")
    if not any(getattr(h, "_surveysynth", False) for h in log.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("surveysynth | %(message)s"))
        handler._surveysynth = True  # type: ignore[attr-defined]
        log.addHandler(handler)
        log.addHandler(_DbtLogFile())
        log.setLevel(logging.INFO)
        log.propagate = False


class _DbtLogFile:
    """Logging handler that copies the progress lines into dbt's own log file (logs/dbt.log),
    as debug events: the terminal already shows them once."""

    level = 0

    def handle(self, record) -> None:
        try:
            from dbt.adapters.events.logging import AdapterLogger
        except ImportError:  # outside dbt: the terminal handler is enough
            return
        AdapterLogger("surveysynth").debug("surveysynth | " + record.getMessage())


def _inputs(
    v: dict[str, Any], responses: Any, frame: Any, support: Any, weights: Any
) -> tuple[pd.DataFrame, pd.DataFrame | None, pd.DataFrame]:
    """Staged responses with their analysis weight (calibrated where calibration ran)."""
    r = to_pandas(responses)
    if weights is not None:
        w = to_pandas(weights)[["_row_id", "calibrated_weight"]]
        r = r.merge(w, on="_row_id", how="left", validate="one_to_one")
        missing = int(r["calibrated_weight"].isna().sum())
        if missing:
            raise RuntimeError(
                f"{missing} staged response(s) have no calibrated weight in calibrated_weights"
            )
        r["analysis_weight"] = r["calibrated_weight"].astype(float)
        r = r.drop(columns=["calibrated_weight"])
    else:
        r["analysis_weight"] = r["design_weight"].astype(float)
    f = to_pandas(frame) if v.get("ss_frame") else None
    s = to_pandas(support)
    return r, f, s


def synth_config(v: dict[str, Any]):
    """The synthesizer's config from the project vars, with staging's canonical column names."""
    from surveysynth.contract.config import SynthConfig

    return SynthConfig.from_vars(v, unit_id="unit_id", wave="wave", weight="analysis_weight")


def _run_dir(v: dict[str, Any]):
    from pathlib import Path

    return Path(v.get("ss_synth_run_dir") or "target/surveysynth_runs")


def synthesize_model(
    v: dict[str, Any], responses: Any, frame: Any, support: Any, weights: Any = None
) -> pd.DataFrame:
    """Body of the synthetic_microdata model."""
    from surveysynth.synthesis.api import MANIFEST_ATTR, synthesize

    _progress_to_terminal()
    r, f, s = _inputs(v, responses, frame, support, weights)
    out = synthesize(r, f, s, synth_config(v))
    man = out.attrs.get(MANIFEST_ATTR)
    if man is not None:
        # the manifest model reads this run's manifest back (engines with a local disk); key
        # order kept, so the manifest table's columns come out in the order manifest() gives
        run_dir = _run_dir(v)
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / f"{man['synth_run_id']}.json").write_text(json.dumps(man))
    out.attrs = {}
    return out


def manifest_model(
    v: dict[str, Any], synthetic: Any, responses: Any, frame: Any, support: Any, weights: Any = None
) -> pd.DataFrame:
    """Body of the synthesis_manifest model: one row of provenance for the synthetic table.

    synthetic_microdata saved its run's manifest (input counts and hashes, timings) under the
    run id its rows carry; that is read back, and only the output's size and hash are taken
    from the table as the warehouse holds it. Where no manifest was saved (an engine without
    the local disk, or no synthetic rows) the inputs are read and hashed again here."""
    from surveysynth.synthesis.api import manifest, output_hash

    syn = to_pandas(synthetic)
    ids = syn["synth_run_id"].dropna().unique() if "synth_run_id" in syn.columns else []
    saved = _run_dir(v) / f"{ids[0]}.json" if len(ids) == 1 else None
    if saved is not None and saved.exists():
        row = json.loads(saved.read_text())
        row["n_output"] = len(syn)
        row["hash_output"] = output_hash(syn)
        return pd.DataFrame([row])
    r, f, s = _inputs(v, responses, frame, support, weights)
    row = manifest(r, f, s, synth_config(v), output=syn)
    row["timings"] = json.dumps({"note": "timings not recorded on this engine"})
    return pd.DataFrame([row])
