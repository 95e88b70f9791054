"""Documentation coverage of the dbt package, measured on real builds.

* `dbt docs generate` on an empty warehouse, with input vars that point at files that do not
  exist: it must succeed, warn about no unused config path and leave the warehouse empty, so the
  docs run no input check, gate query or raking table (surveysynth.runs_queries).
* Its manifest: every model and every macro of the package described, every macro argument too.
* A small demo world built end to end: every column named by the package described in the
  models' YAML, and at least 95% of all the columns of every built relation, the columns named by
  the survey's own configuration (cell dimensions, outcomes, auxiliaries and the staging columns
  derived from them) included: the YAML names those through the vars (dbt renders Jinja in column
  names), in slots for up to 6 dimensions, 24 outcomes and 8 auxiliaries; both coverages are
  printed.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import duckdb
import pytest
from harness import DBT, ROOT, demo_config, demo_vars, generate_demo, run_dbt

SMALL = [
    "--seed",
    "5",
    "--frame-size",
    "6000",
    "--target-responses-per-wave",
    "150",
    "--waves",
    "2",
]
MIN_COLUMN_COVERAGE = 0.95
#: models that build no relation of their own (release_publish copies the staged release)
NO_RELATION = {"release_publish"}


def _package_nodes(manifest: dict, kind: str) -> list[dict]:
    found = manifest["nodes"] if kind == "model" else manifest["macros"]
    return [
        n
        for n in found.values()
        if n["package_name"] == "surveysynth" and n.get("resource_type", "macro") == kind
    ]


@pytest.fixture(scope="module")
def empty_docs(tmp_path_factory, build_started) -> tuple:
    work = tmp_path_factory.mktemp("docs_empty")
    missing = work / "no_such_dir"
    vars_ = {
        "ss_responses": f"file:{missing / 'responses.parquet'}",
        "ss_frame": f"file:{missing / 'frame.parquet'}",
    }
    db = work / "empty.duckdb"
    args = [DBT, "docs", "generate", "--project-dir", str(ROOT), "--profiles-dir", str(ROOT)]
    args += ["--target-path", str(work / "target"), "--log-path", str(work / "logs")]
    args += ["--vars", json.dumps({**demo_config(), **vars_})]
    env = {
        **os.environ,
        "SURVEYSYNTH_DUCKDB_PATH": str(db),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    proc = subprocess.run(
        args, check=False, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900
    )
    manifest_path = work / "target" / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if proc.returncode == 0 else {}
    return proc, db, manifest


def test_docs_generate_runs_no_query_on_an_empty_warehouse(empty_docs):
    proc, db, _ = empty_docs
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert "unused configuration paths" not in out, out[-4000:]
    with duckdb.connect(str(db), read_only=True) as con:
        tables = con.sql("select table_name from information_schema.tables").fetchall()
    assert tables == [], f"docs generate created relations: {tables}"


def test_every_model_and_macro_described(empty_docs):
    _, _, manifest = empty_docs
    models = _package_nodes(manifest, "model")
    macros = _package_nodes(manifest, "macro")
    bare_models = sorted(n["name"] for n in models if not n["description"].strip())
    bare_macros = sorted(m["name"] for m in macros if not m["description"].strip())
    bare_args = sorted(
        f"{m['name']}({a['name']})"
        for m in macros
        for a in m["arguments"]
        if not (a.get("description") or "").strip()
    )
    undocumented_args = sorted(
        m["name"] for m in macros if _signature_args(m) and not m["arguments"]
    )
    print(f"models described: {len(models) - len(bare_models)}/{len(models)}")
    print(f"macros described: {len(macros) - len(bare_macros)}/{len(macros)}")
    assert not bare_models, bare_models
    assert not bare_macros, bare_macros
    assert not bare_args, bare_args
    assert not undocumented_args, undocumented_args


def _signature_args(macro: dict) -> list[str]:
    head = re.match(
        r"\{%-?\s*(?:macro|test)\s+\w+\s*\((.*?)\)\s*-?%\}", macro["macro_sql"], re.DOTALL
    )
    if not head:
        return []
    parts = re.split(r",(?![^\[\(\{]*[\]\)\}])", head.group(1))
    return [p.split("=")[0].strip() for p in parts if p.strip()]


def _configured_columns(v: dict) -> set[str]:
    """Column names that come from the survey's configuration, lower case: the cell dimensions,
    outcomes and frame auxiliaries, and what staging and the release derive from them."""
    dims, outs, aux = v["ss_cell_dims"], list(v["ss_outcomes"]), v["ss_frame_auxiliaries"]
    names = {*dims, *outs, *aux, v["ss_unit_id"], v["ss_wave"], v["ss_design_weight"] or ""}
    names |= {f"_raw_{o}" for o in outs} | {f"{a}_band" for a in aux} | {f"total_{a}" for a in aux}
    names |= {f"_known_{i}" for i in range(1, len(dims) + 1)}
    names |= {f"_problem_cell_{i}" for i in range(1, len(dims) + 1)}
    for i in range(1, len(outs) + 1):
        names |= {f"_problem_outcome_{i}", f"_problem_outcome_{i}_finite"}
    return {n.lower() for n in names if n}


def _built_columns(db: Path) -> dict[str, list[str]]:
    sql = (
        "select table_name, column_name from information_schema.columns "
        "where table_schema not like '%_staging' order by table_name, ordinal_position"
    )
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.sql(sql).fetchall()
    out: dict[str, list[str]] = {}
    for table, column in rows:
        out.setdefault(table, []).append(column.lower())
    return out


def _small_build(work: Path):
    data = generate_demo(work / "data", *SMALL)
    # fewer permutations and rows than a release needs: the columns are the same, the build faster
    fast = {"ss_backtest_repeats": 1, "ss_synth_m": 2, "ss_risk_max_rows": 2000}
    fast |= {"ss_risk_permutations": 19, "ss_fidelity_permutations": 19}
    return run_dbt(work, vars=demo_vars(data, work, **fast))


@pytest.fixture(scope="module")
def build_started(tmp_path_factory):
    """The small build, started first so it runs while the docs are generated."""
    pool = ThreadPoolExecutor(max_workers=1)
    future = pool.submit(_small_build, tmp_path_factory.mktemp("docs_small"))
    yield future
    pool.shutdown(wait=True)


@pytest.fixture(scope="module")
def small_build(build_started):
    res = build_started.result()
    assert res.ok, res.output[-4000:]
    return res


def test_columns_of_the_built_relations_described(empty_docs, small_build):
    _, _, manifest = empty_docs
    described = {
        n["name"]: {c.lower() for c, d in n["columns"].items() if d["description"].strip()}
        for n in _package_nodes(manifest, "model")
    }
    built = _built_columns(small_build.db_path)
    configured = _configured_columns(demo_config())
    total = named = named_described = 0
    missing = []
    for model in sorted(described):
        if model in NO_RELATION:
            continue
        assert model in built, f"model {model} was not built"
        for column in built[model]:
            total += 1
            if column in configured:
                continue
            named += 1
            if column in described[model]:
                named_described += 1
            else:
                missing.append(f"{model}.{column}")
    n_described_all = sum(len(set(built[m]) & described[m]) for m in described if m in built)
    print(f"columns of {len(set(described) - NO_RELATION)} built models: {total}")
    print(
        f"named by the package: {named}, described {named_described} ({named_described / named:.1%})"
    )
    print(f"named by the survey's configuration: {total - named} (described by their vars)")
    print(
        f"all columns described in YAML: {n_described_all}/{total} ({n_described_all / total:.1%})"
    )
    assert not missing, missing
    undescribed = sorted(
        f"{m}.{c}" for m in described if m in built for c in set(built[m]) - described[m]
    )
    assert n_described_all / total >= MIN_COLUMN_COVERAGE, undescribed
