"""Predictors beyond the range the fit saw (surveysynth.synthesis.features): a register auxiliary
goes on along its spline's last segment (its largest units are the ones a sample misses), an
earlier outcome's synthetic value is clamped to the respondents' range."""

from __future__ import annotations

import numpy as np
import pandas as pd
from replica_worlds import replica, replica_config

from surveysynth.contract.config import OutcomeSpec, SynthConfig
from surveysynth.contract.inputs import support_table
from surveysynth.synthesis.api import synthesize
from surveysynth.synthesis.features import learn_numeric, source_columns


def _fit_values() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(5)
    x = np.exp(rng.normal(4.0, 1.0, 400))
    return x, np.ones_like(x)


def test_register_auxiliary_extrapolates_along_its_last_segment():
    x, w = _fit_values()
    src = learn_numeric("register", "aux", x, w, transform="log")
    big = np.array([x.max(), 10 * x.max(), 100 * x.max()])
    cols = np.column_stack(source_columns(src, big))
    step = np.diff(cols, axis=0)
    # each tenfold step moves every feature by log(10) / scale: the spline's last segment goes on
    assert np.all(step[:, 0] > 0)
    np.testing.assert_allclose(step[:, 0], np.log(10) / src.scale, rtol=1e-12)
    np.testing.assert_allclose(step[:, 1:], np.log(10) / src.scale, rtol=1e-12)
    small = np.array([x.min() / 10])
    assert source_columns(src, small)[0][0] < (np.log(x.min()) - src.center) / src.scale


def test_earlier_outcome_is_clamped_to_the_fit_range():
    x, w = _fit_values()
    o = OutcomeSpec("turnover", "continuous", min=0.0)
    src = learn_numeric("turnover", "numeric", x, w, outcome=o)
    big = np.array([x.max(), 10 * x.max()])
    cols = np.column_stack(source_columns(src, big))
    np.testing.assert_allclose(cols[0], cols[1], rtol=1e-12)


def _register_world(seed: int = 4) -> dict:
    """Six regions of 60 businesses; each answers with its 8 smallest (a register x, turnover
    0.1 x with 10% noise): the other 52 include businesses up to ~20x the largest that answered."""
    rng = np.random.default_rng(seed)
    frame, resp = [], []
    for r in range(6):
        x = np.sort(np.exp(rng.normal(5.0, 1.2, 60)))
        ids = [f"r{r}u{i:02d}" for i in range(60)]
        frame.append(pd.DataFrame({"unit": ids, "region": f"r{r}", "reg_x": x}))
        y = 0.1 * x[:8] * np.exp(rng.normal(0.0, 0.1, 8))
        resp.append(
            pd.DataFrame(
                {
                    "unit": ids[:8],
                    "period": 1,
                    "region": f"r{r}",
                    "weight": 7.5,
                    "reg_x": x[:8],
                    "turnover": y,
                }
            )
        )
    config = SynthConfig.from_vars(
        {
            "ss_unit_id": "unit",
            "ss_wave": "period",
            "ss_cell_dims": ["region"],
            "ss_design_weight": "weight",
            "ss_outcomes": {"turnover": {"type": "continuous", "min": 0}},
            "ss_frame_auxiliaries": ["reg_x"],
            "ss_synth_m": 5,
            "ss_seed": 7,
        }
    )
    frame, responses = pd.concat(frame, ignore_index=True), pd.concat(resp, ignore_index=True)
    support = support_table(responses, config, frame=frame)
    return {"responses": responses, "frame": frame, "support": support, "config": config}


def test_records_beyond_the_register_range_follow_the_register():
    """Non-respondents whose register is over twice the largest respondent's: their synthetic
    turnover follows 0.1 x (median ratio within 30%), not the respondents' range (capped there,
    the ratio's median was 0.22)."""
    w = _register_world()
    syn = synthesize(w["responses"], w["frame"], w["support"], w["config"])
    syn = syn[syn["is_synthetic"]]
    top = w["responses"]["reg_x"].max()
    far = syn[syn["reg_x"] > 2 * top]
    assert len(far) > 100
    ratio = (far["turnover"] / (0.1 * far["reg_x"])).median()
    assert 0.7 < ratio < 1.3, ratio


# ------------------------------------------------------------------ an ordinal answer's score
SCALE = [f"l{i:02d}" for i in range(30)]


def _ordinal_world(seed: int = 6, n: int = 3000) -> pd.DataFrame:
    """An ordinal answer of 30 levels, the higher ones rare (P(level k) ~ exp(-k / 4)), and a
    numeric answer rising with it by 0.3 a level (sd 1 around that)."""
    rng = np.random.default_rng(seed)
    p = np.exp(-np.arange(30) / 4.0)
    code = rng.choice(30, n, p=p / p.sum())
    return pd.DataFrame(
        {
            "unit": [f"u{i:05d}" for i in range(n)],
            "period": 1,
            "region": rng.choice(["a", "b", "c"], n),
            "scale": [SCALE[c] for c in code],
            "y": (0.3 * code + rng.normal(0, 1, n)).round(4),
        }
    )


def _ordinal_replica(df: pd.DataFrame) -> pd.DataFrame:
    outcomes = {"scale": {"type": "ordinal", "levels": SCALE}, "y": {"type": "continuous"}}
    return replica(df, replica_config(outcomes, 2).with_(m=5))


def _slope(f: pd.DataFrame) -> float:
    """Least-squares slope of y on the level's rank, over every record (all implicates)."""
    code = f["scale"].map({lv: i for i, lv in enumerate(SCALE)}).astype(float).to_numpy()
    return float(np.polyfit(code, f["y"].astype(float).to_numpy(), 1)[0])


def test_an_ordinal_answers_trend_reaches_its_rare_levels(monkeypatch):
    """Real slope 0.292; the records' 0.298 (each implicate 0.290-0.303). The planted mutation
    (the ordinal gives only its level indicators, which the group's penalty shrinks toward no
    effect where a level is rare) gives 0.279: the rank's records are compared with those, on
    the same world and seeds (over world seeds 1, 2, 3 and 6 the gap is 0.018-0.022)."""
    from surveysynth.synthesis import fit

    real = _ordinal_world()
    with_rank = _slope(_ordinal_replica(real))
    assert abs(with_rank - _slope(real)) < 0.01
    monkeypatch.setattr(fit, "_outcome_sources", lambda om, data: [fit._outcome_source(om, data)])
    assert with_rank - _slope(_ordinal_replica(real)) > 0.01
