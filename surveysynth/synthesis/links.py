"""Link scales of numeric outcomes: log of (y - min) for magnitudes with a floor, logit of
the position in [min, max] when asked for, identity otherwise (``OutcomeSpec.link_scale``)."""

from __future__ import annotations

import numpy as np
from scipy.special import expit

from surveysynth.contract.config import OutcomeSpec


def to_link(x: np.ndarray, o: OutcomeSpec) -> np.ndarray:
    lo, hi, sc = o.lower, o.max, o.link_scale
    with np.errstate(divide="ignore", invalid="ignore"):
        if sc == "log":
            return np.log(np.maximum(x - lo, 1e-300))
        if sc == "logit":
            t = np.clip((x - lo) / (hi - lo), 1e-9, 1 - 1e-9)
            return np.log(t) - np.log1p(-t)
    return x.astype(float)


def from_link(z: np.ndarray, o: OutcomeSpec) -> np.ndarray:
    lo, hi, sc = o.lower, o.max, o.link_scale
    if sc == "log":
        return lo + np.exp(np.minimum(z, 700.0))
    if sc == "logit":
        return lo + (hi - lo) * expit(z)
    return z
