"""The release report: one self-contained HTML file, every section present, no console errors in
headless Chromium, for a demo-shaped warehouse and a survey with other names; a failed build gets
a report that says why nothing was released. Screenshots go to target/test-artifacts/."""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

import duckdb
import pytest
from browser import console_errors, driver, full_screenshot
from report_builds import demo_build, farm_build
from selenium.webdriver.common.by import By

from surveysynth.report import build_report
from surveysynth.report.build import SECTIONS
from surveysynth.report.warehouse import Warehouse

ARTIFACTS = Path(__file__).resolve().parents[1] / "target" / "test-artifacts"
SECTION_IDS = [sid for sid, _, _ in SECTIONS]


@pytest.fixture(scope="module")
def browser():
    drv = driver()
    yield drv
    drv.quit()


def _read(build, name: str):
    """A relation of the build's warehouse, found by name in whichever schema holds it."""
    wh = Warehouse(build.db_path)
    try:
        return wh.table(name)
    finally:
        wh.close()


def _assert_self_contained(html: str) -> None:
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html), "external reference"
    assert "<script" not in html and "@import" not in html and "url(http" not in html


def _open(browser, path: Path, shot: str) -> str:
    console_errors(browser)  # drop earlier entries
    browser.get(path.as_uri())
    for sid in SECTION_IDS:
        el = browser.find_element(By.ID, sid)
        assert el.is_displayed() and el.find_element(By.TAG_NAME, "h2").text, sid
    assert console_errors(browser) == []
    full_screenshot(browser, ARTIFACTS / shot)
    return browser.find_element(By.TAG_NAME, "body").text


def test_demo_report_builds_fast_and_renders_every_section(tmp_path, browser):
    build = demo_build()
    assert build.ok, build.output[-3000:]
    t0 = time.monotonic()
    out = build_report(build.db_path, tmp_path / "report.html")
    seconds = time.monotonic() - t0
    assert seconds <= 10, f"report took {seconds:.1f}s"
    html = out.read_text()
    _assert_self_contained(html)
    assert "section could not be built" not in html
    assert html.count("<svg") >= 5  # support maps, intervals, back-test, marginals, dependence
    text = _open(browser, out, "report_demo.png")
    assert "Released" in text and "Nothing was released" not in text
    assert _read(build, "release_manifest")["release_id"].iloc[0] in text
    for word in ("augmented", "direct", "region", "size_band", "trading_status"):
        assert word in text, word
    _assert_backtest_shown(build, browser)


def _assert_backtest_shown(build, browser) -> None:
    """Every thinned size of the back-test is shown, or the gate is shown not assessable."""
    sizes = _read(build, "backtest_results")["n_thinned"].unique()
    section = browser.find_element(By.ID, "backtest").text
    assert all(f"n = {n}" in section for n in sizes)
    if len(sizes) == 0:
        assert "not assessable" in section and "no cell was thinned" in section


def test_report_of_a_survey_with_other_names(tmp_path, browser):
    build = farm_build()
    out = build_report(build.db_path, tmp_path / "farm.html")
    html = out.read_text()
    _assert_self_contained(html)
    assert "section could not be built" not in html
    text = _open(browser, out, "report_farm.png")
    support = browser.find_element(By.ID, "support-map").text
    assert "county" in support and "crop" in support and "region" not in support
    _assert_backtest_shown(build, browser)
    assert ("Released" in text) == build.ok
    if not build.ok:
        assert "Nothing was released" in text


