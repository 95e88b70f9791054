"""Every release gate can fail, and a failing gate leaves the last good release untouched.

The demo is built once for the session (tests/demo_builds.py, `demo_release`: back-test off,
register values marked as test_release_safety.py needs them). Each planted failure then starts
from a copy of that warehouse: one table is edited in the DuckDB file, everything downstream of it
is rebuilt (`dbt build --select <planted>+ --exclude <planted>`), and the test checks that the
build failed, that the named gate test is among the failures, that the release models were
skipped, and that every release table is byte-for-byte what it was (content hash and ordered
data).

That build disables the back-test (ss_backtest_enabled: false) to save its synthesizer runs: its
gate is proven by the back-test's own tests; every other gate runs as in `make demo`.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from harness import run_dbt

RELEASE = [
    "synthetic_microdata_release",
    "domain_estimates_release",
    "published_tables_release",
    "release_manifest",
]
OUTCOMES = [
    "trading_status",
    "turnover_change",
    "turnover",
    "employees",
    "cash_reserves",
    "applied_finance",
]


@pytest.fixture(scope="module")
def demo(demo_release, tmp_path_factory):
    """The shared build, with a folder of this module's own for the planted rebuilds."""
    return tmp_path_factory.mktemp("release_plants"), demo_release.vars, demo_release.res


def snapshot(db: Path) -> dict[str, tuple[int, str]]:
    """Rows and a hash of the ordered data (column names and types included) of each release table."""
    from surveysynth.seeding import content_hash

    out = {}
    with duckdb.connect(str(db), read_only=True) as con:
        for t in RELEASE:
            df = con.sql(f"select * from main_release.{t} order by all").df()
            h = hashlib.sha256(repr([(c, str(df[c].dtype)) for c in df.columns]).encode())
            h.update(pd.util.hash_pandas_object(df, index=False).to_numpy().tobytes())
            out[t] = (len(df), h.hexdigest(), content_hash(df))
    return out


def plant_and_rebuild(demo, planted: str, statements: list[str]):
    """Copy the demo warehouse, run `statements` on it, rebuild downstream of `planted`.

    Every plant runs in the same folder (a fresh copy of the demo warehouse each time), so dbt's
    profile and target stay the same and it parses the project only once."""
    work, vars_, res = demo
    here = work / "plant"
    here.mkdir(exist_ok=True)
    for f in here.glob("warehouse.duckdb*"):
        f.unlink()
    shutil.copy(res.db_path, here / "warehouse.duckdb")
    before = snapshot(here / "warehouse.duckdb")
    with duckdb.connect(str(here / "warehouse.duckdb")) as con:
        for sql in statements:
            con.execute(sql)
    out = run_dbt(here, vars=vars_, select=f"{planted}+", extra_args=["--exclude", planted])
    return out, before, snapshot(here / "warehouse.duckdb")


def assert_gate_held(out, before, after, gate_test: str) -> dict[str, str]:
    assert not out.ok, "the build should fail: " + out.output[-3000:]
    st = out.statuses()
    assert st.get(gate_test) == "fail", {
        k: v for k, v in st.items() if v not in ("success", "pass")
    }
    for t in RELEASE:
        assert st.get(t) == "skipped", (t, st.get(t))
    assert after == before, "a release table changed although a gate failed"
    return st


# ------------------------------------------------------------------------------ the good build


def test_demo_passes_every_gate_and_releases(demo):
    _, _, res = demo
    bad = {k: v for k, v in res.statuses().items() if v not in ("success", "pass")}
    assert not bad
    gates = res.query("select * from release_gates")
    assert gates.passed.all() and len(gates) >= 12
    assert {
        "disclosure_risk",
        "fidelity",
        "threshold_rule",
        "dominance_rules",
        "suppression_audit",
        "calibration_convergence",
        "business_rules",
        "quarantine_share",
    } <= set(gates.gate)
    for m in ("disclosure_metrics", "fidelity_metrics"):
        assert res.query(f"select bool_and(passed) as ok from {m}").ok[0]
    man = res.query("select * from main_release.release_manifest")
    assert len(man) == 1 and man.all_gates_passed[0]
    syn = res.query("select * from synthetic_microdata")
    assert man.synth_run_id[0] == syn.synth_run_id[0]
    # the release holds every synthetic record (synthetic ids, banded auxiliaries: test_release_safety)
    rel = res.query("select * from main_release.synthetic_microdata_release")
    assert len(rel) == len(syn) and (rel.release_id == man.release_id[0]).all()


