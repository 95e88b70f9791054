"""surveysynth as a dbt package: the consumer project in integration_tests/ installs it from its
local path (packages.yml), points it at a survey of its own shape with the input-contract vars
alone (`vars: surveysynth:`), and builds through the release. A bare package, with no contract
vars, stops before building anything with one message naming every var to set."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import duckdb
import pytest
from harness import DBT, ROOT, run_dbt

PROJECT = ROOT / "integration_tests"
RELEASE = ["synthetic_microdata_release", "domain_estimates_release", "published_tables_release",
           "release_manifest"]  # fmt: skip
CONTRACT_VARS = ["ss_responses", "ss_unit_id", "ss_wave", "ss_cell_dims", "ss_outcomes", "ss_frame"]


def consumer_dbt(work: Path, *args: str) -> subprocess.CompletedProcess:
    """`dbt <args>` on the consumer project, run from ``work`` (not the project's folder), with its
    warehouse and target folder under ``work``."""
    env = {
        **os.environ,
        "SS_IT_DUCKDB_PATH": str(work / "warehouse.duckdb"),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    cmd = [DBT, *args, "--project-dir", str(PROJECT), "--profiles-dir", str(PROJECT)]
    cmd += ["--log-path", str(work / "logs")]
    return subprocess.run(
        cmd, check=False, cwd=work, env=env, capture_output=True, text=True, timeout=900
    )


@pytest.fixture(scope="module")
def consumer(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("consumer")
    deps = consumer_dbt(work, "deps")
    assert deps.returncode == 0, deps.stdout[-3000:] + deps.stderr[-3000:]
    runs = json.dumps({"ss_synth_run_dir": str(work / "runs")})
    build = consumer_dbt(work, "build", "--target-path", str(work / "target"), "--vars", runs)
    assert build.returncode == 0, build.stdout[-5000:] + build.stderr[-3000:]
    return work


def tables(db: Path) -> dict[str, set[str]]:
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.sql("select table_schema, table_name from information_schema.tables").fetchall()
    out: dict[str, set[str]] = {}
    for schema, name in rows:
        out.setdefault(schema, set()).add(name)
    return out


def test_release_is_published_with_rows(consumer):
    db = consumer / "warehouse.duckdb"
    assert tables(db)["main_release"] == set(RELEASE)
    with duckdb.connect(str(db), read_only=True) as con:
        for name in RELEASE:
            assert con.sql(f"select count(*) from main_release.{name}").fetchall()[0][0] > 0, name
        cols = {
            c[0] for c in con.sql("describe main_release.synthetic_microdata_release").fetchall()
        }
        ids = con.sql("select count(distinct release_id) from main_release.release_manifest")
        assert ids.fetchall()[0][0] == 1
    # the survey's own names come through; the frame's unit id and register values never do
    assert {"zone", "industry", "size_class", "status", "sales", "headcount"} <= cols
    assert {"reg_jobs_band", "reg_sales_band"} <= cols and not {"firm_ref", "reg_sales"} & cols


def test_package_models_stay_apart_from_the_consumers(consumer):
    found = tables(consumer / "warehouse.duckdb")
    # the consumer's stg_responses (same name as the package's) is its own, in its own schema
    assert found["main"] == {"raw_business_survey", "raw_business_register", "stg_responses"}
    assert {"stg_responses", "calibrated_weights", "synthetic_microdata"} <= found[
        "main_surveysynth"
    ]
    with duckdb.connect(str(consumer / "warehouse.duckdb"), read_only=True) as con:
        theirs = {c[0] for c in con.sql("describe main.stg_responses").fetchall()}
        ours = {c[0] for c in con.sql("describe main_surveysynth.stg_responses").fetchall()}
    assert "cell_id" not in theirs and {"unit_id", "cell_id"} <= ours


def test_inputs_have_lineage_from_the_raw_tables(consumer):
    nodes = json.loads((consumer / "target" / "manifest.json").read_text())["nodes"]
    seeds = "seed.surveysynth_integration_tests."
    checked = nodes["model.surveysynth.int_responses_checked"]["depends_on"]["nodes"]
    frame = nodes["model.surveysynth.stg_frame"]["depends_on"]["nodes"]
    assert seeds + "raw_business_survey" in checked and seeds + "raw_business_register" in frame


def test_bare_package_stops_with_one_message(tmp_path):
    res = run_dbt(tmp_path, vars=None, demo=False)
    assert not res.ok
    assert res.output.count("the input contract is not set") == 1, res.output[-3000:]
    for name in CONTRACT_VARS:
        assert f"- {name}" in res.output, name
    assert "Traceback" not in res.output and "No files found" not in res.output
    assert not res.db_path.exists() or not tables(res.db_path)


def test_release_report_builds_on_the_consumers_survey(consumer):
    """The release report reads the consumer's warehouse (its column names, its schemas) and
    renders every section."""
    from surveysynth.report import build_report
    from surveysynth.report.build import SECTIONS

    out = build_report(
        consumer / "warehouse.duckdb",
        consumer / "report.html",
        run_results=consumer / "target" / "run_results.json",
    )
    html = out.read_text(encoding="utf-8")
    assert "section could not be built" not in html
    assert "NOT released" not in html
    for sid, _, _ in SECTIONS:
        assert f'id="{sid}"' in html, sid
    assert "zone" in html and "size_class" in html  # the consumer's own cell dimensions
