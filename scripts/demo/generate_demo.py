"""Deterministic demo survey world for surveysynth.

Simulates a national business register (the population frame) and a BICS-style
(Business Insights and Conditions Survey) panel over a number of waves, and writes
the tables the dbt project reads: ``frame``, ``population_totals``, ``sample``,
``responses`` and ``demo_truth`` (the population value of every indicator in every
cell x wave, so that estimates and back-tests can be scored against the truth).

Why it looks the way it does
----------------------------
* The world must contain the problem surveysynth exists to solve: thin cells whose
  truth a main-effects model gets wrong. Microbusinesses (size band 0-9) in the small
  region ``scotland`` behave markedly worse than their region, sector and size main
  effects predict (more pauses and closures, lower turnover, less cash, more finance
  applications), and the survey sees only a handful of them per cell and wave.
* Answers come from one latent "distress" index per unit and wave (cell main effects +
  interactions + cell random effects + a persistent unit effect + wave noise), turned
  into categories by softmax / thresholds. Sharing the index makes the variables of one
  unit correlated the way real answers are (closed -> turnover 0, decreased turnover ->
  less cash, more finance applications), which synthesizers must reproduce.
* Population composition (units per cell) is a fixed, seed-independent function of the
  frame size (largest-remainder rounding of the cell probabilities). The seed drives
  everything else: which business id lands in which cell, register values, answers,
  sampling and nonresponse. Fixed composition keeps the required sparse pattern stable
  across seeds instead of depending on multinomial luck.
* Sampling is a rotating panel: a stratified simple random sample without replacement
  (strata = cells) is drawn for wave 1; in each later wave a share of panel members drops
  out and is replaced by fresh units of the same stratum, so n_h (and the design weight
  N_h / n_h) stays constant while most units stay in the panel. Replacing dropouts with
  the next units of a random per-stratum order keeps every wave's sample an SRSWOR of its
  stratum. Take-all strata (250+) have nobody to replace them with, so they never drop.
* Unit nonresponse depends on the cell only (size band, plus lower response of Scottish
  micros) and a persistent unit propensity that is independent of the answers: it is
  missing at random within cells, so a design-consistent estimator can recover the truth
  and back-tests measure the method, not an unfixable nonresponse bias.
* Item missingness is MCAR within size band, higher for micros.
* Answers are generated for every frame unit, chunk by chunk (1,000,000 units a chunk,
  the same code path at every size). Each chunk adds its exact cell sums into the truth
  accumulators and keeps only its respondents' answers, so ``demo_truth`` is the exact
  finite-population value (not a model expectation) and ``--scale`` (10,000,000 units)
  never holds more than one chunk of answers in memory.
* Byte-identical outputs: every random stream is derived from (seed, stage, chunk) with
  ``numpy.random.SeedSequence``; tables are built from Arrow arrays (no pandas metadata)
  in a fixed row order and written by pyarrow, which writes no timestamps.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

# ---------------------------------------------------------------------------- categories

REGIONS: tuple[str, ...] = (
    "north_east",
    "north_west",
    "yorkshire",
    "east_midlands",
    "west_midlands",
    "east",
    "london",
    "south_east",
    "south_west",
    "wales",
    "scotland",
    "northern_ireland",
)
SECTORS: tuple[str, ...] = (
    "manufacturing",
    "construction",
    "retail",
    "hospitality",
    "transport",
    "information",
    "finance",
    "real_estate",
    "professional",
    "admin_support",
    "health",
    "arts_other",
)
SIZE_BANDS: tuple[str, ...] = ("0-9", "10-49", "50-249", "250+")

N_REGIONS, N_SECTORS, N_SIZES = len(REGIONS), len(SECTORS), len(SIZE_BANDS)
N_CELLS = N_REGIONS * N_SECTORS * N_SIZES
SMALL_REGION = REGIONS.index("scotland")
BIG_REGIONS: tuple[str, ...] = ("london", "south_east", "north_west")
MICRO, LARGE = 0, 3

TRADING_STATUS: tuple[str, ...] = ("trading", "paused", "closed")
TURNOVER_CHANGE: tuple[str, ...] = ("decreased", "stayed_same", "increased")
CASH_RESERVES: tuple[str, ...] = (
    "none",
    "under_1_month",
    "1_to_3_months",
    "3_to_6_months",
    "over_6_months",
)
TRADING, PAUSED, CLOSED = 0, 1, 2
DECREASED, STAYED_SAME, INCREASED = 0, 1, 2

# Categorical outcomes and their levels, in the order demo_truth lists them.
CATEGORICAL_LEVELS: dict[str, tuple[str, ...]] = {
    "trading_status": TRADING_STATUS,
    "turnover_change": TURNOVER_CHANGE,
    "cash_reserves": CASH_RESERVES,
    "applied_finance": ("0", "1"),
}
NUMERIC_OUTCOMES: tuple[str, ...] = ("turnover", "employees")
OUTCOMES: tuple[str, ...] = (
    "trading_status",
    "turnover_change",
    "turnover",
    "employees",
    "cash_reserves",
    "applied_finance",
)

# ---------------------------------------------------------------------------- world constants

# Region shares of the register: london and south_east largest, scotland the small region.
REGION_SHARE = np.array(
    [0.035, 0.115, 0.075, 0.065, 0.075, 0.095, 0.19, 0.16, 0.085, 0.04, 0.025, 0.04]
)
# Sector mix of a typical region, and a deliberately uneven one for scotland: a few big
# sectors and several small ones, so that the small region's micro cells range from
# "thin" to "nearly empty" in the sample.
SECTOR_SHARE = np.array(
    [0.055, 0.14, 0.10, 0.075, 0.05, 0.075, 0.035, 0.045, 0.16, 0.09, 0.06, 0.115]
)
SECTOR_SHARE_SMALL_REGION = np.array(
    [0.05, 0.21, 0.13, 0.17, 0.045, 0.02, 0.01, 0.02, 0.085, 0.055, 0.035, 0.17]
)
# London's economy leans to services.
SECTOR_TILT_LONDON = np.array([-0.5, -0.2, 0.0, 0.1, -0.2, 0.5, 0.7, 0.2, 0.3, 0.1, -0.2, 0.1])
# Register-like size shares. Below 250, mild region and sector tilts (bigger units in
# the big regions and in capital-intensive sectors). The 250+ band is set per region as a
# count spread almost evenly over sectors (not in proportion to the sector mix), because
# the demo needs every 250+ cell of the big regions to hold ~30 units at the default
# frame size, so that it is well supported in every wave. That costs realism: 36 such
# cells x 30 units is already 0.54% of a 200,000-unit frame, so the national 250+ share
# comes out near 0.7% rather than the register's ~0.5%.
SIZE_SHARE = np.array([0.88, 0.095, 0.02, 0.005])
MID_TILT_POWER = np.array([0.0, 0.5, 1.0])  # 0-9, 10-49, 50-249
REGION_MID_TILT = np.array([0.0, 0.15, 0.0, 0.0, 0.0, 0.05, 0.2, 0.15, 0.0, -0.05, -0.1, -0.1])
SECTOR_MID_TILT = np.array([0.4, -0.1, 0.2, 0.0, 0.15, 0.0, 0.3, -0.2, -0.2, 0.1, 0.3, -0.3])
# Share of a region's units in 250+, and a near-flat sector profile of those units.
LARGE_SHARE_BY_REGION = np.array(
    [0.0025, 0.0157, 0.0025, 0.0025, 0.003, 0.0035, 0.0095, 0.0113, 0.0025, 0.002, 0.002, 0.002]
)
SECTOR_LARGE_PROFILE = np.array([1.1, 0.95, 1.05, 0.95, 1.0, 1.0, 1.1, 0.95, 1.0, 1.0, 1.0, 0.95])

# Register: employment per band (truncated discrete Pareto: lower bound, upper bound
# exclusive, tail index) and turnover per head by sector in pounds.
EMPLOYMENT_BANDS = ((1, 10, 1.0), (10, 50, 1.3), (50, 250, 1.3), (250, 250_001, 1.15))
TURNOVER_PER_HEAD = 1000.0 * np.array([180, 150, 200, 60, 140, 220, 400, 250, 130, 90, 70, 80])
REGION_PRODUCTIVITY = np.array([0.85, 0.95, 0.9, 0.92, 0.93, 1.0, 1.3, 1.1, 0.95, 0.85, 0.95, 0.85])

# Distress index main effects (higher = worse off).
DISTRESS_REGION = np.array([0.15, 0.05, 0.05, 0.0, 0.05, -0.05, -0.15, -0.1, 0.0, 0.1, -0.25, 0.1])
DISTRESS_SECTOR = np.array([0.0, 0.05, 0.15, 0.45, 0.1, -0.3, -0.35, -0.1, -0.2, 0.1, -0.15, 0.35])
DISTRESS_SIZE = np.array([0.3, 0.1, -0.1, -0.3])
# Non-additive structure a main-effects model misses. The small region's non-micro units
# are better off than average (negative region effect), its micros far worse.
SMALL_REGION_MICRO_DISTRESS = 1.3
SMALL_REGION_MICRO_TURNOVER = -0.35  # log-turnover shift on top of the distress effect
SMALL_REGION_MICRO_CASH = -0.45  # cash latent shift
SMALL_REGION_MICRO_FINANCE = 0.6  # applied_finance logit shift
HOSPITALITY_EARLY_WAVES = 0.4  # hospitality hit hardest in waves 1-2
LONDON_LARGE = -0.15
CELL_RE_SD = 0.25
CELL_WAVE_RE_SD = 0.08
OUTCOME_CELL_RE_SD = 0.15
UNIT_RE_SD = 0.7
UNIT_WAVE_SD = 0.6
FINANCE_SECTOR = np.array([0.1, 0.15, 0.1, 0.3, 0.1, -0.2, -0.4, 0.0, -0.2, 0.05, -0.1, 0.2])

# Item nonresponse rates per size band (0-9, 10-49, 50-249, 250+).
ITEM_MISSING_RATE: dict[str, tuple[float, float, float, float]] = {
    "trading_status": (0.012, 0.006, 0.004, 0.002),
    "turnover_change": (0.09, 0.05, 0.025, 0.012),
    "turnover": (0.15, 0.08, 0.04, 0.03),
    "employees": (0.08, 0.04, 0.02, 0.01),
    "cash_reserves": (0.12, 0.06, 0.03, 0.02),
    "applied_finance": (0.10, 0.05, 0.025, 0.015),
}

# Design: sampling fractions (0-9 solved to hit the response target, 10-49 a multiple of
# it, 50-249 fixed, 250+ take-all), unit response rates, panel attrition.
FRACTION_50_249 = 0.6
FRACTION_10_49_MULTIPLIER = 3.5
MIN_STRATUM_SAMPLE = 2  # so every sampled stratum supports a variance estimate
RESPONSE_RATE = np.array([0.26, 0.40, 0.55, 0.70])
RESPONSE_RATE_SMALL_REGION_MICRO = 0.20
RESPONSE_RE_SD = 1.0
ATTRITION = 0.08

CHUNK_UNITS = 1_000_000
SCALE_FRAME_SIZE = 10_000_000
SCALE_TOTAL_RESPONSES = 1_050_000  # aim a little above the 1,000,000 the scale mode promises

# Random streams: one per stage, so changing one stage never shifts another's draws.
STREAM_WORLD, STREAM_FRAME, STREAM_SAMPLE, STREAM_RESPONSE = 1, 2, 3, 4
STREAM_ANSWERS, STREAM_ITEM_MISSING = 5, 6


def rng_for(seed: int, stream: int, *key: int) -> np.random.Generator:
    """Independent generator for (seed, stage, key...): draws never depend on call order."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, stream, *key])))