def test_holdout_is_cross_fitted(demo):
    """The holdout is withheld from the risk fit only: the released synthesizer sees everyone."""
    _, _, res = demo
    roles = res.query("select * from risk_holdout")
    assert set(roles.risk_role) == {"train", "holdout"}
    # split by unit: a unit has one role; every unit is eligible, thin cells included
    assert (roles.groupby("unit_id").risk_role.nunique() == 1).all()
    held = roles[roles.risk_role == "holdout"]
    assert abs(held.unit_id.nunique() / roles.unit_id.nunique() - 0.5) < 0.02
    assert {"supported", "sparse"} <= set(held.support_class)
    seen = res.query("select _row_id from synthesis_responses")
    assert len(seen) == len(roles) and set(held._row_id) <= set(seen._row_id)
    man = res.query("select n_responses from synthesis_manifest")
    assert man.n_responses[0] == len(seen)
    risk = res.query("select distinct implicate from risk_synthetic_microdata")
    assert list(risk.implicate) == [1]


def test_sql_primary_rules_agree_with_the_library(demo):
    from surveysynth.disclosure.tables import primary_suppression

    _, _, res = demo
    sql = res.query("select * from table_primary_suppression")
    contrib = res.query("select * from int_sdc_contributions")
    keys = ["table_name", "wave", "row_label", "col_label"]
    lib = primary_suppression(
        sql[keys],
        None,
        contrib,
        3,
        2,
        85.0,
        10.0,
        keys=keys,
        value_col="contribution",
        unit_col="unit_id",
    )
    both = sql.merge(lib, on=keys, suffixes=("", "_lib"))
    assert len(both) == len(sql)
    assert (both.n_contributors == both.n_contributors_lib).all()
    for a, b in [
        ("unsafe_threshold", "unsafe_threshold_lib"),
        ("unsafe_dominance", "unsafe_dominance_lib"),
        ("unsafe_p", "unsafe_p_lib"),
        ("is_primary", "primary"),
    ]:
        assert (both[a] == both[b]).all(), a
    np.testing.assert_allclose(
        both.protection_required, both.protection_required_lib, rtol=1e-9, atol=1e-6
    )
    assert both.is_primary.any() and both.unsafe_threshold.any()


def test_released_tables_and_estimates_hide_what_the_rules_protect(demo):
    _, _, res = demo
    pub = res.query("select * from main_release.published_tables_release")
    pat = res.query("select * from table_suppression")
    m = pub.merge(pat, on=["table_name", "wave", "row_label", "col_label"])
    assert (m.value_x.isna() == m.suppressed).all()
    assert m.is_secondary.any()
    assert res.query("select count(*) as n from suppression_audit where not protected").n[0] == 0
    est = res.query("select * from main_release.domain_estimates_release")
    thin = est[(est.n_respondents > 0) & (est.n_respondents < 3)]
    assert len(thin) and thin.estimate.isna().all() and (thin.method == "suppressed").all()
    assert thin.augmented_estimate.isna().all() and thin.direct_estimate.isna().all()
    # cells with no respondents rest on no one's answers: their synthetic estimate stays
    assert est[(est.n_respondents == 0) & (est.method == "augmented")].estimate.notna().all()


# ------------------------------------------------------------------------------ planted failures

REAL_COLS = [
    "unit_id",
    "wave",
    "region",
    "sector",
    "size_band",
    "cell_id",
    *OUTCOMES,
    "register_employment",
    "register_turnover",
]


