"""A component's structural zeros and its constant on the remaining rows: the constant covers only
the rows no structural zero fixes (fit._targets; the sampler applies constraints in order, a later
one overriding an earlier where it holds)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from surveysynth.contract.config import SynthConfig
from surveysynth.contract.inputs import support_table
from surveysynth.synthesis.api import synthesize

# kind a: always exactly one employee; kind c: never; kind b: too few rows to call a zero, and
# none has one employee (the constant 0 of the rows left free)
ROWS = {"a": 40, "b": 5, "c": 100}


def _world(seed: int = 5) -> dict:
    rng = np.random.default_rng(seed)
    kind = np.repeat(list(ROWS), list(ROWS.values()))
    staff = np.where(kind == "a", 1, np.round(np.exp(rng.normal(3.0, 0.6, kind.size)) + 2))
    n = kind.size
    responses = pd.DataFrame(
        {
            "unit": [f"u{i:04d}" for i in range(n)],
            "period": 1,
            "region": np.tile(["r0", "r1", "r2"], n // 3 + 1)[:n],
            "weight": 1.0,
            "kind": kind,
            "staff": pd.array(staff.astype(int), dtype="Int64"),
        }
    )
    frame = pd.DataFrame(
        {"unit": [f"f{i:04d}" for i in range(300)], "region": np.repeat(["r0", "r1", "r2"], 100)}
    )
    frame = pd.concat([frame, responses[["unit", "region"]]], ignore_index=True)
    config = SynthConfig.from_vars(
        {
            "ss_unit_id": "unit",
            "ss_wave": "period",
            "ss_cell_dims": ["region"],
            "ss_design_weight": "weight",
            "ss_outcomes": {
                "kind": {"type": "categorical", "levels": list(ROWS)},
                "staff": {"type": "count", "min": 0},
            },
            "ss_seed": 3,
            "ss_synth_mode": "replica",
        }
    )
    support = support_table(responses, config, frame=frame)
    return {"responses": responses, "frame": frame, "support": support, "config": config}


def test_structural_one_is_not_overridden_by_the_free_rows_constant():
    w = _world()
    syn = synthesize(w["responses"], w["frame"], w["support"], w["config"])
    a = syn[syn["kind"] == "a"]
    assert len(a) > 20
    assert (a["staff"] == 1).mean() > 0.9, a["staff"].value_counts().head()
    assert (syn.loc[syn["kind"] == "c", "staff"] != 1).all()
