"""A differently shaped survey synthesizes by config alone: dims [county, farm_type],
wave 'year', outcomes yield_t (continuous) and irrigated (binary), no auxiliaries, no
design weight column, no frame (population totals only)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from surveysynth.contract.rules import violations
from surveysynth.synthesis.api import (
    SynthConfig,
    support_table,
    synthesize,
    weighted_cell_estimates,
)

VARS = {
    "ss_unit_id": "holding",
    "ss_wave": "year",
    "ss_cell_dims": ["county", "farm_type"],
    "ss_design_weight": None,
    "ss_outcomes": {
        "yield_t": {"type": "continuous", "min": 0},
        "irrigated": {"type": "binary"},
    },
    "ss_frame": None,
    "ss_frame_auxiliaries": [],
    "ss_seed": 99,
    "ss_synth_m": 4,
    "ss_synth_rules": [
        {
            "name": "fallow_not_irrigated",
            "when": {"farm_type": ["fallow"]},
            "then": {"irrigated": {"equals": 0}},
        },
    ],
}


def _farm_world(seed: int = 5):
    rng = np.random.default_rng(seed)
    counties = [f"county_{i}" for i in range(8)]
    types = ["arable", "dairy", "fallow"]
    cells = pd.MultiIndex.from_product([counties, types], names=["county", "farm_type"]).to_frame(
        index=False
    )
    cells["n_farms"] = rng.integers(50, 400, len(cells))
    c_eff = dict(zip(counties, rng.normal(0, 0.3, 8)))
    t_eff = {"arable": 1.5, "dairy": 0.8, "fallow": -1.0}
    cells["mu"] = cells["county"].map(c_eff) + cells["farm_type"].map(t_eff)
    cells["p_irr"] = np.where(
        cells["farm_type"] == "fallow",
        0.0,
        1 / (1 + np.exp(-(cells["county"].map(c_eff) * 3 - 0.5))),
    )
    rows = []
    for year in (2021, 2022, 2023):
        n = rng.integers(0, 25, len(cells))
        n[:2] = [0, 2]  # one empty and one very sparse cell
        rep = cells.loc[cells.index.repeat(n)].reset_index(drop=True)
        rep["year"] = year
        rep["holding"] = [f"h{year}_{i:05d}" for i in range(len(rep))]
        y = np.exp(rep["mu"] + rng.normal(0, 0.4, len(rep)))
        rep["yield_t"] = np.where(rng.random(len(rep)) < 0.05, 0.0, np.round(y, 2))
        rep["irrigated"] = (rng.random(len(rep)) < rep["p_irr"]).astype(int)
        rows.append(rep[["holding", "year", "county", "farm_type", "yield_t", "irrigated"]])
    return pd.concat(rows, ignore_index=True), cells


def test_other_dataset_synthesizes_by_config_alone():
    responses, cells = _farm_world()
    cfg = SynthConfig.from_vars(VARS)
    totals = cells[["county", "farm_type", "n_farms"]]
    support = support_table(responses, cfg, totals=totals, count_column="n_farms")
    assert {"empty", "sparse"} <= set(support["support_class"])

    out = synthesize(responses, None, support, cfg)

    expected_cols = [
        "holding",
        "year",
        "county",
        "farm_type",
        "cell_id",
        "yield_t",
        "irrigated",
        "synth_weight",
        "is_synthetic",
        "implicate",
        "synth_run_id",
        "synth_method",
        "support_class",
    ]
    assert list(out.columns) == expected_cols
    assert set(out["support_class"]) <= {"sparse", "empty"}
    assert sorted(out["implicate"].unique()) == [1, 2, 3, 4]
    assert violations(out, cfg.rules, cfg.outcomes).empty
    assert out.loc[out["farm_type"] == "fallow", "irrigated"].dropna().eq(0).all()
    assert (out["yield_t"].dropna() >= 0).all()
    # every sparse/empty cell x year is covered, weights add up to the non-respondents
    tgt = support[support["support_class"].isin(["sparse", "empty"])]
    got = out[out["implicate"] == 1].groupby(["cell_id", "year"])["synth_weight"].sum()
    exp = (
        tgt.set_index(["cell_id", "year"])["n_population"]
        - tgt.set_index(["cell_id", "year"])["n_respondents"]
    ).reindex(got.index)
    assert len(got) == len(tgt)
    assert np.allclose(got.to_numpy(), exp.to_numpy())
    # the synthetic cell means follow the planted farm-type structure
    est = weighted_cell_estimates(out, cfg, "synth_weight", ["farm_type"])
    mean_yield = est[est["indicator"] == "yield_t"].set_index("farm_type")["estimate"]
    assert mean_yield["arable"] > mean_yield["dairy"] > mean_yield["fallow"]
    # replica mode works on the same config
    rep = synthesize(responses, None, support, cfg.with_(mode="replica", m=1))
    assert len(rep) == len(responses)
    assert violations(rep, cfg.rules, cfg.outcomes).empty
