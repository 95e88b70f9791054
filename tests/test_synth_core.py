"""The hierarchical synthesizer on planted worlds: determinism, rules, modes, proper
multiple synthesis, the per-cell function vs the batched path, manifest and errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from surveysynth.contract.rules import violations
from surveysynth.seeding import content_hash
from surveysynth.synthesis import fit as synth_fit
from surveysynth.synthesis.api import (
    SynthInputError,
    fit_model,
    make_cell_sampler,
    manifest,
    plan_records,
    spark_input,
    synthesize,
)
from surveysynth.synthesis.planted import planted_survey


def _sparse_world(seed: int = 0) -> dict:
    """Cells with 2..12 respondents (some sparse) and a few empty cells."""
    rng = np.random.default_rng(seed)
    n = rng.integers(0, 14, size=4 * 3 * 3)
    n[:3] = 0
    return planted_survey(n_regions=4, n_sectors=3, waves=2, n_per_cell=n, N_per_cell=60, seed=seed)


@pytest.fixture(scope="module")
def world() -> dict:
    return _sparse_world()


@pytest.fixture(scope="module")
def synthetic(world) -> pd.DataFrame:
    return synthesize(world["responses"], world["frame"], world["support"], world["config"])


def test_augment_covers_sparse_and_empty_cells_with_frame_units(world, synthetic):
    cfg, s = world["config"], world["support"]
    targets = s[s["support_class"].isin(["sparse", "empty"])]
    got = synthetic.groupby(["cell_id", "period", "implicate"]).size()
    assert set(synthetic["support_class"]) <= {"sparse", "empty"}
    assert "empty" in set(synthetic["support_class"])
    # every target cell x wave x implicate has records for its non-responding frame units
    exp = (targets["n_population"] - targets["n_respondents"]).to_numpy()
    idx = pd.MultiIndex.from_frame(targets[["cell_id", "period"]])
    for imp in range(1, cfg.m + 1):
        n = got.xs(imp, level="implicate").reindex(idx).to_numpy()
        assert np.array_equal(n, exp)
    # records are frame units that did not respond in that wave
    resp = set(zip(world["responses"]["unit"], world["responses"]["period"]))
    assert not any((u, p) in resp for u, p in zip(synthetic["unit"], synthetic["period"]))
    assert set(synthetic["unit"]) <= set(world["frame"]["unit"])
    # synth_weight sums to the non-respondents of each cell x wave, per implicate
    tot = synthetic.groupby(["cell_id", "period", "implicate"])["synth_weight"].sum()
    assert np.allclose(tot.xs(1, level="implicate").reindex(idx).to_numpy(), exp)
    assert synthetic["is_synthetic"].all()
    assert sorted(synthetic["implicate"].unique()) == list(range(1, cfg.m + 1))
    assert synthetic["synth_run_id"].nunique() == 1
    assert set(synthetic["synth_method"]) == {"hierarchical"}


def test_zero_business_rule_violations(world, synthetic):
    cfg = world["config"]
    assert len(synthetic) > 1000
    v = violations(synthetic, cfg.rules, cfg.outcomes)
    assert v.empty, v.head()
    # the rules actually fire (non-trading rows exist and all have zero sales)
    idle = synthetic["status"].isin(["paused", "closed"])
    assert idle.sum() > 0 and (synthetic.loc[idle, "sales"] == 0).all()
    assert synthetic["staff"].dtype == "Int64" and (synthetic["staff"].dropna() >= 0).all()


def test_same_seed_identical_other_seed_different(world, synthetic):
    again = synthesize(world["responses"], world["frame"], world["support"], world["config"])
    assert content_hash(again) == content_hash(synthetic)
    pd.testing.assert_frame_equal(again, synthetic)
    # input row order does not matter either
    shuffled = world["responses"].sample(frac=1.0, random_state=3)
    again2 = synthesize(shuffled, world["frame"], world["support"], world["config"])
    pd.testing.assert_frame_equal(
        again2.drop(columns="synth_run_id"), synthetic.drop(columns="synth_run_id")
    )
    other = synthesize(
        world["responses"], world["frame"], world["support"], world["config"].with_(seed=8)
    )
    assert content_hash(other) != content_hash(synthetic)
    assert other["synth_run_id"].iat[0] != synthetic["synth_run_id"].iat[0]


def test_per_cell_function_equals_batched_path(world, synthetic):
    """The pure per-cell function (what Spark runs) gives the batched path's rows exactly."""
    cfg = world["config"]
    r, f, s = world["responses"], world["frame"], world["support"]
    model = fit_model(r, f, s, cfg)
    sdf = spark_input(plan_records(r, f, s, cfg), model)
    fn = make_cell_sampler(model.spec)
    # shuffle rows: the function must not depend on row order within a group
    sdf = sdf.sample(frac=1.0, random_state=1)
    parts = [fn(g) for _, g in sdf.groupby(["cell_id", "period", "implicate"], sort=False)]
    per_cell = pd.concat(parts, ignore_index=True)
    key = ["cell_id", "period", "implicate", "unit"]
    a = per_cell.sort_values(key).reset_index(drop=True)
    b = synthetic.sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)


