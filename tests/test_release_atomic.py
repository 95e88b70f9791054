"""The release changes whole or not at all: dbt killed at any point leaves the previous release and
its manifest intact and consistent, and the next build completes.

A demo build (back-test off, 2 implicates, to keep the builds short) makes release A. Then a build
for release B (ss_release_auxiliaries: drop, so B differs from A) is started again and again and
killed (SIGKILL to its process group) when its output shows a given model starting: staging,
synthesis, the staging of the release tables, and the publish itself. After each kill the release
schema must hold release A exactly (or, for the kill at the publish, A or B, each whole and matching
its manifest). A publish from a staging left half-written by a kill is refused. Then a full build
completes and publishes B.

The publish is one transaction. Killing dbt at the right millisecond to land inside it cannot be
arranged from outside, so the second test replays the publish SQL that dbt ran (target/run) in a
process of its own, after first changing the staged tables in the same transaction, and kills that
process after 1, 4 and 7 of the 8 statements: the release must be unchanged. Run to COMMIT, the
same replay does change it (so the replay is the real publish).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from harness import DBT, ROOT, demo_config, demo_vars, generate_demo, run_dbt
from release_checks import (
    RELEASE_SCHEMA,
    STAGING_SCHEMA,
    release_id,
    release_problems,
    snapshot,
)

PUBLISH_SQL = Path("target/run/surveysynth/models/release/release_publish.sql")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    work = tmp_path_factory.mktemp("release_atomic")
    data = generate_demo(work / "data", "--seed", "42")
    vars_a = demo_vars(data, work, ss_backtest_enabled=False, ss_synth_m=2)
    res = run_dbt(work, vars=vars_a)
    assert res.ok, res.output[-5000:]
    assert release_problems(res.db_path) == []
    # a copy of warehouse A and of the publish SQL dbt ran, for the replay test
    replay = work / "replay"
    replay.mkdir()
    shutil.copy(res.db_path, replay / "warehouse.duckdb")
    shutil.copy(work / PUBLISH_SQL, replay / "publish.sql")
    return work, vars_a, res.db_path


def run_until(work: Path, vars_: dict, pattern: str, select: str | None = None) -> str:
    """`dbt build` on this project, killed (SIGKILL, its whole process group) as soon as a line of
    its output matches `pattern`; returns the output. Fails if the build ends before the line."""
    args = [DBT, "build", "--project-dir", str(ROOT), "--profiles-dir", str(ROOT)]
    args += ["--target-path", str(work / "target"), "--log-path", str(work / "logs")]
    args += ["--vars", json.dumps({**demo_config(), **vars_})]
    args += ["--select", select] if select else []
    env = {
        **os.environ,
        "SURVEYSYNTH_DUCKDB_PATH": str(work / "warehouse.duckdb"),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "PYTHONUNBUFFERED": "1",
    }
    proc = subprocess.Popen(
        args,
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if re.search(pattern, line):
            os.killpg(proc.pid, signal.SIGKILL)
            break
    proc.stdout.close()
    code = proc.wait(timeout=60)
    output = "".join(lines)
    assert code == -signal.SIGKILL, f"dbt ended ({code}) before {pattern!r}:\n{output[-3000:]}"
    return output


def staged_release_id(db: Path) -> str:
    return release_id(db, STAGING_SCHEMA)


def test_a_killed_build_leaves_the_previous_release_whole_and_a_rerun_completes(world):
    work, vars_a, db = world
    vars_b = {**vars_a, "ss_release_auxiliaries": "drop"}
    release_a, rid_a = snapshot(db), release_id(db)

    def assert_a_intact(where: str) -> None:
        assert snapshot(db) == release_a, f"release A changed after a kill at {where}"
        assert release_problems(db) == [], where

    # killed while staging the inputs, and in the middle of the synthesizer's fit
    run_until(work, vars_b, r"START sql \w+ model main\.stg_responses\b")
    assert_a_intact("staging")
    run_until(work, vars_b, r"synth fit: \w+ done")  # synthetic_microdata's progress
    assert_a_intact("synthesis")

    # killed after the three data tables of B were staged, before B's manifest: staging is mixed
    run_until(
        work, vars_b, r"START python table model \w+_staging\.release_manifest", "release_gates+"
    )
    assert_a_intact("release staging")
    with duckdb.connect(str(db), read_only=True) as con:
        staged = {
            t: con.execute(f"select distinct release_id from {STAGING_SCHEMA}.{t}").fetchall()
            for t in ("release_manifest", "synthetic_microdata_release")
        }
    assert staged["release_manifest"] == [(rid_a,)] != staged["synthetic_microdata_release"]
    refused = run_dbt(work, vars=vars_b, command="run", select="release_publish")
    assert not refused.ok and "do not hold one release" in refused.output, refused.output[-3000:]
    assert_a_intact("a publish of a mixed staging")

    # killed as the publish starts: A or B, each whole
    run_until(work, vars_b, r"START \S+ release_publish model", "release_gates+")
    assert release_problems(db) == []
    assert release_id(db) in (rid_a, staged_release_id(db))
    if release_id(db) == rid_a:
        assert snapshot(db) == release_a

    # a full build after all these kills completes and publishes B
    rerun = run_dbt(work, vars=vars_b)
    assert rerun.ok, rerun.output[-5000:]
    assert release_problems(db) == []
    rid_b = release_id(db)
    assert rid_b != rid_a and rid_b == staged_release_id(db)
    cols = rerun.query(f"describe {RELEASE_SCHEMA}.synthetic_microdata_release").column_name
    assert "register_turnover_band" not in set(cols)


REPLAY = """
import os, signal, sys, duckdb
db, sql, stop_after = sys.argv[1], open(sys.argv[2]).read(), int(sys.argv[3])
statements = [s for s in sql.split(";\\n") if s.strip()]
con = duckdb.connect(db)
con.execute("begin")
con.execute("update main_release_staging.synthetic_microdata_release set synth_method = 'changed'")
con.execute("delete from main_release_staging.domain_estimates_release where wave = 1")
for s in statements[:stop_after]:
    con.execute(s)