def test_a_real_rows_copied_into_the_synthetic_table_fail_exact_match(demo):
    plant = f"""
        insert into synthetic_microdata by name
        select {", ".join(f"r.{c}" for c in REAL_COLS)},
            1.0 as synth_weight, true as is_synthetic, 1 as implicate,
            (select min(synth_run_id) from synthetic_microdata) as synth_run_id,
            'hierarchical' as synth_method, s.support_class
        from synthesis_responses as r
        inner join cell_support as s on r.cell_id = s.cell_id and r.wave = s.wave
        order by r._row_id
        limit 1000
    """
    out, before, after = plant_and_rebuild(demo, "synthetic_microdata", [plant])
    assert_gate_held(out, before, after, "disclosure_risk_within_thresholds")
    m = out.query("select * from disclosure_metrics")
    failed = set(m.loc[~m.passed, "metric"])
    assert "informative_match_rate" in failed, m


def test_b_a_cell_with_one_or_two_respondents_published_fails_the_threshold_rule(demo):
    _, _, res = demo
    cell = res.query(
        "select table_name, wave, row_label, col_label from table_primary_suppression "
        "where unsafe_threshold order by n_contributors, wave limit 1"
    ).iloc[0]
    plant = (
        "update table_suppression set suppressed = false, is_secondary = false, "
        f"status = 'published' where table_name = '{cell.table_name}' and wave = {cell.wave} "
        f"and row_label = '{cell.row_label}' and col_label = '{cell.col_label}'"
    )
    out, before, after = plant_and_rebuild(demo, "table_suppression", [plant])
    assert_gate_held(out, before, after, "published_cells_meet_threshold_rule")


def test_b_a_domain_estimate_from_one_respondent_published_fails_the_threshold_rule(demo):
    plant = """
        update domain_estimates_protected
        set method = 'augmented', estimate = augmented_estimate, sdc_status = 'published'
        where rowid = (
            select min(rowid) from domain_estimates_protected
            where n_respondents = 1 and sdc_status = 'suppressed_threshold'
        )
    """
    out, before, after = plant_and_rebuild(demo, "domain_estimates_protected", [plant])
    assert_gate_held(out, before, after, "published_cells_meet_threshold_rule")


def test_c_one_business_dominating_a_published_cell_fails_the_dominance_rules(demo):
    _, _, res = demo
    cell = res.query(
        "select table_name, wave, row_label, col_label, x1 / value as share from "
        "table_primary_suppression where unsafe_dominance and not unsafe_threshold "
        "order by x1 / value desc limit 1"
    ).iloc[0]
    assert cell.share > 0.85  # one business alone holds more than k% of the cell
    plant = (
        "update table_suppression set suppressed = false, is_secondary = false, "
        f"status = 'published' where table_name = '{cell.table_name}' and wave = {cell.wave} "
        f"and row_label = '{cell.row_label}' and col_label = '{cell.col_label}'"
    )
    out, before, after = plant_and_rebuild(demo, "table_suppression", [plant])
    assert_gate_held(out, before, after, "published_cells_meet_dominance_rules")


def test_d_a_pattern_recoverable_from_the_margins_fails_the_audit(demo):
    _, _, res = demo
    tw = res.query(
        "select table_name, wave from table_suppression where is_secondary "
        "group by all order by count(*) desc limit 1"
    ).iloc[0]
    # publish the complementary cells: the primary cells are then recoverable from the margins
    plant = (
        "update table_suppression set suppressed = false, is_secondary = false, "
        f"status = 'published' where is_secondary and table_name = '{tw.table_name}' "
        f"and wave = {tw.wave}"
    )
    out, before, after = plant_and_rebuild(demo, "table_suppression", [plant])
    st = assert_gate_held(out, before, after, "suppressed_cells_are_protected")
    # the planted cells are safe ones: the rules on published cells still hold
    assert st.get("published_cells_meet_threshold_rule") == "pass"
    assert st.get("published_cells_meet_dominance_rules") == "pass"
    audit = out.query("select * from suppression_audit where not protected")
    assert len(audit) and (audit.status == "primary").all()