def test_per_cell_function_equals_batched_path_with_residual_bins(monkeypatch):
    """The same on a world large enough for the residuals' location bins (a numeric answer's
    draws read its bin and its cell's bin sd), and with an ordinal's rank as a predictor (the
    planted ordinals have fewer than fit.SCORE_MIN_LEVELS levels: the limit is lowered here so
    that the rank's columns go through both paths too)."""
    monkeypatch.setattr(synth_fit, "SCORE_MIN_LEVELS", 3)
    w = planted_survey(n_per_cell=60, seed=2)
    cfg = w["config"].with_(mode="replica")
    r, f, s = w["responses"], w["frame"], w["support"]
    model = fit_model(r, f, s, cfg)
    binned = [om.spec.name for om in model.spec.models if om.texture and len(om.texture.P) > 1]
    assert binned, "no outcome has residual bins: the world is too small for the test"
    assert any(src.kind == "score" for om in model.spec.models for src in om.sources)
    sdf = spark_input(plan_records(r, f, s, cfg), model).sample(frac=1.0, random_state=2)
    fn = make_cell_sampler(model.spec)
    parts = [fn(g) for _, g in sdf.groupby(["cell_id", "period", "implicate"], sort=False)]
    key = ["cell_id", "period", "implicate", "unit"]
    a = pd.concat(parts, ignore_index=True).sort_values(key).reset_index(drop=True)
    b = synthesize(r, f, s, cfg).sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)


def test_replica_mode_copies_the_survey_shape(world):
    cfg = world["config"].with_(mode="replica", m=2)
    r = world["responses"]
    out = synthesize(r, world["frame"], world["support"], cfg)
    assert len(out) == 2 * len(r)
    per = out[out["implicate"] == 1].groupby(["cell_id", "period"]).size()
    real = r.groupby(["cell_id", "period"]).size()
    pd.testing.assert_series_equal(per.sort_index(), real.sort_index(), check_names=False)
    w_syn = out[out["implicate"] == 1].groupby(["cell_id", "period"])["synth_weight"].sum()
    w_real = r.groupby(["cell_id", "period"])["weight"].sum()
    assert np.allclose(w_syn.sort_index().to_numpy(), w_real.sort_index().to_numpy())
    assert not set(out["unit"]) & set(r["unit"])  # synthetic ids, no link to real units
    assert out["unit"].str.startswith("syn-").all()
    assert violations(out, cfg.rules, cfg.outcomes).empty


def test_cap_samples_frame_units_and_scales_weights(world):
    cfg = world["config"].with_(max_records_per_cell=7, m=2)
    out = synthesize(world["responses"], world["frame"], world["support"], cfg)
    sizes = out.groupby(["cell_id", "period", "implicate"]).size()
    assert sizes.max() == 7
    s = world["support"]
    t = s[s["support_class"].isin(["sparse", "empty"])].set_index(["cell_id", "period"])
    tot = out[out["implicate"] == 1].groupby(["cell_id", "period"])["synth_weight"].sum()
    exp = (t["n_population"] - t["n_respondents"]).reindex(tot.index)
    assert np.allclose(tot.to_numpy(), exp.to_numpy())
    # same units in every implicate
    u1 = set(out.loc[out["implicate"] == 1, "unit"])
    u2 = set(out.loc[out["implicate"] == 2, "unit"])
    assert u1 == u2


