"""The gates read their statistics against real-vs-real references, so on real tables (Debian's
R data packages, scripts/eval/real_data.py):

- fresh real rows from the same population pass the fidelity gate, and pass the disclosure attacks;
- a verbatim copy of the rows the synthesizer saw fails the disclosure gate (and passes fidelity,
  which is not its job to catch);

at the full table size and at about 200 responses. The tables are split at random by unit into
the rows the synthesizer saw (train), the holdout, and fresh rows that stand in for the records
of a perfect synthesizer."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from surveysynth.checks.fidelity_gate import fidelity_gate
from surveysynth.checks.risk_gate import disclosure_gate

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts" / "eval"))
from real_data import load


def _eusilc() -> tuple[pd.DataFrame, dict]:
    d = load("eusilc")
    # the unit is the household: its members share eqIncome, hsize and the region
    d = d.assign(unit_id=d["db030"].astype(str), weight=d["rb050"].astype(float))
    d["pl030"] = d["pl030"].fillna("none")
    v = {
        "ss_cell_dims": ["db040", "rb090"],
        "ss_outcomes": {
            "age": {"type": "count", "min": 0},
            "hsize": {"type": "count", "min": 1},
            "pl030": {"type": "categorical", "levels": sorted(d["pl030"].unique())},
            "eqIncome": {"type": "continuous"},
            "py010n": {"type": "continuous"},
        },
        "ss_quasi_identifiers": ["db040", "rb090", "age", "hsize"],
        "ss_sensitive": ["eqIncome", "pl030"],
        "ss_fidelity_regression": {"y": "eqIncome", "x": ["age"]},
    }
    return d, v


def _cps() -> tuple[pd.DataFrame, dict]:
    d = load("CPS1988")
    d = d.assign(unit_id=np.arange(len(d)).astype(str), weight=1.0)
    v = {
        "ss_cell_dims": ["region", "smsa"],
        "ss_outcomes": {
            "wage": {"type": "continuous", "min": 0},
            "education": {"type": "count", "min": 0},
            "experience": {"type": "count"},
            "ethnicity": {"type": "categorical", "levels": ["afam", "cauc"]},
            "parttime": {"type": "categorical", "levels": ["no", "yes"]},
        },
        "ss_quasi_identifiers": ["region", "smsa", "education", "experience"],
        "ss_sensitive": ["wage", "parttime"],
        "ss_fidelity_regression": {"y": "wage", "x": ["education"], "log_y": True},
    }
    return d, v


TABLES = {"eusilc": _eusilc, "CPS1988": _cps}


def _split(name: str, n: int | None, seed: int = 11):
    """(vars, responses with roles, weights, fresh rows as implicate-1 records)."""
    d, v = TABLES[name]()
    rng = np.random.default_rng(seed)
    units = d["unit_id"].unique()
    if n is not None:  # about n responses per part: a seeded sample of units
        share = 3 * n / len(d)
        units = rng.choice(units, int(len(units) * min(share, 1.0)), replace=False)
        d = d[d["unit_id"].isin(units)]
    part = pd.Series(rng.integers(0, 3, len(units)), index=units)
    d = d.assign(
        part=d["unit_id"].map(part).to_numpy(),
        wave=1,
        _row_id=np.arange(len(d)),
        cell_id=d[v["ss_cell_dims"]].astype(str).agg("|".join, axis=1),
    )
    v = {**v, "ss_seed": 5, "ss_frame_auxiliaries": [], "ss_risk_implicates": [1]}
    seen = d[d["part"] < 2].assign(risk_role=lambda f: np.where(f["part"] == 0, "train", "holdout"))
    fresh = d[d["part"] == 2].assign(implicate=1)
    weights = seen[["_row_id"]].assign(calibrated_weight=seen["weight"].to_numpy())
    return v, seen.reset_index(drop=True), weights, fresh.reset_index(drop=True)


def _gate(report: pd.DataFrame, metric: str) -> pd.Series:
    return report[report["metric"] == metric].iloc[0]


@pytest.mark.parametrize("name", sorted(TABLES))
@pytest.mark.parametrize("n", [None, 200])
def test_fresh_real_rows_pass_and_copies_fail(name, n):
    v, seen, weights, fresh = _split(name, n)
    # fidelity: the respondents the synthesizer saw against fresh rows of the same cells
    fid = fidelity_gate(v, seen, weights, fresh)
    gate = _gate(fid, "fidelity_gate")
    assert gate["status"] == "pass" and fid["passed"].all(), fid[~fid["passed"]]
    assert gate["n_pairs"] >= (40 if n else 1000)
    # disclosure: fresh rows as the risk fit's and the released records pass ...
    roles = seen[["_row_id", "risk_role"]]
    responses = seen.drop(columns="risk_role")
    honest = disclosure_gate(v, responses, roles, fresh, fresh)
    assert honest["passed"].all(), honest[~honest["passed"]][["metric", "value", "threshold"]]
    assert _gate(honest, "disclosure_attacks")["status"] == "pass"
    # ... a verbatim copy of the training rows fails it, on the attacks and the released copies
    train = seen[seen["risk_role"] == "train"].drop(columns="risk_role").assign(implicate=1)
    copy = disclosure_gate(v, responses, roles, train, train)
    failed = set(copy.loc[copy["status"] == "fail", "metric"])
    assert {"disclosure_attacks", "dcr_share", "informative_match_rate"} <= failed, copy
    assert not copy["passed"].all()


def test_library_and_build_share_the_pmse_rows_and_gate_defaults():
    """S_pMSE grows with the rows it is fitted on: the library's default is the project's."""
    import inspect

    import yaml

    from surveysynth.checks.fidelity import PMSE_MAX_ROWS, pmse
    from surveysynth.checks.reference import DEFAULT_TOLERANCES
    from surveysynth.checks.status import GateSettings

    root = Path(__file__).resolve().parents[1]
    v = yaml.safe_load((root / "dbt_project.yml").read_text())["vars"]
    assert v["ss_fidelity_pmse_rows"] == PMSE_MAX_ROWS
    assert inspect.signature(pmse).parameters["max_rows"].default == PMSE_MAX_ROWS
    tol = {k: x for k, x in v["ss_fidelity_tolerances"].items() if k in DEFAULT_TOLERANCES}
    assert tol == {k: DEFAULT_TOLERANCES[k] for k in tol} and set(tol) == set(DEFAULT_TOLERANCES)
    st = GateSettings.from_vars(v)
    assert (st.alpha, st.min_rows, st.not_assessable_blocks) == (0.01, 20, False)