def test_e_real_rows_plus_tiny_noise_fail_the_closeness_check(demo):
    cols = ", ".join(
        "r.turnover * (1 + 1e-4 * (hash(r._row_id, i.implicate) % 1000) / 1000.0) + 0.01 "
        "as turnover"
        if c == "turnover"
        else f"r.{c}"
        for c in REAL_COLS
    )
    plant = [
        f"""
        create table planted as
        select {cols}, 1.0 as synth_weight,
            true as is_synthetic, i.implicate, run.synth_run_id,
            'hierarchical' as synth_method, s.support_class
        from synthesis_responses as r
        inner join cell_support as s on r.cell_id = s.cell_id and r.wave = s.wave
        cross join (select distinct implicate from synthetic_microdata) as i
        cross join (select min(synth_run_id) as synth_run_id from synthetic_microdata) as run
        """,
        "drop table synthetic_microdata",
        "alter table planted rename to synthetic_microdata",
    ]
    out, before, after = plant_and_rebuild(demo, "synthetic_microdata", plant)
    assert_gate_held(out, before, after, "disclosure_risk_within_thresholds")
    m = out.query("select * from disclosure_metrics")
    failed = set(m.loc[~m.passed, "metric"])
    # the released records are near-copies of respondents (the risk fit's attacks are upstream)
    assert "near_copy_rate" in failed, m


def test_f_columns_shuffled_independently_fail_dependence(demo):
    perms = "\n".join(
        f""", p_{c} as (
            select implicate, {c},
                row_number() over (partition by implicate order by hash(rn, '{c}')) as k
            from base
        )"""
        for c in OUTCOMES
    )
    joins = "\n".join(f"inner join p_{c} using (implicate, k)" for c in OUTCOMES)
    plant = [
        f"""
        create table planted as
        with base as (
            select *, row_number() over (order by implicate, cell_id, wave, unit_id) as rn
            from synthetic_microdata
        ),
        keyed as (
            select * exclude ({", ".join(OUTCOMES)}),
                row_number() over (partition by implicate order by rn) as k
            from base
        ){perms}
        select keyed.* exclude (rn, k), {", ".join(f"p_{c}.{c}" for c in OUTCOMES)}
        from keyed
        {joins}
        """,
        "drop table synthetic_microdata",
        "alter table planted rename to synthetic_microdata",
    ]
    out, before, after = plant_and_rebuild(demo, "synthetic_microdata", plant)
    assert_gate_held(out, before, after, "fidelity_within_thresholds")
    m = out.query("select * from fidelity_metrics")
    failed = set(m.loc[~m.passed, "metric"])
    assert {"fidelity_gate", "dependence_correlation_mean"} <= failed, m


def test_a_release_built_past_its_gate_tests_is_refused(demo):
    """A failing gate row planted in fidelity_metrics, then only the release rebuilt (`--select
    release_candidate+`, which runs no gate test): release_gates reads the gated tables as they
    stand, so release_candidate refuses and the release stays as it was. As a stored table
    release_gates kept the last passing build's rows, and this published a new release whose
    manifest said every gate passed."""
    work, vars_, res = demo
    here = work / "stale"
    here.mkdir(exist_ok=True)
    shutil.copy(res.db_path, here / "warehouse.duckdb")
    before = snapshot(here / "warehouse.duckdb")
    with duckdb.connect(str(here / "warehouse.duckdb")) as con:
        con.execute(
            "update fidelity_metrics set passed = false, status = 'fail' "
            "where rowid = (select min(rowid) from fidelity_metrics)"
        )
    out = run_dbt(here, vars=vars_, select="release_candidate+")
    assert not out.ok and "release refused: gate(s) ['fidelity']" in out.output, out.output[-3000:]
    assert snapshot(here / "warehouse.duckdb") == before


def test_suppressed_rows_give_their_reason_without_withheld_figures(demo):
    """A suppressed row's reason says why it was withheld, not the errors the method rule quoted
    (its RMSEs and phi are the withheld values); the run's manifest lands in ss_synth_run_dir."""
    _, vars_, res = demo
    rel = res.query(
        "select * from main_release.domain_estimates_release where method = 'suppressed'"
    )
    assert len(rel) > 100
    assert not rel.reason.str.contains("RMSE|phi =", regex=True).any()
    assert rel.reason.str.startswith(("withheld", "no estimate")).all(), rel.reason.unique()[:5]
    runs = Path(vars_["ss_synth_run_dir"])
    assert list(runs.glob("*.json")), runs