def test_between_implicate_variance_positive_and_shrinks_with_n():
    """Proper synthesis: implicates disagree by the posterior spread of the cell's
    parameters, which shrinks as the cell's own sample grows (n = 2, 20, 200). Planted
    cells differ a lot beyond their main effects (cell_sd), so the pooled model cannot
    pin a 2-respondent cell down."""
    n = np.tile([2, 20, 200], 10)  # 10 regions x 3 bands, one sector
    w = planted_survey(
        n_regions=10,
        n_sectors=1,
        sizes=("a", "b", "c"),
        waves=1,
        n_per_cell=n,
        N_per_cell=2000,
        seed=11,
        cell_sd=1.5,
    )
    s = w["support"].assign(support_class="sparse")  # synthesize every cell
    cfg = w["config"].with_(m=10, item_missing=False)
    out = synthesize(w["responses"], w["frame"], s, cfg)
    out = out.merge(s[["cell_id", "n_respondents"]], on="cell_id")
    pos = out["sales"] > 0
    series = {
        "flag": out["flag"].astype(float),
        "status_trading": (out["status"] == "trading").astype(float),
        "log_sales_if_positive": np.log(out["sales"].where(pos).astype(float)),
    }
    for col, x in series.items():
        m = out.assign(x=x).groupby(["cell_id", "n_respondents", "implicate"])["x"].mean()
        b = m.groupby(level=["cell_id", "n_respondents"]).var(ddof=1)
        b = b.groupby(level="n_respondents").mean()
        assert (b > 0).all(), (col, b)
        assert b.loc[2] > b.loc[200] and b.loc[20] > b.loc[200], (col, b)
        # the first outcome in synthesis order is a cell parameter plus the register; later
        # ones also carry the (cell-size-free) uncertainty of the slopes on earlier answers
        if col == "status_trading":
            assert b.loc[2] > 5 * b.loc[200], (col, b)
        if col != "log_sales_if_positive":
            assert b.loc[2] > b.loc[20], (col, b)


def test_shrinkage_small_cells_lean_on_neighbours(world):
    model = fit_model(world["responses"], world["frame"], world["support"], world["config"])
    p = model.params.set_index(["cell_id", "period"])
    s = world["support"].set_index(["cell_id", "period"]).reindex(p.index)
    n = s["n_respondents"].to_numpy()
    diag = model.diagnostics.set_index("component")
    col = "status__cat0"
    psi = p[f"p__{col}__psi"].to_numpy()
    s2 = diag.loc[col, "sigma_v2"]
    g = np.where(np.isfinite(psi), s2 / (s2 + np.nan_to_num(psi, nan=1.0)), 0.0)
    has = n > 0
    # gamma (weight on the cell's own estimate) grows with n; no data, no own estimate
    rho = pd.Series(g[has]).corr(pd.Series(n[has]), method="spearman")
    assert rho > 0.5
    assert (g[~has] == 0).all()
    assert (model.params.filter(like="__priorvar") >= 0).all().all()


def test_manifest_has_provenance(world, synthetic):
    man = synthetic.attrs["surveysynth_manifest"]
    for k in (
        "synth_run_id",
        "seed",
        "synth_method",
        "parameters",
        "n_responses",
        "hash_responses",
        "hash_frame",
        "hash_support",
        "versions",
        "timings",
    ):
        assert k in man
    assert man["synth_run_id"] == synthetic["synth_run_id"].iat[0]
    row = manifest(
        world["responses"], world["frame"], world["support"], world["config"], as_frame=True
    )
    assert len(row) == 1 and row["synth_run_id"].iat[0] == man["synth_run_id"]