if stop_after < len(statements):
    os.kill(os.getpid(), signal.SIGKILL)
con.execute("commit")
"""


def test_a_publish_killed_inside_its_transaction_changes_nothing(world):
    work, _, _ = world
    db, sql = work / "replay" / "warehouse.duckdb", work / "replay" / "publish.sql"
    text = sql.read_text()
    statements = [s for s in text.split(";\n") if s.strip()]
    assert len(statements) == 8 and all(
        re.match(r'\s*(drop table if exists|create table) \S*"main_release"\.', s)
        for s in statements
    ), text
    before, staged_before = snapshot(db), snapshot(db, STAGING_SCHEMA)
    for stop_after in (1, 4, 7):
        proc = subprocess.run(
            [sys.executable, "-c", REPLAY, str(db), str(sql), str(stop_after)], check=False
        )
        assert proc.returncode == -signal.SIGKILL
        assert snapshot(db) == before, f"killed after {stop_after} statements"
        assert snapshot(db, STAGING_SCHEMA) == staged_before
        assert release_problems(db) == []
    # run to COMMIT, the same replay publishes the changed staging (and the manifest no longer
    # matches it, which release_problems sees)
    proc = subprocess.run(
        [sys.executable, "-c", REPLAY, str(db), str(sql), str(len(statements))], check=False
    )
    assert proc.returncode == 0
    assert snapshot(db) != before
    with duckdb.connect(str(db), read_only=True) as con:
        methods = con.sql(
            f"select distinct synth_method from {RELEASE_SCHEMA}.synthetic_microdata_release"
        ).fetchall()
    assert methods == [("changed",)]
    assert any("content differs" in p for p in release_problems(db))
