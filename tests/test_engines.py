"""Every SQL model builds on PostgreSQL and Spark as on DuckDB, its data tests give the same
verdicts, and its tables hold the same rows.

One small demo world (with a few planted bad rows, so the quarantine logic runs too) is built on
DuckDB as the reference: every model, Python ones included, then every data test. Each engine then
builds the SQL models and runs the data tests, and every table model is compared with DuckDB's.

Python models need a platform runtime on these engines (Databricks, Snowpark), which dbt-spark's
session method and PostgreSQL do not give. So on PostgreSQL their DuckDB outputs are loaded as
stand-in tables, and the SQL models downstream of them (augmented, disclosure, release) are built
and compared too. On Spark, registering stand-ins costs a second Spark start and the downstream
models about a minute and a half more, so by default Spark builds the SQL models that do not depend
on a Python model; set SURVEYSYNTH_ENGINES_FULL=1 to give Spark the PostgreSQL treatment.

On the small world some gates fail on every engine (e.g. backtest_gate: a 5,000-unit world is too
thin to back-test) and DuckDB skips what is downstream of them; what must hold is that each engine
builds, passes and fails exactly what DuckDB does. Numbers agree within 1e-9 (staging, support map)
or 1e-6 (iterated or variance-type results); text that quotes numbers agrees but for how each engine
prints them. The calibrated variance (ss_calibrated_variance) is DuckDB-only: see World.file_vars.

Time (2 shared cores, idle): world and DuckDB reference ~40 s, PostgreSQL ~90 s (the direct
estimates ~17 s, the whole build ~71 s), Spark ~90 s. With SURVEYSYNTH_ENGINES_FULL=1 Spark does
not pass yet: planning domain_estimates's query runs its driver out of Java heap (1 GB and 4 GB
tried), an open gap README states.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import engines
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from harness import ROOT, DbtResult, run_dbt

pytestmark = pytest.mark.slow

SCHEMA = "surveysynth"
SPARK_FULL = os.environ.get("SURVEYSYNTH_ENGINES_FULL", "") == "1"

# Keys of models whose rows are matched on known columns (others: inferred, see _infer_key), and
# tolerances tighter than the default DEFAULT_TOL (pure counts and sums, no iteration).
KEYS = {
    "stg_responses": ("_row_id",),
    "quarantined_responses": ("_row_id", "problem"),
    "population_cells": ("cell_id",),
    "cell_support": ("cell_id", "wave"),
    "design_strata": ("stratum_id", "wave"),
    "design_weights": ("_row_id",),
    "calibration_margins": ("margin_id", "category", "wave"),
    "calibrated_weights": ("_row_id",),
}
TIGHT = {"stg_responses", "quarantined_responses", "population_cells", "cell_support"}
DEFAULT_TOL = 1e-6


# --------------------------------------------------------------------------------- world


def _plant_bad_rows(responses: Path, out: Path) -> dict[str, int]:
    """Write a copy of the responses with one row per kind of problem; return expected counts."""
    table = pq.read_table(responses)
    rows = table.to_pylist()
    n = len(rows)
    plants = {
        "missing_wave": ("wave", None),
        "missing_unit_id": ("business_id", None),
        "bad_cell_value": ("region", "atlantis"),
        "bad_weight": ("design_weight", -2.5),
        "out_of_range": ("turnover", -5.5),
        "unknown_level": ("trading_status", "bankrupt"),
        "unit_not_on_frame": ("business_id", "not-on-frame-1"),
    }
    for i, (column, value) in enumerate(plants.values()):
        rows[(i + 1) * n // 10][column] = value
    rows[n // 10 + 7]["applied_finance"] = 2  # a second unknown_level, on a binary outcome
    rows.append(dict(rows[5]))  # an exact duplicate: both copies are quarantined
    pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), out)
    expected = {problem: 1 for problem in plants}
    expected["unknown_level"] = 2
    expected["duplicate_unit_wave"] = 2
    return expected


@dataclass
class World:
    responses: Path
    frame: Path
    expected_problems: dict[str, int]

    def file_vars(self) -> dict:
        # The calibrated variance (models/estimation, macros/estimation/calibrated_variance.sql)
        # is DuckDB-only for now: on PostgreSQL direct_estimates with it ran over 20 minutes on
        # this 5,000-unit world (7 minutes with nested loops off), and Spark's optimizer stops at
        # its iteration limit. Every engine is compared on the fixed-weight variance.
        return {
            "ss_responses": f"file:{self.responses}",
            "ss_frame": f"file:{self.frame}",
            "ss_calibrated_variance": False,
        }


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    out = tmp_path_factory.mktemp("engines_world")
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "demo" / "generate_demo.py"),
            "--frame-size",
            "5000",
            "--target-responses-per-wave",
            "500",
            "--out",
            str(out),
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    planted = out / "responses_planted.parquet"
    expected = _plant_bad_rows(out / "responses.parquet", planted)
    return World(planted, out / "frame.parquet", expected)


# --------------------------------------------------------------------------------- reference


@dataclass
class Model:
    name: str
    unique_id: str
    language: str
    materialized: str
    relation: str  # identifier (alias)
    custom_schema: str | None
    duckdb_schema: str  # the schema the DuckDB reference build wrote it to


@dataclass
class Reference:
    run: DbtResult
    statuses: dict[str, str]  # node unique_id -> status
    models: dict[str, Model]
    test_parents: dict[str, set[str]]  # test unique_id -> names of the models it reads
    children: dict[str, set[str]]  # model name -> names of the models that read it
    parents: dict[str, set[str]]  # model name -> names of the models it reads
    stand_ins: dict[str, Path] = field(default_factory=dict)  # Python model -> its output

    @property
    def python_models(self) -> list[str]:
        return sorted(m.name for m in self.models.values() if m.language == "python")

    @property
    def sql_models(self) -> set[str]:
        return {m.name for m in self.models.values() if m.language == "sql"}

    def downstream_of_python(self) -> set[str]:
        """The Python models and every model built from one of them."""
        return _closure(self.python_models, self.children)

    def upstream(self, name: str) -> set[str]:
        """``name`` and every model it is built from (dbt's ``+name``)."""
        return _closure([name], self.parents)

    def query(self, model: str) -> pd.DataFrame:
        m = self.models[model]
        return self.run.query(f"select * from {m.duckdb_schema}.{m.relation}")


def _closure(start: list[str], edges: dict[str, set[str]]) -> set[str]:
    """``start`` and every name reachable from it along ``edges``."""
    seen, todo = set(), list(start)
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(edges.get(name, ()))
    return seen


def _read_manifest(result: DbtResult) -> tuple[dict, dict, dict, dict]:
    """Models, the models each test reads, the models that read each model and the models each
    model reads."""
    manifest = json.loads((result.target_path / "manifest.json").read_text())
    nodes = manifest["nodes"]
    models, test_parents, children, model_parents = {}, {}, {}, {}
    for uid, node in nodes.items():
        if node["resource_type"] == "model" and node["package_name"] == "surveysynth":
            models[node["name"]] = Model(
                node["name"],
                uid,
                node["language"],
                node["config"]["materialized"],
                node["alias"] or node["name"],
                node["config"].get("schema"),
                node["schema"],
            )
    for uid, node in nodes.items():
        parents = {nodes[p]["name"] for p in node["depends_on"]["nodes"] if p.startswith("model.")}
        if node["resource_type"] == "test":
            test_parents[uid] = parents
        elif node["resource_type"] == "model":
            model_parents[node["name"]] = parents
            for p in parents:
                children.setdefault(p, set()).add(node["name"])
    return models, test_parents, children, model_parents


@pytest.fixture(scope="module")
def reference(world, tmp_path_factory) -> Reference:
    """The DuckDB `dbt build` every engine is compared with, Python models included."""
    workdir = tmp_path_factory.mktemp("engines_duckdb")
    build = run_dbt(workdir, world.file_vars())
    statuses = _statuses(build)
    errors = {k: v for k, v in statuses.items() if v == "error"}
    assert statuses and not errors, f"dbt build on DuckDB errored: {errors}\n{_failures(build)}"
    ref = Reference(build, statuses, *_read_manifest(build))
    stand_ins = workdir / "stand_ins"
    stand_ins.mkdir()
    with duckdb.connect(str(build.db_path), read_only=True) as con:
        for name in ref.python_models:
            if statuses.get(ref.models[name].unique_id) == "success":
                rel = ref.models[name].relation
                path = stand_ins / f"{rel}.parquet"
                schema = ref.models[name].duckdb_schema
                con.sql(f"copy (select * from {schema}.{rel}) to '{path}' (format parquet)")
                ref.stand_ins[name] = path
    problems = build.query(
        "select problem, count(*) as n from main.quarantined_responses group by problem"
    )
    assert dict(zip(problems.problem, problems.n)) == world.expected_problems
    return ref


# --------------------------------------------------------------------------------- comparison


def _normalise(df: pd.DataFrame) -> pd.DataFrame:
    """Numbers as float64 (PostgreSQL gives Decimal, Spark int32 where DuckDB gives int64), dates
    as timestamps (PostgreSQL gives datetime.date where DuckDB gives a timestamp), text as str,
    nulls as None, so that engines can be compared column by column."""
    df = df.copy()
    df.columns = [c.lower() for c in df.columns]
    for col in df.columns:
        s = df[col]
        values = s.dropna()
        if len(values) and all(isinstance(v, datetime.date) for v in values):
            df[col] = pd.to_datetime(s)
            continue
        numeric = len(values) and all(
            isinstance(v, (int, float, np.integer, np.floating)) or type(v).__name__ == "Decimal"
            for v in values
        )
        if numeric and not all(isinstance(v, (bool, np.bool_)) for v in values):
            df[col] = pd.to_numeric(s.astype(object), errors="raise").astype("float64")
        else:
            df[col] = s.astype(object).where(s.notna(), None)
    return df


def _infer_key(df: pd.DataFrame) -> tuple[list[str], list[str]]:
    """Columns to sort rows by when a model has no known key: text, boolean and whole-number
    columns, and where they do not identify a row, every other column rounded (float noise
    between engines is far below the rounding). Returns (key columns, columns to round)."""
    key = []
    for col in df.columns:
        s = df[col]
        whole = s.dtype == "float64" and bool((s.dropna() == np.round(s.dropna())).all())
        if s.dtype != "float64" or whole:
            key.append(col)
    if key and not df.duplicated(key).any():
        return key, []
    return key, [c for c in df.columns if c not in key]


def _with_rounded(df: pd.DataFrame, cols: list[str]) -> pd.DataFrame:
    df = df.copy()
    for col in cols:
        df[f"__round_{col}"] = df[col].map(lambda v: None if pd.isna(v) else float(f"{v:.9g}"))
    return df


_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def _same_text(a, b, tol: float) -> bool:
    """Equal text, or equal but for the printing of the numbers in it ('4371.0' on DuckDB is
    '4371' on PostgreSQL; doubles print with 15 or 17 digits), which must agree within tol."""
    if not isinstance(a, str) or not isinstance(b, str):
        return False
    if _NUMBER.sub("#", a) != _NUMBER.sub("#", b):
        return False
    x = [float(t) for t in _NUMBER.findall(a)]
    y = [float(t) for t in _NUMBER.findall(b)]
    return len(x) == len(y) and bool(np.allclose(x, y, rtol=tol, atol=tol))


def assert_same_table(name: str, ref: pd.DataFrame, got: pd.DataFrame, key, tol: float) -> None:
    ref, got = _normalise(ref), _normalise(got)
    assert sorted(got.columns) == sorted(ref.columns), (
        f"{name}: columns differ: {sorted(set(got.columns) ^ set(ref.columns))}"
    )
    assert len(got) == len(ref), f"{name}: {len(got)} rows, DuckDB has {len(ref)}"
    columns = list(ref.columns)
    got = got[columns]
    rounded: list[str] = []
    order = list(key) if key else None
    if order is None:
        order, rounded = _infer_key(ref)
        ref, got = _with_rounded(ref, rounded), _with_rounded(got, rounded)
        order = order + [f"__round_{c}" for c in rounded]
    ref = ref.sort_values(order, na_position="last", kind="stable").reset_index(drop=True)
    got = got.sort_values(order, na_position="last", kind="stable").reset_index(drop=True)
    for col in columns:
        a, b = ref[col], got[col]
        if a.dtype == "float64" and b.dtype == "float64":
            atol = tol
            if col == "se" and "estimate" in columns:
                # an SE is sqrt(sum of squares - square of sum): near zero it carries rounding of
                # order 1e-8 x the estimate, not of the SE
                atol = tol * np.maximum(1.0, ref["estimate"].abs().fillna(0.0).to_numpy())
            bad = ~(np.isclose(a, b, rtol=tol, atol=atol) | (a.isna() & b.isna()))
        else:
            bad = ~((a == b) | (a.isna() & b.isna()))
            if bad.any():  # messages quote numbers, which engines print differently
                idx = np.flatnonzero(bad.to_numpy())
                bad.iloc[idx] = [not _same_text(a.iloc[i], b.iloc[i], tol) for i in idx]
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            shown = [c for c in order if not c.startswith("__round_")][:8]
            raise AssertionError(
                f"{name}.{col}: {int(bad.sum())} of {len(ref)} rows differ from DuckDB, e.g. "
                f"row {ref.loc[i, shown].to_dict()}: DuckDB {a[i]!r}, this engine {b[i]!r}"
            )


def _statuses(result: DbtResult) -> dict[str, str]:
    return {r["unique_id"]: r["status"] for r in result.run_results()["results"]}


def _failures(result: DbtResult) -> str:
    """What went wrong, for an assertion message: the failing nodes' messages, then the log tail
    without Spark's progress bars and warnings."""
    parts = []
    try:
        for r in result.run_results()["results"]:
            if r["status"] not in ("success", "pass", "skipped"):
                parts.append(f"{r['unique_id']}: {r['status']}: {(r.get('message') or '')[:1500]}")
    except (FileNotFoundError, KeyError, ValueError):
        pass
    noise = (" WARN ", "[Stage ", "WARNING: Using incubator", "log4j")
    lines = [ln for ln in result.output.splitlines() if not any(n in ln for n in noise)]
    return "\n".join(parts + ["--- dbt output (tail) ---", *lines[-60:]])


def assert_engine_matches(
    engine: str,
    result: DbtResult,
    expected_models: set[str],
    read: Callable[[Model], pd.DataFrame],
    reference: Reference,
) -> None:
    """Nothing errors; every model and data test that DuckDB built or ran (and that this engine
    is given) has DuckDB's status: built, passed or failed alike; every table holds DuckDB's rows.
    A node DuckDB skipped (downstream of a failing gate) is not compared."""
    try:
        statuses = _statuses(result)
    except FileNotFoundError:
        raise AssertionError(f"dbt on {engine} ran nothing:\n{_failures(result)}") from None
    details = _failures(result)
    errors = {k: v for k, v in statuses.items() if v == "error"}
    assert not errors, f"{engine}: nodes that error: {errors}\n{details}"
    differ = {
        k: (v, reference.statuses[k])
        for k, v in statuses.items()
        if reference.statuses.get(k, "skipped") != "skipped" and v != reference.statuses[k]
    }
    assert not differ, f"{engine}: status (engine, DuckDB) differs: {differ}\n{details}"
    uids = {reference.models[m].unique_id for m in expected_models}
    expected = {u for u in uids if reference.statuses.get(u) == "success"}
    expected |= {
        t
        for t, parents in reference.test_parents.items()
        if parents <= expected_models and reference.statuses.get(t, "skipped") != "skipped"
    }
    missing = expected - set(statuses)
    assert not missing, f"{engine}: nodes DuckDB ran that this engine did not: {sorted(missing)}"
    for name in sorted(expected_models):
        model = reference.models[name]
        if model.materialized not in ("table", "incremental"):
            continue
        if statuses.get(model.unique_id) != "success":
            continue
        if reference.statuses.get(model.unique_id) != "success":
            continue
        tol = 1e-9 if name in TIGHT else DEFAULT_TOL
        assert_same_table(
            f"{engine}:{name}", reference.query(name), read(model), KEYS.get(name), tol
        )


def _schema(model: Model) -> str:
    """The model's schema on an engine whose target schema is SCHEMA: DuckDB's reference build
    writes to the target schema `main`, so its suffix (`_release_staging`, ...) carries over."""
    resolved = model.duckdb_schema
    return SCHEMA + resolved[len("main") :] if resolved.startswith("main") else resolved


# --------------------------------------------------------------------------------- engines


def _postgres_vars(world, pg) -> dict:
    """The world's vars with its two inputs loaded as PostgreSQL tables (PostgreSQL cannot read
    files): '<schema>.<table>' in place of 'file:' paths."""
    return {
        **world.file_vars(),
        "ss_responses": pg.load_parquet(world.responses, "survey_input", "responses"),
        "ss_frame": pg.load_parquet(world.frame, "survey_input", "frame"),
    }


def test_postgres_builds_the_direct_estimates_and_matches_duckdb(
    world, reference, postgres_server, tmp_path
):
    """The direct estimates and every model they are built from, on PostgreSQL: the same rows as
    DuckDB's. (Their cells' centres are window averages there: PostgreSQL's planner took the join
    of the units with their cells' means for 1 row where there were thousands and nested loops
    over ~1.2e9 pairs, over 12 minutes on this world.)"""
    pg = postgres_server
    vars = _postgres_vars(world, pg)
    models = reference.upstream("direct_estimates")
    assert not models & set(reference.python_models)
    args = ["--indirect-selection", "cautious"]
    result = run_dbt(
        tmp_path,
        vars,
        target="postgres",
        env=pg.dbt_env(SCHEMA),
        select="+direct_estimates",
        extra_args=args,
    )
    assert_engine_matches(
        "postgres",
        result,
        models,
        lambda m: pg.query(f"select * from {_schema(m)}.{m.relation}"),
        reference,
    )


def test_postgres_builds_and_matches_duckdb(world, reference, postgres_server, tmp_path):
    """PostgreSQL cannot read files, so the inputs and the Python models' outputs are loaded as
    tables, the inputs named '<schema>.<table>' in the vars."""
    pg = postgres_server
    start = time.perf_counter()
    vars = _postgres_vars(world, pg)
    for name, path in reference.stand_ins.items():
        model = reference.models[name]
        pg.load_parquet(path, _schema(model), model.relation)
    excluded = ["--exclude", *reference.python_models]
    env = pg.dbt_env(SCHEMA)
    result = run_dbt(tmp_path, vars, target="postgres", env=env, extra_args=excluded)
    assert_engine_matches(
        "postgres",
        result,
        reference.sql_models,
        lambda m: pg.query(f"select * from {_schema(m)}.{m.relation}"),
        reference,
    )
    print(f"postgres: build, tests and comparison in {time.perf_counter() - start:.1f}s")


def test_spark_builds_and_matches_duckdb(world, reference, tmp_path):
    """Spark reads the Parquet inputs directly ('file:' vars); its tables are read back as Parquet."""
    spark_dir = tmp_path / "spark"
    env = engines.spark_env(spark_dir, SCHEMA)
    start = time.perf_counter()
    if SPARK_FULL:
        engines.spark_register_parquet(
            spark_dir,
            {
                f"{_schema(reference.models[name])}.{reference.models[name].relation}": path
                for name, path in reference.stand_ins.items()
            },
        )
        excluded = ["--exclude", *reference.python_models]
        expected = reference.sql_models
    else:
        excluded = ["--exclude", *[f"{name}+" for name in reference.python_models]]
        expected = reference.sql_models - reference.downstream_of_python()
    result = run_dbt(tmp_path, world.file_vars(), target="spark", env=env, extra_args=excluded)
    assert_engine_matches(
        "spark",
        result,
        expected,
        lambda m: engines.read_spark_table(spark_dir, m.relation, _schema(m)),
        reference,
    )
    print(f"spark: build, tests and comparison in {time.perf_counter() - start:.1f}s")


def test_rake_tables_method_matches_on_duckdb(world, reference, tmp_path):
    """The `tables` raking method (Spark's default) gives DuckDB's recursive result on DuckDB too,
    so a difference on Spark would be Spark's, not the method's."""
    vars = {**world.file_vars(), "ss_rake_method": "tables"}
    result = run_dbt(tmp_path, vars, command="run", select="+calibrated_weights")
    assert result.ok, _failures(result)
    for name in ("int_calibration_factors", "calibrated_weights"):
        assert_same_table(
            f"tables:{name}",
            reference.query(name),
            result.query(f"select * from main.{name}"),
            KEYS.get(name),
            1e-9,
        )
