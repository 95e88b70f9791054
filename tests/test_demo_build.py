"""End to end on the demo world: the whole `dbt build` on embedded DuckDB, the sparse pattern the
demo exists to show, synthetic records that are reproducible by seed and meet every business rule."""

from __future__ import annotations

import pytest
from demo_builds import writable_copy
from harness import run_dbt


@pytest.fixture(scope="module")
def demo(demo_made, tmp_path_factory):
    """A copy of the session's `make demo` build (tests/demo_builds.py): these tests rebuild and
    edit it."""
    b = writable_copy(demo_made, tmp_path_factory.mktemp("demo"))
    return b.work, b.vars, b.res


def _hash(res, table: str) -> str:
    df = res.query(f"select * from {table}")
    from surveysynth.seeding import content_hash

    return content_hash(df.sort_values(list(df.columns)).reset_index(drop=True))


def test_demo_builds_and_every_test_passes(demo):
    _, _, res = demo
    assert res.ok, res.output[-5000:]
    # exposures (the report and the dashboard) have nothing to run: dbt reports them as no-op
    results = res.run_results()["results"]
    bad = {
        r["unique_id"]: r["status"]
        for r in results
        if r["status"] not in ("success", "pass") and not r["unique_id"].startswith("exposure.")
    }
    assert not bad


def test_demo_has_the_sparse_pattern(demo):
    _, _, res = demo
    s = res.query("select * from cell_support")
    micro = s[(s.region == "scotland") & (s.size_band == "0-9")]
    assert len(micro) == 12 * 4
    assert micro.support_class.isin(["sparse", "empty"]).mean() >= 0.5
    big = s[(s.size_band == "250+") & s.region.isin(["london", "south_east", "north_west"])]
    assert (big.support_class == "supported").all()


def test_synthetic_records_are_flagged_and_cover_thin_cells(demo):
    _, _, res = demo
    syn = res.query("select * from synthetic_microdata")
    assert syn.is_synthetic.all()
    assert sorted(syn.implicate.unique()) == [1, 2, 3, 4, 5]
    assert syn.synth_run_id.nunique() == 1
    assert set(syn.support_class.unique()) <= {"sparse", "empty"}
    thin = res.query(
        "select cell_id, wave from cell_support where support_class in ('sparse', 'empty') "
        "and n_population > n_respondents"
    )
    covered = syn[["cell_id", "wave"]].drop_duplicates()
    # every thin cell x wave with units left to represent gets records
    assert len(covered.merge(thin)) == len(thin)
    man = res.query("select * from synthesis_manifest")
    assert len(man) == 1 and man.synth_run_id[0] == syn.synth_run_id[0]


def test_same_seed_identical_other_seed_different(demo):
    work, vars_, res = demo
    first = _hash(res, "synthetic_microdata")
    again = run_dbt(work, vars=vars_, command="run", select="synthetic_microdata")
    assert again.ok, again.output[-3000:]
    assert _hash(again, "synthetic_microdata") == first
    other = run_dbt(work, vars={**vars_, "ss_seed": 7}, command="run", select="synthetic_microdata")
    assert other.ok, other.output[-3000:]
    assert _hash(other, "synthetic_microdata") != first


def test_business_rule_gate_fails_on_a_planted_violation(demo):
    work, vars_, res = demo
    import duckdb

    with duckdb.connect(str(res.db_path)) as con:
        con.sql(
            "update synthetic_microdata set turnover = 1234.5 where rowid in "
            "(select rowid from synthetic_microdata where trading_status = 'closed' limit 1)"
        )
    check = run_dbt(work, vars=vars_, command="test", select="synthetic_microdata")
    assert not check.ok
    assert check.statuses()["synthetic_rows_meet_business_rules"] == "fail"