def test_errors_name_the_column(world):
    r = world["responses"].copy()
    r.loc[r.index[0], "status"] = "bankrupt"
    with pytest.raises(SynthInputError, match="status.*bankrupt"):
        synthesize(r, world["frame"], world["support"], world["config"])
    with pytest.raises(SynthInputError, match="weight"):
        synthesize(
            world["responses"].assign(weight=-1.0),
            world["frame"],
            world["support"],
            world["config"],
        )
    with pytest.raises(SynthInputError, match="missing column"):
        synthesize(
            world["responses"].drop(columns="flag"),
            world["frame"],
            world["support"],
            world["config"],
        )


def test_no_frame_totals_only(world):
    """Without a frame, records carry synthetic ids and no auxiliaries; weights add up to
    the cell's non-respondents from the support's population counts."""
    cfg = world["config"].with_(m=2)
    out = synthesize(world["responses"], None, world["support"], cfg)
    assert out["unit"].str.startswith("syn-").all()
    assert out["reg_sales"].isna().all()
    s = world["support"]
    t = s[s["support_class"].isin(["sparse", "empty"])].set_index(["cell_id", "period"])
    tot = out[out["implicate"] == 1].groupby(["cell_id", "period"])["synth_weight"].sum()
    exp = (t["n_population"] - t["n_respondents"]).reindex(tot.index)
    assert np.allclose(tot.to_numpy(), exp.to_numpy())
    assert violations(out, cfg.rules, cfg.outcomes).empty


def test_unit_ids_read_as_floats_still_join_the_frame(world):
    """Ids of the same units as float64 in the responses and int64 in the frame (a column read
    from a CSV) join: every respondent gets its register value, and no record is planned for a
    unit that answered that wave. As text they had been '1.0' and '1': none joined."""
    from surveysynth.contract.inputs import prepare_inputs

    cfg = world["config"]
    f = world["frame"].assign(unit=lambda d: d["unit"].str[1:].astype("int64"))
    r = world["responses"].assign(unit=lambda d: d["unit"].str[1:].astype("float64"))
    inp = prepare_inputs(r, f, world["support"], cfg)
    assert inp.responses["reg_sales"].notna().all()
    plan = plan_records(r, f, world["support"], cfg)
    answered = set(zip(r["unit"].astype("int64").astype(str), r["period"]))
    assert not any(k in answered for k in zip(plan["unit"], plan["period"]))


def test_frame_cells_missing_from_the_support_are_an_error(world):
    """A support map built from the responses alone leaves out the empty cells: their frame
    units would get no records, silently. It is an error that says how to build the map."""
    s = world["support"]
    empty = s.loc[s["n_respondents"] == 0, "cell_id"].iloc[0]
    with pytest.raises(SynthInputError, match="not in the support map.*support_table"):
        synthesize(world["responses"], world["frame"], s[s["cell_id"] != empty], world["config"])


def test_a_rule_on_a_cell_dimension_applies_before_later_answers(world):
    """A rule conditioned on a cell dimension (region r00 is closed) sets its target while the
    record is drawn, so an exact relation copied from it (a status code) and the later answers
    read the rule's value; it had waited for the final enforce, and the codes kept the value
    the rule overwrote."""
    cfg0, r = world["config"], world["responses"].copy()
    code = {"trading": "T", "paused": "P", "closed": "C"}
    r["status_code"] = r["status"].map(code)
    spec = {o.name: o for o in cfg0.outcomes}
    outcomes = {
        "status": spec["status"],
        "status_code": {"type": "categorical", "levels": ["T", "P", "C"]},
        **{k: v for k, v in spec.items() if k != "status"},
    }
    rule = {
        "name": "r00_closed",
        "when": {"region": ["r00"]},
        "then": {"status": {"equals": "closed"}},
    }
    cfg = cfg0.with_(
        outcomes=outcomes, derived=(("status_code", "status"),), rules=[*cfg0.rules, rule]
    )
    out = synthesize(r, world["frame"], world["support"], cfg)
    r00 = out[out["region"] == "r00"]
    assert len(r00) and (r00["status"] == "closed").all()
    assert (r00["status_code"] == "C").all(), r00["status_code"].value_counts(dropna=False)
    assert (out["status"].map(code).fillna("-") == out["status_code"].fillna("-")).all()
    assert violations(out, cfg.rules, cfg.outcomes).empty