def test_failed_build_gets_a_report_saying_why(tmp_path, browser):
    """A copy of the demo warehouse where the back-test gate failed, dbt recorded the failing
    test and the release estimates lack model_share and basis."""
    build = demo_build()
    db = tmp_path / "failed.duckdb"
    shutil.copy(build.db_path, db)
    with duckdb.connect(str(db)) as con:
        con.execute(
            "update backtest_summary set passed = false where metric = 'augmented_coverage'"
        )
        rel = con.execute(
            "select table_schema from information_schema.tables "
            "where table_name = 'domain_estimates_release' and table_schema not like '%staging%'"
        ).fetchone()[0]
        for col in ("model_share", "basis"):
            con.execute(f'alter table "{rel}".domain_estimates_release drop column if exists {col}')
    rr = tmp_path / "run_results.json"
    rr.write_text(
        '{"results": [{"unique_id": "test.surveysynth.backtest_gate_passes", "status": "fail", '
        '"message": "Got 1 result, configured to fail if != 0"}]}'
    )
    out = build_report(db, tmp_path / "failed.html", run_results=rr)
    html = out.read_text()
    assert "section could not be built" not in html
    text = _open(browser, out, "report_failed.png")
    verdict = browser.find_element(By.ID, "verdict").text
    assert "Nothing was released" in verdict
    assert "backtest_summary: augmented_coverage failed" in verdict
    assert "backtest_gate_passes" in verdict
    assert "last good release" in verdict
    assert "absent columns: model_share, basis" in text


def test_warehouse_without_release_says_nothing_was_released(tmp_path, browser):
    build = demo_build()
    db = tmp_path / "norelease.duckdb"
    shutil.copy(build.db_path, db)
    with duckdb.connect(str(db)) as con:
        for schema, name, kind in con.execute(
            "select table_schema, table_name, table_type from information_schema.tables "
            "where table_name like '%_release' or table_name = 'release_manifest'"
        ).fetchall():
            con.execute(f'drop {"view" if kind == "VIEW" else "table"} "{schema}"."{name}"')
    out = build_report(db, tmp_path / "norelease.html")
    _open(browser, out, "report_norelease.png")
    verdict = browser.find_element(By.ID, "verdict").text
    assert "Nothing was released" in verdict and "release_manifest absent" in verdict


def test_a_staged_release_is_not_read_as_published(tmp_path):
    """Only the staging schema holds release tables (a first publish refused): the report and the
    dashboard (both read through Warehouse) find no release, instead of reading the staged,
    refused tables as the published ones."""
    db = tmp_path / "staged.duckdb"
    with duckdb.connect(str(db)) as con:
        con.execute("create schema main_release_staging")
        for t in ("domain_estimates_release", "release_manifest"):
            con.execute(f"create table main_release_staging.{t} as select 1 as x")
        con.execute("create table main.domain_estimates as select 1 as x")
    wh = Warehouse(db)
    try:
        assert wh.rel("domain_estimates_release") is None and wh.rel("release_manifest") is None
        assert wh.rel("domain_estimates") == '"main"."domain_estimates"'
    finally:
        wh.close()


def test_disclosure_bars_show_only_ratios_that_read_below_one_passes(tmp_path):
    """The value / threshold bars: a '<=' rule with a positive threshold only. A difference that
    passes below a negative threshold (-0.0434 <= -0.0198) had shown as a bar of 2.19, and the
    attacks' p-value (a '>' rule) had set the scale for every bar."""
    from surveysynth.report.sections_checks import disclosure

    db = tmp_path / "dm.duckdb"
    with duckdb.connect(str(db)) as con:
        con.execute(
            "create table main.disclosure_metrics as select * from (values "
            "(1, 'disclosure_attacks', null, 0.8, 0.005, '>', 'pass', true, ''), "
            "(1, 'replicated_uniques', null, -0.0434, -0.0198, '<=', 'pass', true, ''), "
            "(1, 'dcr_share', null, 0.04, 0.10, '<=', 'pass', true, '')"
            ') as t(implicate, metric, "column", value, threshold, comparison, status, passed, detail)'
        )
    wh = Warehouse(db)
    try:
        html = disclosure(wh, {})
    finally:
        wh.close()
    bars = html.split("<table")[0]
    assert "dcr_share" in bars and "replicated_uniques" not in bars
    assert "disclosure_attacks" not in bars
