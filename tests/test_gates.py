"""surveysynth.checks.gates without dbt: table protection at business magnitudes, the informative-match
metric, and the pairing of real and synthetic rows for fidelity."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from surveysynth.checks.gates import (
    TOTAL,
    _informative_matches,
    audit_tables,
    fidelity_inputs,
    protect_tables,
)
from surveysynth.disclosure.tables import primary_suppression


def _cells(seed: int, scale: float) -> pd.DataFrame:
    """Primary suppression of a 6 x 5 turnover table with margins, values of order `scale`."""
    rng = np.random.default_rng(seed)
    n = 600
    contrib = pd.DataFrame(
        {
            "row_label": rng.choice([f"r{i}" for i in range(6)], n),
            "col_label": rng.choice([f"c{j}" for j in range(5)], n, p=[0.4, 0.3, 0.2, 0.09, 0.01]),
            "unit_id": np.arange(n).astype(str),
            "v": rng.lognormal(0, 2, n) * scale,
        }
    )
    stacked = pd.concat(
        [
            contrib,
            contrib.assign(col_label=TOTAL),
            contrib.assign(row_label=TOTAL),
            contrib.assign(row_label=TOTAL, col_label=TOTAL),
        ],
        ignore_index=True,
    )
    keys = ["row_label", "col_label"]
    grid = pd.MultiIndex.from_product(
        [
            sorted(contrib.row_label.unique()) + [TOTAL],
            sorted(contrib.col_label.unique()) + [TOTAL],
        ],
        names=keys,
    ).to_frame(index=False)
    cells = primary_suppression(grid, None, stacked, keys=keys, value_col="v", unit_col="unit_id")
    return cells.rename(columns={"total": "value", "primary": "is_primary"}).assign(
        table_name="t", wave=1
    )


@pytest.mark.parametrize("scale", [1.0, 1e8])
def test_protected_pattern_passes_its_audit_at_any_magnitude(scale):
    # at 1e8 (national business turnover) the LP's absolute tolerance would call a feasible
    # pattern infeasible without rescaling
    cells = _cells(3, scale)
    assert cells.is_primary.sum() >= 2
    out = protect_tables(cells)
    assert (out.suppressed == (out.is_primary | out.is_secondary)).all()
    assert out.is_secondary.any()
    audit = audit_tables(out)
    assert len(audit) == out.suppressed.sum()
    assert audit.protected.all(), audit[~audit.protected]
    # every suppressed cell's interval reaches its required protection on both sides
    assert (audit.value - audit.lower >= audit.protection_required * (1 - 1e-6)).all()
    assert (audit.upper - audit.value >= audit.protection_required * (1 - 1e-6)).all()


def test_audit_finds_a_primary_cell_left_alone_in_its_line():
    out = protect_tables(_cells(3, 1.0))
    broken = out.assign(suppressed=out.is_primary)  # no complementary cells
    audit = audit_tables(broken)
    assert not audit.protected.all()
    short = audit[~audit.protected]
    assert (short.shortfall > 0).all() and short.message.str.contains("short by").all()


def test_informative_matches_ignore_shared_zero_records_and_catch_copies():
    rng = np.random.default_rng(0)

    def frame(n, closed_share):
        closed = rng.random(n) < closed_share
        return pd.DataFrame(
            {
                "cell": rng.choice(["a", "b"], n),
                "status": np.where(closed, "closed", "trading"),
                "turnover": np.where(closed, 0.0, rng.lognormal(10, 1, n)),
            }
        )

    used, hold, syn = frame(2000, 0.3), frame(500, 0.3), frame(2000, 0.3)
    cols = ["cell", "status", "turnover"]
    ok = _informative_matches(used, hold, syn, cols, ["turnover"], 0.001)
    # closed records (all zeros) match by the hundred, yet none of them counts
    assert (syn.turnover == 0).sum() > 100
    assert ok["value"] == 0 and ok["passed"]
    leaked = pd.concat([syn.iloc[:1900], used[used.turnover > 0].iloc[:100]], ignore_index=True)
    bad = _informative_matches(used, hold, leaked, cols, ["turnover"], 0.001)
    assert bad["value"] == pytest.approx(100 / 2000) and not bad["passed"]


def test_fidelity_pairs_each_respondent_with_a_record_of_its_cell_per_implicate():
    rng = np.random.default_rng(1)
    real = pd.DataFrame(
        {
            "cell_id": ["a"] * 3 + ["b"] * 2 + ["c"],
            "wave": 1,
            "aux": [1.0, 100.0, 1e4, 5.0, 50.0, 7.0],
            "w": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
            "y": 0.0,
        }
    )
    syn = pd.DataFrame(
        {
            "cell_id": np.repeat(["a", "b"], 20),
            "wave": 1,
            "aux": np.exp(rng.uniform(0, 10, 40)),
            "y": rng.random(40),
        }
    )
    syn = pd.concat([syn.assign(implicate=1), syn.assign(implicate=2)], ignore_index=True)
    r, s = fidelity_inputs(real, syn, ["cell_id", "wave"], "w", "aux", seed=0)
    assert list(r.cell_id) == ["a", "a", "a", "b", "b"]  # cell c has no synthetic records
    for _, g in s.groupby("implicate"):
        assert list(g.cell_id) == list(r.cell_id) and list(g.w) == list(r.w)
        # the pair's register value is the nearest the cell offers (log scale)
        for (_, a), (_, b) in zip(r.iterrows(), g.iterrows(), strict=True):
            pool = syn[(syn.cell_id == a.cell_id) & (syn.implicate == b.implicate)].aux
            assert abs(np.log1p(b.aux) - np.log1p(a.aux)) == pytest.approx(
                np.abs(np.log1p(pool) - np.log1p(a.aux)).min()
            )
    r2, s2 = fidelity_inputs(real, syn, ["cell_id", "wave"], "w", None, seed=0)
    assert (
        len(s2) == 2 * len(r2)
        and s2.groupby("implicate").cell_id.apply(list).map(lambda x: x == list(r2.cell_id)).all()
    )