def expit(x: np.ndarray) -> np.ndarray:
    """Logistic function."""
    return 1.0 / (1.0 + np.exp(-x))


def log(msg: str, t0: float) -> None:
    """Progress line with elapsed seconds (console only, never in the outputs)."""
    print(f"[{time.perf_counter() - t0:7.2f}s] {msg}", flush=True)


# ---------------------------------------------------------------------------- config


@dataclass(frozen=True)
class Config:
    """Resolved run parameters."""

    seed: int = 42
    out: Path = Path("data/demo")
    frame_size: int = 200_000
    target_responses_per_wave: int = 10_000
    waves: int = 4
    scale: bool = False
    csv: bool = False


# ---------------------------------------------------------------------------- cell geometry

_CELL = np.arange(N_CELLS)
CELL_REGION = _CELL // (N_SECTORS * N_SIZES)
CELL_SECTOR = (_CELL // N_SIZES) % N_SECTORS
CELL_SIZE = _CELL % N_SIZES
CELL_SMALL_MICRO = (CELL_REGION == SMALL_REGION) & (CELL_SIZE == MICRO)


def cell_probabilities() -> np.ndarray:
    """P(region) * P(sector | region) * P(size | region, sector), cell order region-major."""
    sector_given_region = np.tile(SECTOR_SHARE, (N_REGIONS, 1))
    london = REGIONS.index("london")
    sector_given_region[london] *= np.exp(SECTOR_TILT_LONDON)
    sector_given_region[SMALL_REGION] = SECTOR_SHARE_SMALL_REGION
    sector_given_region /= sector_given_region.sum(axis=1, keepdims=True)

    # 250+: units per (region, sector) = region units x large share x profile / 12,
    # independent of how big the sector is in the region.
    profile = SECTOR_LARGE_PROFILE / SECTOR_LARGE_PROFILE.mean()
    p_large = LARGE_SHARE_BY_REGION[:, None] * profile[None, :] / N_SECTORS / sector_given_region
    tilt = REGION_MID_TILT[:, None, None] + SECTOR_MID_TILT[None, :, None]
    mid = np.exp(np.log(SIZE_SHARE[:3])[None, None, :] + tilt * MID_TILT_POWER[None, None, :])
    mid /= mid.sum(axis=2, keepdims=True)
    size_given = np.concatenate([mid * (1.0 - p_large[:, :, None]), p_large[:, :, None]], axis=2)

    prob = REGION_SHARE[:, None, None] * sector_given_region[:, :, None] * size_given
    return (prob / prob.sum()).reshape(-1)


def cell_counts(frame_size: int) -> np.ndarray:
    """Units per cell: largest-remainder rounding, so counts are exact and seed-free."""
    expected = cell_probabilities() * frame_size
    counts = np.floor(expected).astype(np.int64)
    short = frame_size - int(counts.sum())
    order = np.argsort(-(expected - counts), kind="stable")
    counts[order[:short]] += 1
    return counts


# ---------------------------------------------------------------------------- world


@dataclass(frozen=True)
class World:
    """Cell-level parameters of the true model (seed-dependent random effects included)."""

    distress: np.ndarray  # (cells, waves): mean latent distress of the cell in the wave
    re_change: np.ndarray  # (cells,) outcome-specific cell effects
    re_turnover: np.ndarray
    re_cash: np.ndarray
    re_finance: np.ndarray


def wave_effect(waves: int) -> np.ndarray:
    """Recovery path: bad first wave, improving, levelling off (defined for any count)."""
    w = np.arange(waves)
    return 0.45 * 0.55**w - 0.15


def build_world(seed: int, waves: int) -> World:
    """Main effects + interactions + cell and cell x wave random effects."""
    rng = rng_for(seed, STREAM_WORLD)
    cell_re = rng.normal(0.0, CELL_RE_SD, N_CELLS)
    cell_wave_re = rng.normal(0.0, CELL_WAVE_RE_SD, (N_CELLS, waves))
    outcome_re = rng.normal(0.0, OUTCOME_CELL_RE_SD, (4, N_CELLS))

    wave_idx = np.arange(waves)
    base = (
        DISTRESS_REGION[CELL_REGION]
        + DISTRESS_SECTOR[CELL_SECTOR]
        + DISTRESS_SIZE[CELL_SIZE]
        + SMALL_REGION_MICRO_DISTRESS * CELL_SMALL_MICRO
        + LONDON_LARGE * ((CELL_REGION == REGIONS.index("london")) & (CELL_SIZE == LARGE))
        + cell_re
    )
    hospitality = CELL_SECTOR == SECTORS.index("hospitality")
    early = wave_idx < 2
    distress = (
        base[:, None]
        + wave_effect(waves)[None, :]
        + HOSPITALITY_EARLY_WAVES * (hospitality[:, None] & early[None, :])
        + cell_wave_re
    )
    return World(distress, outcome_re[0], outcome_re[1], outcome_re[2], outcome_re[3])


# ---------------------------------------------------------------------------- frame


@dataclass
class Frame:
    """The register: one entry per unit, index = business number - 1."""

    cell: np.ndarray  # int16
    employment: np.ndarray  # int64
    turnover: np.ndarray  # float64
    counts: np.ndarray  # units per cell

    @property
    def size(self) -> int:
        return int(self.cell.shape[0])


def draw_employment(rng: np.random.Generator, size_band: np.ndarray) -> np.ndarray:
    """Truncated discrete Pareto inside each band: many 1-person micros, heavy 250+ tail."""
    u = rng.random(size_band.shape[0])
    emp = np.empty(size_band.shape[0], dtype=np.int64)
    for band, (lo, hi, alpha) in enumerate(EMPLOYMENT_BANDS):
        m = size_band == band
        tail = 1.0 - (lo / hi) ** alpha  # inverse CDF of Pareto(lo, alpha) truncated at hi
        x = lo * (1.0 - u[m] * tail) ** (-1.0 / alpha)
        emp[m] = np.clip(np.floor(x), lo, hi - 1).astype(np.int64)
    return emp


def build_frame(cfg: Config) -> Frame:
    """Assign units to cells (fixed counts, random order) and draw register values."""
    counts = cell_counts(cfg.frame_size)
    rng = rng_for(cfg.seed, STREAM_FRAME)
    cell = rng.permutation(np.repeat(np.arange(N_CELLS, dtype=np.int16), counts))
    size_band = CELL_SIZE[cell]
    employment = draw_employment(rng, size_band)
    per_head = TURNOVER_PER_HEAD[CELL_SECTOR[cell]] * REGION_PRODUCTIVITY[CELL_REGION[cell]]
    turnover = np.round(employment * per_head * rng.lognormal(0.0, 0.7, cell.shape[0]))
    return Frame(cell=cell, employment=employment, turnover=turnover, counts=counts)


# ---------------------------------------------------------------------------- design


def marginal_logit(p: float, sd: float) -> float:
    """Intercept mu with E[expit(mu + sd*Z)] = p (Gauss-Hermite + bisection)."""
    x, w = np.polynomial.hermite.hermgauss(40)
    lo, hi = -20.0, 20.0
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        if float(np.sum(w * expit(mid + sd * math.sqrt(2.0) * x)) / math.sqrt(math.pi)) < p:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def cell_response_rate() -> np.ndarray:
    """Expected unit response rate per cell (size band; Scottish micros lower)."""
    rate = RESPONSE_RATE[CELL_SIZE].copy()
    rate[CELL_SMALL_MICRO] = RESPONSE_RATE_SMALL_REGION_MICRO
    return rate


def allocation(counts: np.ndarray, f_micro: float) -> np.ndarray:
    """Stratum sample sizes n_h for a micro sampling fraction f_micro."""
    fraction = np.array(
        [f_micro, min(1.0, FRACTION_10_49_MULTIPLIER * f_micro), FRACTION_50_249, 1.0]
    )[CELL_SIZE]
    n = np.rint(fraction * counts).astype(np.int64)
    n = np.maximum(n, np.minimum(counts, MIN_STRATUM_SAMPLE))
    return np.minimum(n, counts)


def solve_allocation(counts: np.ndarray, target: int) -> tuple[np.ndarray, float]:
    """Smallest micro fraction whose expected respondents per wave reach the target."""
    rate = cell_response_rate()
    lo, hi = 0.0, 1.0
    if float(np.sum(allocation(counts, hi) * rate)) < target:
        return allocation(counts, hi), hi
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if float(np.sum(allocation(counts, mid) * rate)) < target:
            lo = mid
        else:
            hi = mid
    return allocation(counts, hi), hi


@dataclass
class Design:
    """Per-wave panel membership and response, plus stratum sizes."""

    n_sampled: np.ndarray  # (cells,)
    weight: np.ndarray  # (cells,) N_h / n_h, 0 where nothing sampled
    in_sample: list[np.ndarray] = field(default_factory=list)  # per wave, bool (units,)
    responded: list[np.ndarray] = field(default_factory=list)
    f_micro: float = 0.0


def draw_design(cfg: Config, frame: Frame, t0: float) -> Design:
    """Rotating stratified panel + MAR unit nonresponse with persistent unit propensity."""
    counts = frame.counts
    n_h, f_micro = solve_allocation(counts, cfg.target_responses_per_wave)
    weight = np.divide(counts, n_h, out=np.zeros(N_CELLS), where=n_h > 0)
    log(f"allocation: micro fraction {f_micro:.4f}, {int(n_h.sum()):,} sampled per wave", t0)

    rng = rng_for(cfg.seed, STREAM_SAMPLE)
    n_units = frame.size
    key = rng.random(n_units)
    order = np.lexsort((key, frame.cell))
    start = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.empty(n_units, dtype=np.int64)
    rank[order] = np.arange(n_units) - start[frame.cell[order]]
    del key, order

    pointer = n_h.copy()  # next unused rank per stratum
    in_panel = rank < n_h[frame.cell]
    design = Design(n_sampled=n_h, weight=weight, f_micro=f_micro)
    for w in range(cfg.waves):
        if w > 0:
            drop = in_panel & (rng.random(n_units) < ATTRITION)
            dropped = np.bincount(frame.cell[drop], minlength=N_CELLS)
            ok = pointer + dropped <= counts  # take-all strata cannot be replenished
            drop &= ok[frame.cell]
            dropped = np.where(ok, dropped, 0)
            new_pointer = pointer + dropped
            joins = (rank >= pointer[frame.cell]) & (rank < new_pointer[frame.cell])
            in_panel = (in_panel & ~drop) | joins
            pointer = new_pointer
        design.in_sample.append(in_panel.copy())

    rate = cell_response_rate()
    intercept = {float(p): marginal_logit(float(p), RESPONSE_RE_SD) for p in np.unique(rate)}
    cell_intercept = np.array([intercept[float(p)] for p in rate])
    rng = rng_for(cfg.seed, STREAM_RESPONSE)
    propensity = rng.normal(0.0, RESPONSE_RE_SD, n_units)
    for w in range(cfg.waves):
        idx = np.flatnonzero(design.in_sample[w])
        p = expit(cell_intercept[frame.cell[idx]] + propensity[idx])
        responded = np.zeros(n_units, dtype=bool)
        responded[idx] = rng.random(idx.shape[0]) < p
        design.responded.append(responded)
    return design


# ---------------------------------------------------------------------------- answers


@dataclass
class TruthAccumulator:
    """Exact population sums per cell x wave, added chunk by chunk."""

    waves: int
    sums: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in NUMERIC_OUTCOMES:
            self.sums[name] = np.zeros((self.waves, N_CELLS))
        for name, levels in CATEGORICAL_LEVELS.items():
            self.sums[name] = np.zeros((self.waves, N_CELLS, len(levels)))

    def add(self, wave: int, cell: np.ndarray, answers: dict[str, np.ndarray]) -> None:
        for name in NUMERIC_OUTCOMES:
            self.sums[name][wave] += np.bincount(
                cell, weights=answers[name].astype(np.float64), minlength=N_CELLS
            )
        for name, levels in CATEGORICAL_LEVELS.items():
            k = len(levels)
            flat = cell.astype(np.int64) * k + answers[name]
            self.sums[name][wave] += np.bincount(flat, minlength=N_CELLS * k).reshape(N_CELLS, k)


def simulate_chunk(
    cfg: Config,
    world: World,
    chunk: int,
    cell: np.ndarray,
    employment: np.ndarray,
    reg_turnover: np.ndarray,
    truth: TruthAccumulator,
    keep: list[np.ndarray],
) -> list[dict[str, np.ndarray]]:
    """True answers of every unit of one chunk for every wave.

    Adds the chunk to the truth sums and returns, per wave, the answers of the units
    flagged in ``keep`` (the respondents). Waves run in order inside the chunk because
    closure is absorbing and turnover_change depends on last wave's status.
    """
    rng = rng_for(cfg.seed, STREAM_ANSWERS, chunk)
    n = cell.shape[0]
    size_band = CELL_SIZE[cell]
    small_micro = CELL_SMALL_MICRO[cell]
    unit_effect = rng.normal(0.0, UNIT_RE_SD, n)
    prev_status = np.full(n, TRADING, dtype=np.int64)
    kept: list[dict[str, np.ndarray]] = []
    for w in range(cfg.waves):
        d = world.distress[cell, w] + unit_effect + rng.normal(0.0, UNIT_WAVE_SD, n)

        # Trading status: softmax (Gumbel-max) over trading / paused / closed; closed stays.
        g = rng.gumbel(size=(n, 3))
        g[:, PAUSED] += -3.0 + 0.9 * d
        g[:, CLOSED] += -4.6 + 1.1 * d
        status = np.argmax(g, axis=1)
        status[prev_status == CLOSED] = CLOSED
        trading = status == TRADING

        # Turnover change: ordered latent for trading units; skip logic for the others
        # (just stopped -> decreased, still stopped -> stayed_same, resumed -> increased).
        latent = -0.9 * d + world.re_change[cell] + rng.normal(0.0, 1.0, n)
        change = np.digitize(latent, [-0.5, 0.7])
        change = np.where(
            trading,
            np.where(prev_status != TRADING, INCREASED, change),
            np.where(prev_status == TRADING, DECREASED, STAYED_SAME),
        )

        # Turnover in the wave's month: register turnover / 12 times a multiplicative
        # factor; zero when not trading and for a few trading units with no sales.
        log_factor = (
            -0.3 * d
            + 0.25 * (change - 1)
            + world.re_turnover[cell]
            + SMALL_REGION_MICRO_TURNOVER * small_micro
            + rng.normal(0.0, 0.35, n)
        )
        no_sales = rng.random(n) < expit(-3.6 + 0.6 * d)
        turnover = np.round(reg_turnover / 12.0 * np.exp(log_factor))
        turnover[~trading | no_sales] = 0.0

        # Employees on the books: register employment perturbed; closed -> 0.
        emp_factor = np.exp(-0.08 * d - 0.1 * (status == PAUSED) + rng.normal(0.0, 0.15, n))
        employees = np.rint(employment * emp_factor).astype(np.int64)
        employees[status == CLOSED] = 0

        # Cash reserves: ordered latent; larger units hold more, distress and falling
        # turnover mean less.
        cash_latent = (
            0.35 * size_band
            - 0.6 * d
            - 0.4 * (change == DECREASED)
            + world.re_cash[cell]
            + SMALL_REGION_MICRO_CASH * small_micro
            + rng.normal(0.0, 1.0, n)
        )
        cash = np.digitize(cash_latent, [-1.4, -0.6, 0.2, 1.0])

        # Applied for finance: logistic; distress, falling turnover and thin cash raise it.
        finance_logit = (
            -1.7
            + 0.6 * d
            + 0.45 * (change == DECREASED)
            - 0.35 * (cash >= 3)
            + FINANCE_SECTOR[CELL_SECTOR[cell]]
            + world.re_finance[cell]
            + SMALL_REGION_MICRO_FINANCE * small_micro
        )
        applied = (rng.random(n) < expit(finance_logit)).astype(np.int64)

        answers = {
            "trading_status": status.astype(np.int64),
            "turnover_change": change.astype(np.int64),
            "turnover": turnover,
            "employees": employees,
            "cash_reserves": cash.astype(np.int64),
            "applied_finance": applied,
        }
        truth.add(w, cell, answers)
        m = keep[w]
        kept.append({k: v[m] for k, v in answers.items()} | {"index": np.flatnonzero(m)})
        prev_status = status
    return kept


# ---------------------------------------------------------------------------- arrow helpers


def business_ids(index: np.ndarray, width: int) -> pa.Array:
    """'B' + zero-padded (index + 1), built as one byte buffer (no Python string objects)."""
    n = index.shape[0]
    number = index.astype(np.int64) + 1
    buf = np.empty((n, width + 1), dtype=np.uint8)
    buf[:, 0] = ord("B")
    for j in range(width):
        buf[:, j + 1] = (number // 10 ** (width - 1 - j)) % 10 + ord("0")
    offsets = np.arange(n + 1, dtype=np.int32) * (width + 1)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(buf.tobytes()))


def id_width(frame_size: int) -> int:
    """Digits of the business number: 7 as in 'B0000001', more for frames of 10M+ units."""
    return max(7, len(str(frame_size)))


def labels(levels: tuple[str, ...], codes: np.ndarray, null: np.ndarray | None = None) -> pa.Array:
    """Plain string column from integer codes (nulls where ``null``)."""
    return pa.array(levels, type=pa.string()).take(pa.array(codes, mask=null))


def cell_columns(cell: np.ndarray) -> dict[str, pa.Array]:
    """region, sector, size_band columns of the given cells."""
    return {
        "region": labels(REGIONS, CELL_REGION[cell]),
        "sector": labels(SECTORS, CELL_SECTOR[cell]),
        "size_band": labels(SIZE_BANDS, CELL_SIZE[cell]),
    }


def write_table(table: pa.Table, cfg: Config, name: str) -> None:
    """Parquet (and CSV with --csv); pyarrow writes no timestamps, so bytes are stable."""
    table = table.replace_schema_metadata(None)
    pq.write_table(table, cfg.out / f"{name}.parquet", compression="snappy")
    if cfg.csv:
        pacsv.write_csv(table, cfg.out / f"{name}.csv")


# ---------------------------------------------------------------------------- tables


def frame_table(frame: Frame, width: int) -> pa.Table:
    index = np.arange(frame.size)
    return pa.table(
        {"business_id": business_ids(index, width)}
        | cell_columns(frame.cell)
        | {
            "register_employment": pa.array(frame.employment, type=pa.int64()),
            "register_turnover": pa.array(frame.turnover, type=pa.float64()),
        }
    )


def population_table(frame: Frame) -> pa.Table:
    """Per-cell population counts and register sums; cells with no units are omitted."""
    emp = np.bincount(frame.cell, weights=frame.employment, minlength=N_CELLS)
    turn = np.bincount(frame.cell, weights=frame.turnover, minlength=N_CELLS)
    cells = np.flatnonzero(frame.counts > 0)
    return pa.table(
        cell_columns(cells)
        | {
            "n_population": pa.array(frame.counts[cells], type=pa.int64()),
            "register_employment": pa.array(np.rint(emp[cells]).astype(np.int64)),
            "register_turnover": pa.array(turn[cells], type=pa.float64()),
        }
    )


def sample_table(frame: Frame, design: Design, width: int) -> pa.Table:
    parts_index, parts_wave, parts_resp = [], [], []
    for w, in_sample in enumerate(design.in_sample):
        idx = np.flatnonzero(in_sample)
        parts_index.append(idx)
        parts_wave.append(np.full(idx.shape[0], w + 1, dtype=np.int64))
        parts_resp.append(design.responded[w][idx])
    index = np.concatenate(parts_index)
    cell = frame.cell[index]
    return pa.table(
        {"business_id": business_ids(index, width), "wave": pa.array(np.concatenate(parts_wave))}
        | cell_columns(cell)
        | {
            "design_weight": pa.array(design.weight[cell], type=pa.float64()),
            "responded": pa.array(np.concatenate(parts_resp), type=pa.bool_()),
        }
    )


def responses_table(
    cfg: Config, frame: Frame, design: Design, kept: list[dict[str, np.ndarray]], width: int
) -> pa.Table:
    """Respondents' answers with item nonresponse (MCAR within size band) set to null."""
    rng = rng_for(cfg.seed, STREAM_ITEM_MISSING)
    index = np.concatenate([k["index"] for k in kept])
    wave = np.concatenate([np.full(k["index"].shape[0], w + 1) for w, k in enumerate(kept)])
    cell = frame.cell[index]
    size_band = CELL_SIZE[cell]
    columns: dict[str, pa.Array] = {
        "business_id": business_ids(index, width),
        "wave": pa.array(wave.astype(np.int64)),
    }
    columns |= cell_columns(cell)
    columns["design_weight"] = pa.array(design.weight[cell], type=pa.float64())
    for name in OUTCOMES:
        values = np.concatenate([k[name] for k in kept])
        rate = np.asarray(ITEM_MISSING_RATE[name])[size_band]
        null = rng.random(values.shape[0]) < rate
        if name in ("trading_status", "turnover_change", "cash_reserves"):
            columns[name] = labels(CATEGORICAL_LEVELS[name], values, null)
        elif name == "turnover":
            columns[name] = pa.array(values, mask=null, type=pa.float64())
        else:
            columns[name] = pa.array(values, mask=null, type=pa.int64())
    return pa.table(columns)


def truth_table(frame: Frame, truth: TruthAccumulator) -> pa.Table:
    """Population value per cell x wave x indicator, canonical cell order, then wave."""
    cells = np.flatnonzero(frame.counts > 0)
    n_pop = frame.counts[cells].astype(np.float64)
    names: list[str] = list(NUMERIC_OUTCOMES)
    for name, levels in CATEGORICAL_LEVELS.items():
        names += [f"{name}={level}" for level in levels]
    values = np.empty((cells.shape[0], truth.waves, len(names)))
    for w in range(truth.waves):
        col = 0
        for name in NUMERIC_OUTCOMES:
            values[:, w, col] = truth.sums[name][w, cells] / n_pop
            col += 1
        for name, levels in CATEGORICAL_LEVELS.items():
            k = len(levels)
            values[:, w, col : col + k] = truth.sums[name][w, cells] / n_pop[:, None]
            col += k
    n_ind, n_w = len(names), truth.waves
    cell_rep = np.repeat(cells, n_w * n_ind)
    wave = np.tile(np.repeat(np.arange(1, n_w + 1, dtype=np.int64), n_ind), cells.shape[0])
    indicator = np.tile(np.arange(n_ind), cells.shape[0] * n_w)
    return pa.table(
        cell_columns(cell_rep)
        | {
            "wave": pa.array(wave),
            "indicator": labels(tuple(names), indicator),
            "true_value": pa.array(values.reshape(-1), type=pa.float64()),
        }
    )


# ---------------------------------------------------------------------------- checks


def respondent_counts(frame: Frame, design: Design) -> np.ndarray:
    """(waves, cells) respondents per cell x wave."""
    return np.stack([np.bincount(frame.cell[r], minlength=N_CELLS) for r in design.responded])


def sparse_pattern(counts: np.ndarray) -> dict[str, object]:
    """The sparse pattern the demo must show (and its numbers, for the summary).

    Small region micros: at least half of the sector x wave cells below 10 respondents.
    Big regions' 250+ cells: at least 10 respondents in every sector and wave.
    """
    small = counts[:, (CELL_REGION == SMALL_REGION) & (CELL_SIZE == MICRO)]  # (waves, sectors)
    big_cells = np.isin(CELL_REGION, [REGIONS.index(r) for r in BIG_REGIONS]) & (CELL_SIZE == LARGE)
    big = counts[:, big_cells]
    n_small = small.size
    result: dict[str, object] = {
        "small_micro_cell_waves": n_small,
        "small_micro_below_10": int((small < 10).sum()),
        "small_micro_0_to_3": int((small <= 3).sum()),
        "small_micro_zero": int((small == 0).sum()),
        "small_micro_counts": small.T.tolist(),  # sectors x waves
        "big_large_cell_waves": int(big.size),
        "big_large_at_least_10": int((big >= 10).sum()),
        "big_large_min": int(big.min()) if big.size else 0,
    }
    result["ok"] = bool(
        2 * result["small_micro_below_10"] >= n_small  # type: ignore[operator]
        and result["big_large_at_least_10"] == big.size
    )
    return result


def print_summary(
    cfg: Config, tables: dict[str, pa.Table], counts: np.ndarray, sparse: dict[str, object]
) -> None:
    print("\nsummary")
    for name, table in tables.items():
        print(f"  {name:18s} {table.num_rows:>12,} rows")
    per_wave = counts.sum(axis=1)
    print("  respondents/wave   " + ", ".join(f"w{w + 1}={n:,}" for w, n in enumerate(per_wave)))
    print(f"  respondents total  {int(per_wave.sum()):,}")
    print("sparse pattern (scotland x 0-9, respondents per sector x wave):")
    for s, row in enumerate(sparse["small_micro_counts"]):  # type: ignore[arg-type]
        print(f"  {SECTORS[s]:14s} " + " ".join(f"{c:4d}" for c in row))
    print(
        f"  scotland 0-9: {sparse['small_micro_below_10']}/{sparse['small_micro_cell_waves']}"
        f" cell-waves < 10 respondents, {sparse['small_micro_0_to_3']} with 0-3,"
        f" {sparse['small_micro_zero']} with 0"
    )
    print(
        f"  {'/'.join(BIG_REGIONS)} x 250+: {sparse['big_large_at_least_10']}/"
        f"{sparse['big_large_cell_waves']} cell-waves >= 10 respondents"
        f" (min {sparse['big_large_min']})"
    )
    default_size = cfg.frame_size == 200_000 and cfg.target_responses_per_wave == 10_000
    note = "" if default_size else " (required at the default size only)"
    print(f"  sparse pattern: {'OK' if sparse['ok'] else 'NOT MET'}{note}")


# ---------------------------------------------------------------------------- driver


def generate(cfg: Config) -> dict[str, object]:
    """Build the world, write every table, return summary numbers (used by the tests)."""
    t0 = time.perf_counter()
    cfg.out.mkdir(parents=True, exist_ok=True)
    width = id_width(cfg.frame_size)

    frame = build_frame(cfg)
    log(f"frame: {frame.size:,} units in {int((frame.counts > 0).sum())} cells", t0)
    world = build_world(cfg.seed, cfg.waves)
    design = draw_design(cfg, frame, t0)

    truth = TruthAccumulator(cfg.waves)
    kept_parts: list[list[dict[str, np.ndarray]]] = [[] for _ in range(cfg.waves)]
    n_chunks = max(1, math.ceil(frame.size / CHUNK_UNITS))
    for chunk in range(n_chunks):
        lo, hi = chunk * CHUNK_UNITS, min(frame.size, (chunk + 1) * CHUNK_UNITS)
        kept = simulate_chunk(
            cfg,
            world,
            chunk,
            frame.cell[lo:hi],
            frame.employment[lo:hi],
            frame.turnover[lo:hi],
            truth,
            [r[lo:hi] for r in design.responded],
        )
        for w, k in enumerate(kept):
            k["index"] = k["index"] + lo
            kept_parts[w].append(k)
        if n_chunks > 1:
            log(f"answers: chunk {chunk + 1}/{n_chunks}", t0)
    kept_by_wave = [
        {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}
        for parts in kept_parts
    ]
    log("answers simulated", t0)

    tables: dict[str, pa.Table] = {}
    tables["frame"] = frame_table(frame, width)
    write_table(tables["frame"], cfg, "frame")
    tables["population_totals"] = population_table(frame)
    write_table(tables["population_totals"], cfg, "population_totals")
    tables["sample"] = sample_table(frame, design, width)
    write_table(tables["sample"], cfg, "sample")
    tables["responses"] = responses_table(cfg, frame, design, kept_by_wave, width)
    write_table(tables["responses"], cfg, "responses")
    tables["demo_truth"] = truth_table(frame, truth)
    write_table(tables["demo_truth"], cfg, "demo_truth")
    log(f"wrote {len(tables)} tables to {cfg.out}", t0)

    counts = respondent_counts(frame, design)
    sparse = sparse_pattern(counts)
    print_summary(cfg, tables, counts, sparse)
    return {
        "rows": {name: t.num_rows for name, t in tables.items()},
        "respondents_per_wave": counts.sum(axis=1).tolist(),
        "sparse": sparse,
        "f_micro": design.f_micro,
        "seconds": time.perf_counter() - t0,
    }


def parse_args(argv: list[str] | None = None) -> Config:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", type=Path, default=Path("data/demo"))
    parser.add_argument(
        "--frame-size", type=int, default=None, help="units in the register (default 200000)"
    )
    parser.add_argument(
        "--target-responses-per-wave",
        type=int,
        default=None,
        help="expected respondents per wave the allocation aims at (default 10000)",
    )
    parser.add_argument("--waves", type=int, default=4)
    parser.add_argument(
        "--scale",
        action="store_true",
        help="10,000,000-unit frame and >= 1,000,000 responses over all waves "
        "(explicit --frame-size / --target-responses-per-wave still win)",
    )
    parser.add_argument("--csv", action="store_true", help="also write every table as CSV")
    a = parser.parse_args(argv)
    if a.scale:
        frame_size = a.frame_size or SCALE_FRAME_SIZE
        target = a.target_responses_per_wave or math.ceil(SCALE_TOTAL_RESPONSES / a.waves)
    else:
        frame_size = a.frame_size or 200_000
        target = a.target_responses_per_wave or 10_000
    if a.seed < 0:
        parser.error("--seed must be >= 0")
    if a.waves < 1:
        parser.error("--waves must be >= 1")
    if frame_size < 100 or target < 1:
        parser.error("--frame-size must be >= 100 and --target-responses-per-wave >= 1")
    return Config(
        seed=a.seed,
        out=a.out,
        frame_size=frame_size,
        target_responses_per_wave=target,
        waves=a.waves,
        scale=a.scale,
        csv=a.csv,
    )


def main(argv: list[str] | None = None) -> int:
    cfg = parse_args(argv)
    print(
        f"generate_demo: seed={cfg.seed} frame={cfg.frame_size:,} "
        f"target/wave={cfg.target_responses_per_wave:,} waves={cfg.waves} out={cfg.out}",
        flush=True,
    )
    generate(cfg)
    return 0


if __name__ == "__main__":
    sys.exit(main())
