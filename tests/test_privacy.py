"""DP mode (surveysynth.privacy, docs/privacy.md): the fit sees noisy statistics only, each
measurement's sensitivity holds for a planted change of one unit, the ledger's total is opendp's
composition of the mechanisms, and the build gate stops an over-budget run; the small demo world
builds in DP mode."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from harness import demo_vars, generate_demo, run_dbt
from release_checks import RELEASE_SCHEMA, release_problems
from small_survey import small_world

from surveysynth.contract.config import SynthConfig
from surveysynth.privacy import api as dp_api
from surveysynth.privacy import measure as M
from surveysynth.privacy.ledger import gaussian
from surveysynth.privacy.register import RegisterRanks
from surveysynth.privacy.register import scores as aux_scores
from surveysynth.synthesis.api import support_table

BOUNDS = {"turnover": [0, 1e10], "employees": [0, 1e6]}
#: the small world's design: two waves
DP = {
    "ss_dp_bounds": BOUNDS,
    "ss_dp_pool_by": ["size_band"],
    "ss_dp_epsilon": 2.0,
    "ss_dp_waves": [1, 2],
}
#: the demo's design: four waves
DEMO_WAVES = [1, 2, 3, 4]


@pytest.fixture(scope="module")
def world():
    data = small_world()
    import yaml
    from harness import DEMO_VARS_FILE, ROOT

    cfg = SynthConfig.from_dbt_project(str(ROOT / "dbt_project.yml"), str(DEMO_VARS_FILE))
    r = pd.read_parquet(data / "responses.parquet")
    f = pd.read_parquet(data / "frame.parquet")
    assert yaml  # the demo configuration is YAML
    return cfg, r, f, support_table(r, cfg, frame=f)


def _exact(r, support, cfg, st, centre=None, register=None):
    """Every exact query (before noise) with its declared per-row bound (the register's
    within-cell scores join the answers' when ``register`` is given)."""
    cells = M.public_cells(dp_api.public_support(r, support, cfg, st.waves), cfg)
    group, n_g = M.groups_of(cells, cfg, st.pool_by)
    margins, _ = M.margins_of(cells, cfg)
    k = M.row_index(r.reset_index(drop=True), cells, cfg)
    out = {}
    scores = []
    for o in cfg.outcomes:
        code, v = M.codes_of(r.reset_index(drop=True), o, st.bounds)
        L = M.n_codes(o)
        out[f"counts:{o.name}"] = M.query_counts(k, code, len(cells), L)
        out[f"mcounts:{o.name}"] = M.query_mcounts(k, code, margins, L)
        c = None
        if o.is_numeric:
            lr = np.log1p(st.bounds[o.name][1] - st.bounds[o.name][0])
            out[f"logsum:{o.name}"] = M.query_logsum(k, code, v, len(cells), lr)
            out[f"mlogsum:{o.name}"] = M.query_mlogsum(k, code, v, margins, lr)
            c = np.full(len(cells), lr / 2) if centre is None else centre
            out[f"resid:{o.name}"] = M.query_resid(k, code, v, c, group, n_g)
            c = c[np.maximum(k, 0)]
        scores.append(M.score_of(o, code, v, c, np.full(len(code), 0.7)))
    if register is not None:
        scores += list(aux_scores(register.u(r.reset_index(drop=True))).T)
    out["scores:all"] = M.query_scores(k, np.column_stack(scores), group, n_g)
    return out, int(cells[cfg.wave].nunique())


def test_one_unit_changes_each_query_within_its_sensitivity(world):
    """Planted: one unit removed altogether, and its answers pushed far beyond the clamps (and its
    levels flipped); every exact query moves by at most the sensitivity the ledger declares
    (sqrt(waves) x the per-row bound) for the removal, twice that for the change."""
    cfg, r, f, support = world
    st = M.DPSettings.from_vars(DP, cfg)
    register = RegisterRanks(f, cfg)
    assert register.width == 2
    base, waves = _exact(r, support, cfg, st, register=register)
    unit = r["business_id"].value_counts().index[0]  # a unit answering in every wave
    rows = r["business_id"] == unit
    assert rows.sum() == waves
    bent = r.copy()
    bent.loc[rows, "turnover"] = 1e15
    bent.loc[rows, "employees"] = -5e9
    bent.loc[rows, "trading_status"] = "closed"
    bent.loc[rows, "applied_finance"] = 1 - bent.loc[rows, "applied_finance"].fillna(0)
    # the ledger's neighbours differ by one unit added or removed (all its waves); a changed unit
    # is a removal plus an addition, so at most twice the sensitivity
    for other, times in ((r[~rows], 1.0), (bent, 2.0)):
        moved, _ = _exact(other, support, cfg, st, register=register)
        for name, (vec, bound) in base.items():
            diff = float(np.linalg.norm(moved[name][0] - vec))
            assert diff <= times * np.sqrt(waves) * bound + 1e-6, (name, diff, bound)
            assert diff > 0 or times > 1, name


def test_the_fit_receives_noisy_statistics_only(world, monkeypatch):
    """The DP fit is called with NoisyStats and the config, nothing else; its tables hold public
    keys only; measuring the same data twice gives different numbers (the noise)."""
    cfg, r, f, support = world
    seen = []
    real = dp_api.fit_dp

    def spy(*args, **kwargs):
        seen.append((args, kwargs))
        return real(*args, **kwargs)

    monkeypatch.setattr(dp_api, "fit_dp", spy)
    st = M.DPSettings.from_vars(DP, cfg)
    out, _, _ = dp_api.dp_synthesize(r, f, support, cfg, st)
    ((args, kwargs),) = seen
    assert not kwargs and len(args) == 2
    stats, config = args
    assert isinstance(stats, M.NoisyStats) and config is cfg
    frames = [v for v in vars(stats).values() if isinstance(v, pd.DataFrame)]
    assert len(frames) == 1
    outcome_cols = {o.name for o in cfg.outcomes} | {"business_id", "design_weight"}
    assert not outcome_cols & set(frames[0].columns)
    assert set(frames[0].columns) == {"cell_id", *cfg.cell_dims, cfg.wave, "n_population"}
    again = M.measure(r, support, cfg, st)
    assert not np.allclose(again.counts["turnover"], stats.counts["turnover"])
    assert len(out) > 0 and out["synth_method"].eq("dp_fay_herriot").all()
    assert (out["implicate"].nunique() == cfg.m) and out["is_synthetic"].all()


def test_ledger_total_is_the_composed_budget(world):
    """The ledger's total rho is opendp's composition of the mechanisms at their sensitivities,
    its epsilon opendp's conversion at delta, and it spends the budget asked for."""
    import opendp.prelude as dp

    dp.enable_features("contrib")
    cfg, r, _, support = world
    st = M.DPSettings.from_vars(DP, cfg)
    stats = M.measure(r, support, cfg, st)
    from surveysynth.privacy.ledger import ledger_frame

    led = ledger_frame(stats.ledger, st.delta)
    rows, total = led[~led["is_total"]], led[led["is_total"]].iloc[0]
    assert len(rows) == len(M.measurement_plan(cfg))
    # each mechanism rescaled to sensitivity 1 has the same rho: compose them on one domain
    mechs = [gaussian(s / d) for s, d in zip(rows["noise_scale"], rows["sensitivity"])]
    composed = dp.c.make_composition(mechs)
    assert total["rho"] == pytest.approx(composed.map(1.0), rel=1e-12)
    approx = dp.c.make_fix_delta(dp.c.make_zCDP_to_approxDP(composed), st.delta)
    assert total["epsilon"] == pytest.approx(approx.map(1.0)[0], rel=1e-9)
    assert total["epsilon"] <= st.epsilon and total["epsilon"] == pytest.approx(st.epsilon, 1e-6)
    assert (rows["rho"] > 0).all() and rows["mechanism"].str.contains("opendp").all()


def _plan_of(out: pd.DataFrame, cfg) -> pd.DataFrame:
    keys = ["business_id", cfg.wave, "cell_id", "synth_weight", "implicate", "support_class"]
    return out[keys].sort_values(keys[:2] + ["implicate"]).reset_index(drop=True)


def test_the_plan_reads_no_response(world):
    """The public plan: every frame cell x every wave of ss_dp_waves gets records for all its
    units (up to the cap), whoever answered, and the records carry no support class. Planted:
    one unit's rows removed, and every respondent of the busiest cell removed (the cell turned
    empty); the plan (which units, waves, weights) and every sensitivity are the same. Before,
    the plan followed the respondents (only sparse and empty cells, only non-respondents) and the
    waves came from the responses."""
    cfg, r, f, support = world
    st = M.DPSettings.from_vars(DP, cfg)
    pub = dp_api.public_support(r, support, cfg, st.waves)
    base = dp_api.plan_dp(r, f, pub, cfg)
    unit = r["business_id"].value_counts().index[0]
    cells = support.groupby("cell_id")["n_respondents"].sum()
    busiest = cells.idxmax()
    assert cells[busiest] >= 3  # its respondents removed: the cell turns empty
    in_cell = M.make_cell_id(r, list(cfg.cell_dims)) == busiest
    for other in (r[r["business_id"] != unit], r[~in_cell]):
        again = dp_api.plan_dp(other, f, dp_api.public_support(other, support, cfg, st.waves), cfg)
        pd.testing.assert_frame_equal(_plan_of(again, cfg), _plan_of(base, cfg))
    n_frame = f.groupby(M.make_cell_id(f, list(cfg.cell_dims))).size()
    per_cell = base[base["implicate"] == 1].groupby(["cell_id", cfg.wave])["synth_weight"].sum()
    assert len(per_cell) == len(n_frame) * 2  # every frame cell, both waves
    expect = n_frame.reindex(per_cell.index.get_level_values(0)).to_numpy()
    assert np.allclose(per_cell.to_numpy(), expect)  # the records stand for all the cell's units
    # one wave's answers only: the sensitivities still count the design's two waves
    one = M.measure(r[r[cfg.wave] == 1], pub, cfg, st)
    both = M.measure(r, pub, cfg, st)
    assert [x.sensitivity for x in one.ledger] == [x.sensitivity for x in both.ledger]
    out, _, _ = dp_api.dp_synthesize(r, f, support, cfg, st)
    assert out["support_class"].eq(dp_api.PUBLIC_CLASS).all()


def test_estimates_read_the_records_of_nonrespondents(world):
    """The augmented estimates' reading of the public plan's records (nonrespondent_records, as
    int_augmented_units in DP mode): no record of a unit that answered in its wave, and each
    cell x wave x implicate's records weigh up to its N - n non-respondents, so with the
    respondents the cell holds its N units."""
    cfg, r, f, support = world
    out, _, _ = dp_api.dp_synthesize(r, f, support, cfg, M.DPSettings.from_vars(DP, cfg))
    read = dp_api.nonrespondent_records(out, r, support, cfg)
    answered = set(zip(r["business_id"].astype(str), r[cfg.wave].astype(str)))
    own = set(zip(read["business_id"].astype(str), read[cfg.wave].astype(str)))
    assert not own & answered and len(read) < len(out)
    tot = read.groupby(["cell_id", cfg.wave, "implicate"])["synth_weight"].sum().reset_index()
    tot = tot.merge(support[["cell_id", cfg.wave, "n_population", "n_respondents"]])
    gap = tot["n_population"] - tot["n_respondents"]
    assert np.allclose(tot["synth_weight"], gap)
    due = support[support["n_population"] > support["n_respondents"]]
    assert len(tot) == len(due) * cfg.m  # every cell x wave with a non-respondent has records


def test_the_design_waves_are_required_and_checked(world):
    """DP mode without ss_dp_waves, with a response in a wave not listed, or in replica mode is
    an error, never a plan built from the responses."""
    from dataclasses import replace

    cfg, r, f, support = world
    with pytest.raises(Exception, match="ss_dp_waves"):
        M.DPSettings.from_vars({k: v for k, v in DP.items() if k != "ss_dp_waves"}, cfg)
    st = M.DPSettings.from_vars({**DP, "ss_dp_waves": [1]}, cfg)
    with pytest.raises(Exception, match="not in ss_dp_waves"):
        dp_api.dp_synthesize(r, f, support, cfg, st)
    with pytest.raises(Exception, match="replica"):
        M.DPSettings.from_vars(DP, replace(cfg, mode="replica"))


def test_bounds_come_from_vars_never_the_data(world):
    cfg, *_ = world
    with pytest.raises(Exception, match="ss_dp_bounds"):
        M.DPSettings.from_vars({"ss_dp_bounds": {"turnover": [0, 1e10]}}, cfg)


#: the fidelity gate's nodes: the only ones a DP build may fail (its records are judged against the
#: respondents, and the gate is not calibrated to the DP noise: docs/privacy.md)
FIDELITY_NODES = {"fidelity_within_thresholds"}


def _dp_vars(data, work, **extra):
    return demo_vars(
        data,
        work,
        ss_privacy_mode="dp",
        **{"ss_backtest_enabled": False, **DP, **extra},
    )


def test_small_world_builds_in_dp_mode_and_records_the_budget(tmp_path):
    """The small world in DP mode: the synthesizer, the ledger and its gate build and pass, and
    the report shows the ledger. Known gap (docs/privacy.md): the fidelity gate, which compares
    the records with the real respondents, fails the DP records at this size, so the release is
    withheld; this test pins that it is the only failing node."""
    data = small_world()
    res = run_dbt(tmp_path / "dp", vars=_dp_vars(data, tmp_path / "dp"))
    st = res.statuses()
    for node in ("synthetic_microdata", "privacy_ledger", "privacy_budget_within_limits"):
        assert st.get(node) in ("success", "pass"), (node, st.get(node), res.output[-3000:])
    failing = {k for k, v in st.items() if v in ("error", "fail")}
    assert failing <= FIDELITY_NODES, failing
    led = res.query("select * from privacy_ledger")
    total = led[led["is_total"]].iloc[0]
    assert total["epsilon"] == pytest.approx(2.0, rel=1e-6) and total["epsilon_limit"] == 2.0
    syn = res.query("select distinct synth_run_id, synth_method from synthetic_microdata")
    assert syn["synth_method"].tolist() == ["dp_fay_herriot"]
    assert led["synth_run_id"].eq(syn["synth_run_id"][0]).all()
    from surveysynth.report import build_report

    html = build_report(res.db_path, tmp_path / "report.html").read_text()
    assert "Differential privacy ledger" in html and "logsum:turnover" in html
    assert "epsilon = 2" in html
    assert "Privacy-utility trade-off" in html and "eval_dp.py" in html


def test_the_report_marks_the_builds_epsilon_in_the_utility_table():
    """The privacy-utility table ships with the package; the report marks the row of the build's
    epsilon (and none for an epsilon the table does not hold)."""
    from surveysynth.report.sections_privacy import utility, utility_table

    doc = utility_table()
    assert doc is not None and doc["rows"], "surveysynth/privacy/utility_demo.json is missing"
    eps = [r["epsilon"] for r in doc["rows"] if r["method"] == "dp"]
    html = utility(float(eps[-1]))
    assert html.count("epsilon of this build") == 1
    assert "epsilon of this build" not in utility(123.0)


def test_demo_builds_in_dp_mode_and_publishes_only_past_every_gate(tmp_path):
    """The demo world (seed 42) in DP mode with docs/privacy.md's vars, epsilon 8: the records,
    the ledger and the budget gate build and pass; the only node that may fail is the fidelity
    gate (the records judged against the respondents, not calibrated to the DP noise); when it
    fails nothing is published, and when it passes the release is published with the budget
    spent in its manifest. With the public plan the gate judges every cell, and it failed 1 of
    3 such builds measured (the employees' mean: the log-normal misses the largest businesses'
    tail; docs/privacy.md), so publishing is not asserted; opendp draws fresh noise each build."""
    data = generate_demo(tmp_path / "data", "--seed", "42")
    work = tmp_path / "dp"
    res = run_dbt(
        work,
        vars=_dp_vars(
            data, work, ss_dp_epsilon=8.0, ss_backtest_enabled=True, ss_dp_waves=DEMO_WAVES
        ),
    )
    st = res.statuses()
    for node in ("synthetic_microdata", "privacy_ledger", "privacy_budget_within_limits"):
        assert st.get(node) in ("success", "pass"), (node, st.get(node), res.output[-3000:])
    failed = {k for k, v in st.items() if v in ("fail", "error")}
    assert failed <= FIDELITY_NODES, (failed, res.output[-3000:])
    syn = res.query("select distinct synth_method, support_class from synthetic_microdata")
    assert syn["synth_method"].tolist() == ["dp_fay_herriot"]
    assert syn["support_class"].tolist() == ["public_plan"]
    if failed:
        assert all(st.get(t) == "skipped" for t in ("release_gates", "release_publish")), st
        assert release_problems(res.db_path) != [], "a release was published past a failed gate"
        return
    unexpected = {k: v for k, v in st.items() if v not in ("success", "pass", "no-op")}
    assert not unexpected, unexpected
    assert release_problems(res.db_path) == []
    man = res.query(f'select privacy_budget from "{RELEASE_SCHEMA}".release_manifest')
    budget = json.loads(man["privacy_budget"][0])
    assert budget["mode"] == "dp" and budget["epsilon"] == pytest.approx(8.0, rel=1e-6)


def test_over_budget_fails_the_build(tmp_path):
    """Measurements calibrated to epsilon 3 against a limit of 2: the gate fails dbt build."""
    data = small_world()
    work = tmp_path / "over"
    res = run_dbt(
        work,
        vars=_dp_vars(data, work, ss_dp_spend_epsilon=3.0),
        select="+privacy_ledger",
    )
    assert not res.ok
    st = res.statuses()
    assert st.get("privacy_budget_within_limits") == "fail", st
    assert "over the limit ss_dp_epsilon" in res.output
