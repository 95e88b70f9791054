"""The privacy budget: zCDP rho per measurement, composition and conversion to (epsilon, delta).

Every measurement is an opendp Gaussian mechanism whose output measure is zero-concentrated
divergence (zCDP). Under zCDP, sequential (and adaptive) composition adds the rhos; the total is
converted to (epsilon, delta) by opendp's zCDP -> approximate-DP map. :func:`rho_for_budget`
inverts that map by bisection, so the measurements spend exactly the (epsilon, delta) asked.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import pandas as pd

LEDGER_COLUMNS = [
    "measurement",
    "what",
    "columns",
    "mechanism",
    "sensitivity",
    "noise_scale",
    "rho",
    "epsilon",
    "delta",
    "is_total",
]


def _dp():
    import opendp.prelude as dp

    dp.enable_features("contrib")
    return dp


def gaussian(scale: float):
    """opendp's Gaussian mechanism on a float vector under the L2 distance (zCDP)."""
    dp = _dp()
    return dp.m.make_gaussian(
        dp.vector_domain(dp.atom_domain(T=float, nan=False)), dp.l2_distance(T=float), scale=scale
    )


def rho_of(scale: float, sensitivity: float) -> float:
    """zCDP rho of the Gaussian mechanism at this scale and L2 sensitivity, as opendp maps it."""
    return float(gaussian(scale).map(float(sensitivity)))


def scale_for(rho: float, sensitivity: float) -> float:
    """Noise scale spending ``rho`` (rho = sensitivity^2 / (2 scale^2)), nudged up until
    opendp's own privacy map confirms the spend is within ``rho``."""
    s = sensitivity / math.sqrt(2.0 * rho)
    while rho_of(s, sensitivity) > rho:
        s *= 1.0 + 1e-12
    return s


def epsilon_of(rho: float, delta: float) -> float:
    """epsilon at ``delta`` of a zCDP total ``rho`` (opendp's zCDP -> approxDP conversion)."""
    if rho <= 0:
        return 0.0
    dp = _dp()
    # a Gaussian with sensitivity 1 and rho exactly `rho` carries the conversion
    m = gaussian(1.0 / math.sqrt(2.0 * rho))
    approx = dp.c.make_fix_delta(dp.c.make_zCDP_to_approxDP(m), float(delta))
    return float(approx.map(1.0)[0])


def rho_for_budget(epsilon: float, delta: float) -> float:
    """The largest zCDP rho whose conversion at ``delta`` is within ``epsilon``."""
    lo, hi = 0.0, max(epsilon, 1.0)
    while epsilon_of(hi, delta) < epsilon:
        hi *= 2
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if epsilon_of(mid, delta) <= epsilon else (lo, mid)
    return lo


@dataclass
class LedgerRow:
    measurement: str
    what: str
    columns: str
    mechanism: str
    sensitivity: float
    noise_scale: float
    rho: float
    epsilon: float
    delta: float
    is_total: bool = False


def ledger_frame(rows: list[LedgerRow], delta: float) -> pd.DataFrame:
    """One row per measurement plus the total under zCDP composition (sum of rho), each with
    its (epsilon, delta) at ``delta``."""
    total = sum(r.rho for r in rows)
    out = [asdict(r) for r in rows]
    out.append(
        asdict(
            LedgerRow(
                "total",
                "all measurements, zCDP sequential composition (rho adds up)",
                "",
                "composition",
                float("nan"),
                float("nan"),
                total,
                epsilon_of(total, delta),
                delta,
                True,
            )
        )
    )
    return pd.DataFrame(out, columns=LEDGER_COLUMNS)


def empty_ledger() -> pd.DataFrame:
    """The ledger of a run that measured nothing (privacy mode off)."""
    df = pd.DataFrame({c: pd.Series(dtype="float64") for c in LEDGER_COLUMNS})
    for c in ("measurement", "what", "columns", "mechanism"):
        df[c] = df[c].astype(object)
    df["is_total"] = df["is_total"].astype(bool)
    return df
