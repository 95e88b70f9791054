"""Predictors beyond the range the fit saw (surveysynth.synthesis.features): a register auxiliary
goes on along its spline's last segment (its largest units are the ones a sample misses), an
earlier outcome's synthetic value is clamped to the respondents' range."""

from __future__ import annotations

import numpy as np

from surveysynth.contract.config import OutcomeSpec
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
