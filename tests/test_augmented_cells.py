"""surveysynth.estimation.augmented: completed and observed cells, combined by Rubin's rule.

Checked against (1) numbers worked by hand and (2) the Python reference of the `estimate` macro
(combining.implicate_estimates + combine) on the stacked table int_augmented_units would build,
and (3) on a real synthesizer run (planted data) the completed cells hold their N units.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from surveysynth.contract.config import SynthConfig
from surveysynth.contract.inputs import make_cell_id, support_table
from surveysynth.estimation.augmented import augmented_cell_estimates
from surveysynth.estimation.combining import combine_arrays, implicate_estimates
from surveysynth.synthesis.api import synthesize

OUTCOMES = {"y": {"type": "continuous", "min": 0}, "flag": {"type": "binary"}}


def _config(m: int = 3, **kw) -> SynthConfig:
    return SynthConfig.from_vars(
        {
            "ss_unit_id": "unit_id",
            "ss_wave": "wave",
            "ss_cell_dims": ["region", "size"],
            "ss_outcomes": OUTCOMES,
            "ss_design_weight": "w",
            "ss_synth_m": m,
            **kw,
        }
    )


def _planted(seed: int = 0):
    """Two strata (region), three size classes: cell a|1 sparse (2 respondents, N 6), a|2 empty
    (N 4), the rest supported; synthetic records with made-up values for the sparse/empty cells."""
    rng = np.random.default_rng(seed)
    cells = {"a|1": (6, 2), "a|2": (4, 0), "a|3": (30, 12), "b|1": (40, 15), "b|2": (25, 11)}
    resp, sup, syn = [], [], []
    for cell, (N, n) in cells.items():
        region, size = cell.split("|")
        n_h = 14 if region == "a" else 26  # respondents of the stratum, N_h = 40 / 65
        N_h = 40 if region == "a" else 65
        for i in range(n):
            resp.append(
                {
                    "unit_id": f"{cell}-{i}",
                    "wave": 1,
                    "region": region,
                    "size": size,
                    "y": float(rng.gamma(2.0, 5.0)),
                    "flag": int(rng.random() < 0.4),
                    "w": N_h / n_h,
                    "stratum": region,
                    "fpc": 1 - n_h / N_h,
                }
            )
        cls = "empty" if n == 0 else ("sparse" if n < 10 else "supported")
        sup.append(
            {
                "cell_id": cell,
                "region": region,
                "size": size,
                "wave": 1,
                "support_class": cls,
                "n_respondents": n,
                "n_population": N,
            }
        )
        if cls != "supported":
            for lv in (1, 2, 3):
                for j in range(N - n):
                    syn.append(
                        {
                            "implicate": lv,
                            "unit_id": f"{cell}-s{j}",
                            "wave": 1,
                            "region": region,
                            "size": size,
                            "cell_id": cell,
                            "y": float(rng.gamma(2.0, 5.0)),
                            "flag": int(rng.random() < 0.5),
                            "synth_weight": 1.0,
                        }
                    )
    return pd.DataFrame(resp), pd.DataFrame(syn), pd.DataFrame(sup)


def test_a_completed_cell_by_hand():
    """Cell with respondents y = 1, 3 and N = 4: implicates complete it with (5, 7), (1, 1), (3, 5)."""
    cfg = _config(m=3)
    resp = pd.DataFrame(
        {
            "unit_id": ["u1", "u2"],
            "wave": 1,
            "region": "a",
            "size": "1",
            "y": [1.0, 3.0],
            "flag": [1, 0],
            "w": 2.0,
        }
    )
    syn = pd.DataFrame(
        {
            "implicate": [1, 1, 2, 2, 3, 3],
            "unit_id": ["s1", "s2"] * 3,
            "wave": 1,
            "region": "a",
            "size": "1",
            "cell_id": "a|1",
            "y": [5.0, 7.0, 1.0, 1.0, 3.0, 5.0],
            "flag": [1, 1, 0, 0, 1, 0],
            "synth_weight": 1.0,
        }
    )
    sup = pd.DataFrame(
        {"cell_id": ["a|1"], "region": "a", "size": "1", "wave": 1, "support_class": "sparse"}
    )
    est = augmented_cell_estimates(resp, syn, sup, cfg).set_index("indicator")
    q = np.array([16 / 4, 6 / 4, 12 / 4])
    T = (1 + 1 / 3) * q.var(ddof=1)
    half = stats.t.ppf(0.975, 2) * np.sqrt(T)
    row = est.loc["y"]
    assert row.cell_role == "completed" and row.within_var == 0
    assert row.estimate == pytest.approx(q.mean())
    assert row.se == pytest.approx(np.sqrt(T))
    assert row.df == pytest.approx(2.0)
    assert (row.ci_low, row.ci_high) == pytest.approx((q.mean() - half, q.mean() + half))
    assert (row.n_real, row.n_synthetic) == (2, 2)
    shares = np.array([3 / 4, 1 / 4, 2 / 4])
    assert est.loc["flag=1"].estimate == pytest.approx(shares.mean())
    assert est.loc["flag=0"].estimate == pytest.approx(1 - shares.mean())


def _stacked(resp, syn, sup, m):
    """The stacked implicates as int_augmented_units builds them (before raking)."""
    role = sup.set_index("cell_id")["support_class"].map(
        lambda s: "completed" if s in ("sparse", "empty") else "observed"
    )
    r = resp.assign(cell_id=make_cell_id(resp, ["region", "size"]))
    r["role"] = r["cell_id"].map(role)
    parts = []
    for lv in range(1, m + 1):
        x = r.assign(implicate=lv)
        done = x["role"] == "completed"
        x["aw"] = np.where(done, 1.0, x["w"])
        x["vs"] = np.where(done, "1#completed#" + x["cell_id"], "1#" + x["stratum"])
        x["fp"] = np.where(done, 0.0, x["fpc"])
        parts.append(x)
    s = syn.assign(aw=syn["synth_weight"], vs="1#completed#" + syn["cell_id"], fp=0.0)
    return pd.concat([*parts, s], ignore_index=True)


def test_matches_the_estimate_macro_reference():
    resp, syn, sup = _planted()
    cfg = _config(m=3)
    got = augmented_cell_estimates(resp, syn, sup, cfg, stratum="stratum", fpc="fpc")
    units = _stacked(resp, syn, sup, 3)
    for ind, measure, col, level in [("y", "mean", "y", None), ("flag=1", "share", "flag", 1)]:
        q = implicate_estimates(
            units, col, measure, ["cell_id"], weight="aw", stratum="vs", fpc="fp", level=level
        )
        mine = got[got.indicator == ind].set_index("cell_id")
        assert set(mine.index) == set(sup.cell_id) == set(q.cell_id)
        for cell, grp in q.groupby("cell_id"):
            dfc = float(grp["df_com"].max())
            ref = combine_arrays(
                grp["q"].to_numpy(),
                grp["u"].to_numpy(),
                df_com=dfc if dfc > 0 else np.inf,
                share_n=float(grp["sw"].mean()) if measure == "share" else None,
            )
            assert mine.loc[cell, "df_com"] == dfc
            for key in ("estimate", "se", "df", "ci_low", "ci_high"):
                assert mine.loc[cell, key] == pytest.approx(ref[key], rel=1e-9), (ind, cell, key)
    roles = got.drop_duplicates("cell_id").set_index("cell_id")["cell_role"]
    assert roles.to_dict() == {
        "a|1": "completed",
        "a|2": "completed",
        "a|3": "observed",
        "b|1": "observed",
        "b|2": "observed",
    }
    empty = got[(got.cell_id == "a|2") & (got.indicator == "y")].iloc[0]
    assert empty.n_real == 0 and empty.n_synthetic == 4 and np.isfinite(empty.estimate)
    shares = got[got.measure == "share"]
    assert ((shares.ci_low >= 0) & (shares.ci_high <= 1)).all()


def test_observed_cell_is_the_direct_estimate():
    """An observed cell: Hajek with design weights, b = 0, T = the linearised variance, df the
    complete-data df."""
    resp, syn, sup = _planted(1)
    got = augmented_cell_estimates(resp, syn, sup, _config(m=3), stratum="stratum", fpc="fpc")
    row = got[(got.cell_id == "b|1") & (got.indicator == "y")].iloc[0]
    b1 = resp[(resp.region == "b") & (resp["size"] == "1")]
    assert row.estimate == pytest.approx(np.average(b1.y, weights=b1.w))
    assert row.between_var == pytest.approx(0.0, abs=1e-20)
    # stratum b: 26 respondents, all in observed cells; z = w (y - q) / W inside the cell
    z = b1.w * (b1.y - row.estimate) / b1.w.sum()
    v = (1 - 26 / 65) * 26 / 25 * float((z**2).sum())
    assert row.se == pytest.approx(np.sqrt(v), rel=1e-9)
    # Barnard-Rubin with b = 0: df = (nu + 1) / (nu + 3) nu, nu = 15 respondents - 1 stratum
    df = 15 / 17 * 14
    assert row.df == pytest.approx(df) and row.df_com == 14
    assert row.ci_high - row.estimate == pytest.approx(
        stats.t.ppf(0.975, df) * np.sqrt(v), rel=1e-9
    )


def test_on_a_synthesizer_run_completed_cells_hold_their_population():
    """Planted frame and responses through the real synthesizer: every sparse or empty cell gets
    records for its N - n non-respondents, and its estimate lies within the range of the values
    it was completed with."""
    rng = np.random.default_rng(3)
    N = {"a|1": 30, "a|2": 20, "b|1": 80, "b|2": 60}
    frame = pd.DataFrame(
        [
            {"unit_id": f"{c}-{i}", "region": c[0], "size": c[2]}
            for c, n in N.items()
            for i in range(n)
        ]
    )
    frame["x"] = rng.gamma(3.0, 2.0, len(frame))
    take = {"a|1": 2, "a|2": 0, "b|1": 30, "b|2": 25}
    resp = pd.concat(
        [frame[make_cell_id(frame, ["region", "size"]) == c].head(k) for c, k in take.items()]
    )
    resp = resp.assign(
        wave=1,
        y=resp["x"] * 2 + rng.gamma(1.0, 1.0, len(resp)),
        flag=(rng.random(len(resp)) < 0.3).astype(int),
        w=1.5,
    )
    cfg = _config(m=4, ss_frame_auxiliaries=["x"], ss_seed=7)
    sup = support_table(resp, cfg, frame=frame)
    syn = synthesize(resp.drop(columns=["x"]), frame, sup, cfg)
    got = augmented_cell_estimates(resp, syn, sup, cfg)
    y = got[got.indicator == "y"].set_index("cell_id")
    assert y.loc["a|1", "cell_role"] == "completed" and y.loc["a|2", "cell_role"] == "completed"
    assert y.loc["a|1", "n_synthetic"] == 28 and y.loc["a|2", "n_synthetic"] == 20
    assert (y.loc[["b|1", "b|2"], "cell_role"] == "observed").all()
    assert y["estimate"].notna().all() and (y["se"] > 0).all()
    assert (y.loc[["a|1", "a|2"], "df"] == 3).all()
