"""FIT step: one sequential conditional model per outcome, each with hierarchical cell
effects, fitted with the design weights.

For the outcomes in synthesis order (``structure.synthesis_order``), outcome j is modelled
given its cell c, the register auxiliaries x and the answers y_<j synthesized before it:

* item missingness: logit P(y_j missing) = a + f'b + d_c;
* binary, categorical, ordinal: continuation-ratio logits
  logit P(y_j = level k | y_j >= k) = a_k + f'b_k + d_ck, k = 0..K-2, which factorise the
  multinomial likelihood into binomials (so each is fitted like a binary answer) and give
  every level its own slopes (as flexible as a baseline-category logit);
* continuous and count: spikes (the minimum when reached, and values held by >= 5% of
  answers) by continuation-ratio logits as above, then the continuous part on its link
  scale z (log(y - min), or identity; counts dequantised) as z = a + f'b + d_c + s_c r, with
  a cell scale log s_c pooled like any cell effect and r drawn from the design-weighted
  distribution of standardised residuals of answers with a location like the record's (skew,
  tails and how they change with the location from the data; ``residuals``);

where f are the features of x and y_<j (``features``). Exact relations, spikes and
structural zeros are found first (``structure``). A rule's target is fitted on the rows
where no rule fixes it (missingness included: a rule that nulls a value is not counted
twice).

Estimation (an empirical-Bayes / penalised quasi-likelihood approximation of a GLMM):
1. slopes (a, b) by design-weighted ridge pseudo-likelihood with the current cell effects
   as an offset (``glm``);
2. each cell's direct effect given the slopes, linearised at its current effect d (the
   penalised quasi-likelihood working response of Breslow & Clayton 1993): d + (p_hat -
   mu_bar) / v_bar, the step capped at 4 on the logit scale, with variance 1 / (n_eff v_bar),
   mu_bar and v_bar the cell's weighted means of mu and mu (1 - mu) at d, n_eff Kish's
   effective n of the cell's rows; for z the weighted mean residual;
3. the direct effects shrunk toward main effects and two-way interactions of the cell
   dimensions and wave (``pooling``: Student-t priors, variance components by
   fixed-point updates);
repeated twice. Assumptions: answers are independent across units given the cell
effects and predictors (a panel's repeated units are treated as independent); slopes are
common to all cells; nonresponse is ignorable given cell, register and earlier answers.

Each source's ridge penalty is set by empirical Bayes (``glm``: MacKay's evidence update, one
per round, carried into the next), so a source that does not predict an answer is shrunk.

Proper synthesis (``draw_implicates``): each implicate draws the slopes from their
Gaussian posterior approximation (a logit's intercept then shifted to keep the fitted rate up
to the draw of its mean linear predictor, ``_rate_preserving``), each variance component
sigma_v2 from its grid posterior
given the cells' leave-one-out residuals (``variance``), the prior mean's intercept and term
effects from their posteriors, each level's draw shared by its cells (``_prior_draws``), and then
every cell effect from its posterior given those (in the per-cell sampler). The terms' variances
tau2_g are plugged in.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.special import digamma, expit, polygamma
from threadpoolctl import threadpool_limits

from surveysynth.contract.config import OutcomeSpec, SynthConfig
from surveysynth.contract.inputs import CELL_ID, Inputs, SynthInputError, record_columns
from surveysynth.contract.rules import when_mask
from surveysynth.seeding import stream_rng
from surveysynth.synthesis import glm, residuals, structure, variance
from surveysynth.synthesis.features import (
    Source,
    aux_transform_of,
    cached_columns,
    design,
    learn_discrete,
    learn_numeric,
    learn_score,
    level_codes,
)
from surveysynth.synthesis.links import from_link, to_link
from surveysynth.synthesis.pooling import (
    PoolingResult,
    fit_pooled,
    group_weights,
    pooling_terms,
    stack_terms,
    weighted_moments,
)

log = logging.getLogger("surveysynth")

PARAM_PREFIX = "p__"
ROUNDS = 2
# Slopes are fitted on at most this many rows of a component (a seeded sample, weights kept):
# their posterior is then that of the sample, a little wider than the full data's, and the
# cost of the fit does not grow with the survey (cell effects always use every row).
SLOPE_ROWS = 12_000
# Largest move of a cell's direct logit effect in one round (a capped Newton step): a cell
# whose model probability is near 0 or 1 with a share that is not would otherwise get an
# unbounded working response.
MAX_CELL_STEP = 4.0
CELL_COLUMNS = ("hat", "psi", "prior", "priorvar")
# a numeric outcome's location columns per cell: its link-scale range (``_cell_ranges``) and the
# factor its residual draws are divided by, the sd its bins give it (``residuals.Texture.cell_sd``)
LOC_COLUMNS = ("zlo", "zhi", "bin_sd")


@dataclass(frozen=True)
class Component:
    """One fitted piece of an outcome's model, with a cell effect per cell x wave."""

    name: str
    outcome: str
    kind: str  # miss | cat | spike | split | loc | logscale
    level: int = -1
    constraints: tuple[structure.Constraint, ...] = ()

    def col(self, what: str) -> str:
        return f"{PARAM_PREFIX}{self.name}__{what}"

    @property
    def family(self) -> str:
        return {"loc": "gauss", "logscale": "scale"}.get(self.kind, "logit")


@dataclass
class OutcomeModel:
    """How one outcome is generated: its predictors, components and texture."""

    spec: OutcomeSpec
    sources: tuple[Source, ...] = ()
    relation: tuple[str, tuple] | None = None  # (source outcome, ((code, value), ...))
    # earlier answers that are exact functions of another (relations): no features of their
    # own, but their levels and ranges are searched for structural zeros and bounds (EU-SILC:
    # no household of 8 or more without family allowances, while each equivalence scale
    # value of such households is too rare to tell on its own)
    checks: tuple[Source, ...] = ()
    miss: Component | None = None
    cats: tuple[Component, ...] = ()
    spikes: tuple[float, ...] = ()
    spike_comps: tuple[Component, ...] = ()
    splits: tuple[structure.Constraint, ...] = ()  # a skip's cut point (structure.skip_splits)
    split_comps: tuple[Component, ...] = ()
    loc: Component | None = None
    logscale: Component | None = None
    texture: residuals.Texture | None = None  # the continuous part's residual distributions
    z_range: tuple[float, float] = (-np.inf, np.inf)  # link-scale values drawn stay inside
    value_bounds: tuple[structure.ValueBound, ...] = ()  # structural bounds given earlier answers
    answer_range: tuple[float, float] = (-np.inf, np.inf)  # the respondents' smallest and largest

    @property
    def components(self) -> list[Component]:
        out = [self.miss] if self.miss else []
        out += [*self.cats, *self.spike_comps, *self.split_comps]
        out += [c for c in (self.loc, self.logscale) if c is not None]
        return out


#: the cell (pooled over the waves) as a searched source of structural zeros and bounds: its key
#: in the fit's and the sampler's answers, and the params column with each cell x wave's code
CELL_SOURCE = structure.CELL_SOURCE
CELL_CODE_COLUMN = f"{PARAM_PREFIX}cell_code"


def term_column(i: int) -> str:
    """The params column holding each cell x wave's level code of prior term ``i``."""
    return f"{PARAM_PREFIX}term__{i}"


@dataclass
class PriorDraws:
    """One component's draws of its prior mean's parts, shared by every cell of a level:
    ``intercept`` (m,) and, per prior term in the order of the cells' term columns, the drawn
    deviations of every level (levels x m) with their variances (levels,). The cell's prior
    mean in implicate i is its fitted prior mean plus the intercept's draw and its levels'."""

    intercept: np.ndarray
    intercept_var: float
    terms: tuple[tuple[np.ndarray, np.ndarray], ...]


@dataclass
class SamplerSpec:
    """Everything the per-cell sampler needs besides the group's rows: small and picklable
    (it travels to Spark executors in the closure)."""

    seed: int
    unit_id: str
    wave: str
    cell_dims: tuple[str, ...]
    auxiliaries: tuple[str, ...]
    outcomes: tuple[OutcomeSpec, ...]
    rules: tuple
    item_missing: bool
    order: tuple[str, ...]
    models: tuple[OutcomeModel, ...]  # in synthesis order
    coef_draws: dict[str, np.ndarray]  # component -> (m, 1 + features)
    sigma_draws: dict[str, np.ndarray]  # component -> (m,)
    run_id: str
    method: str
    n_terms: int = 0  # prior terms; a cell's level of term i is in column term_column(i)
    prior_draws: dict[str, PriorDraws] = field(default_factory=dict)  # component -> draws

    @functools.cached_property
    def components(self) -> list[Component]:
        """Every model's components (kept: the sampler asks once per group)."""
        return [c for om in self.models for c in om.components]

    @property
    def param_columns(self) -> list[str]:
        cols = [c.col(w) for c in self.components for w in CELL_COLUMNS]
        cols += [om.loc.col(w) for om in self.models if om.loc for w in LOC_COLUMNS]
        return cols + [term_column(i) for i in range(self.n_terms)] + [CELL_CODE_COLUMN]

    @property
    def output_columns(self) -> list[str]:
        names = [o.name for o in self.outcomes]
        return record_columns(self.unit_id, self.wave, self.cell_dims, names, self.auxiliaries)


@dataclass
class SynthModel:
    """Result of the FIT step: the cell x wave table of cell-effect inputs (direct estimate,
    its variance, prior mean and variance per component) and the sampler spec."""

    params: pd.DataFrame
    spec: SamplerSpec
    diagnostics: pd.DataFrame
    seconds: float = 0.0


@dataclass
class FitData:
    """The respondents as the fit sees them."""

    g: np.ndarray  # support row of each response
    w: np.ndarray
    n_groups: int
    terms: dict[str, np.ndarray]
    raw: dict[str, np.ndarray]  # outcome/aux -> floats (numeric) or level codes (discrete)
    free: dict[str, np.ndarray]  # outcome -> rows where no rule fixes it
    seed: int = 0
    dim_codes: tuple[np.ndarray, ...] = ()  # per cell dimension: level code of each support row
    cell_codes: np.ndarray | None = None  # each support row's cell code (its waves share it)
    stack: object = None  # the terms stacked for the pooling (``pooling.stack_terms``), built once


# ----------------------------------------------------------------------- the pipeline
def fit(
    inputs: Inputs, config: SynthConfig, run_id: str, method: str = "hierarchical"
) -> SynthModel:
    """Fit every outcome's conditional model in synthesis order. BLAS runs on one thread:
    faster for these small matrices on a shared machine, and the sums it forms do not depend
    on the thread count, so the fit is bit-identical whatever the machine's load or cores."""
    with threadpool_limits(limits=1):
        return _fit(inputs, config, run_id, method)


def _fit(inputs: Inputs, config: SynthConfig, run_id: str, method: str) -> SynthModel:
    t0 = time.monotonic()
    data = _fit_data(inputs, config)
    specs = {o.name: o for o in config.outcomes}
    order = structure.synthesis_order(
        config.outcomes, config.rules, dict(config.derived), config.order
    )
    codes = {n: data.raw[n] for n in order if specs[n].is_discrete}
    relations = structure.find_relations(order, specs, codes, data.raw, dict(config.derived))
    splits = structure.skip_splits(order, specs, data.raw, data.free)
    sources = _aux_sources(inputs, config, data)
    table = inputs.support[[CELL_ID, *config.cell_dims, config.wave]].copy()
    models: list[OutcomeModel] = []
    checks: list[Source] = []

    def plans():
        """Each outcome's plan in synthesis order (its spikes and cuts make the next one's
        source), yielded as soon as it is made: the threads fit it while the next is planned."""
        for name in order:
            om = OutcomeModel(
                spec=specs[name],
                sources=tuple(sources),
                relation=relations.get(name),
                checks=tuple(checks),
            )
            om.splits = splits.get(name, ()) if om.relation is None else ()
            models.append(om)
            if om.relation is None:
                yield _plan_outcome(om, data, config)
                sources.extend(_outcome_sources(om, data))
            else:
                checks.append(Source(name, "discrete" if om.spec.is_discrete else "numeric"))

    cols, diags = {}, []
    for plan, (fits, ranges) in _fit_all(plans(), data, config, t0):
        _store_outcome(plan, fits, ranges, cols, diags)
    for i, codes in enumerate(data.terms.values()):
        cols[term_column(i)] = codes
    cols[CELL_CODE_COLUMN] = data.cell_codes
    params = pd.concat([table, pd.DataFrame(cols, index=table.index)], axis=1)
    spec = SamplerSpec(
        seed=config.seed,
        unit_id=config.unit_id,
        wave=config.wave,
        cell_dims=config.cell_dims,
        auxiliaries=config.auxiliaries,
        outcomes=config.outcomes,
        rules=config.rules,
        item_missing=config.item_missing,
        order=tuple(order),
        models=tuple(models),
        coef_draws={},
        sigma_draws={},
        run_id=run_id,
        method=method,
        n_terms=len(data.terms),
    )
    draw_implicates(spec, diags)
    diag = pd.DataFrame([{k: v for k, v in d.items() if np.isscalar(v)} for d in diags])
    seconds = time.monotonic() - t0
    log.info("synth fit: %d components in %.1fs", len(diags), seconds)
    return SynthModel(params, spec, diag, seconds)


def _fit_data(inputs: Inputs, config: SynthConfig) -> FitData:
    r, c = inputs.responses, config
    table = inputs.support
    g, n_groups = inputs.cell_wave, len(table)
    w = _cell_scaled(_weights(inputs, config), g, n_groups)
    raw, free = {}, {}
    for o in c.outcomes:
        s = r[o.name]
        if not s.notna().any():
            raise SynthInputError(f"outcome '{o.name}' has no non-null value in responses")
        raw[o.name] = _raw_outcome(s, o)
        fr = np.ones(len(r), dtype=bool)
        for rule in c.rules:
            if o.name in rule.target_columns:
                fr &= ~when_mask(r, rule)
        free[o.name] = fr
    for a in c.auxiliaries if inputs.use_aux else ():
        raw[a] = r[a].to_numpy(dtype=float)
    terms = pooling_terms(table, c.cell_dims, c.wave, c.interactions)
    dims = tuple(pd.factorize(table[d], sort=True)[0].astype(np.int64) for d in c.cell_dims)
    stack = stack_terms(terms, n_groups)
    cells = pd.factorize(table[CELL_ID], sort=True)[0].astype(np.int64)
    raw[CELL_SOURCE] = cells[g]
    return FitData(g, w, n_groups, terms, raw, free, c.seed, dims, cells, stack)


def _weights(inputs: Inputs, c: SynthConfig) -> np.ndarray:
    if c.weight:
        return inputs.responses[c.weight].to_numpy(dtype=float)
    table = inputs.support
    npop = pd.to_numeric(table["n_population"], errors="coerce").to_numpy(dtype=float)
    nres = table["n_respondents"].to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        wc = np.where(nres > 0, npop / nres, np.nan)
    w = wc[inputs.cell_wave]
    if not np.isfinite(w).all():
        bad = table[CELL_ID].iloc[inputs.cell_wave[~np.isfinite(w)][0]]
        raise SynthInputError(
            f"ss_design_weight is null and cell '{bad}' has no usable n_population in support"
        )
    return w


def _cell_scaled(w: np.ndarray, g: np.ndarray, n_groups: int) -> np.ndarray:
    """Design weights rescaled within each cell x wave to sum to its Kish effective n
    (Pfeffermann et al. 1998; Rabe-Hesketh & Skrondal 2006, scaling method 2): with cell
    effects in the model, weights adjust the composition within a cell, and each cell
    carries the information of its own effective sample size. Unscaled, cells with a few
    heavily weighted respondents would shrink the whole sample's information to the
    overall Kish n. Hajek estimates within a cell and each cell's n_eff are unchanged."""
    sw = np.bincount(g, weights=w, minlength=n_groups)
    sw2 = np.bincount(g, weights=w * w, minlength=n_groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        factor = np.where(sw2 > 0, sw / np.where(sw2 > 0, sw2, 1.0), 0.0)
    return w * factor[g]


def _raw_outcome(s: pd.Series, o: OutcomeSpec) -> np.ndarray:
    if o.is_discrete:
        code = level_codes(s, o)
        bad = s.notna().to_numpy() & (code < 0)
        if bad.any():
            raise SynthInputError(
                f"outcome '{o.name}' has {int(bad.sum())} value(s) outside its levels "
                f"{list(o.category_levels)} (e.g. {s[bad].iloc[0]!r}); fix ss_outcomes or the data"
            )
        return code
    x = pd.to_numeric(s, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    lo, hi = o.lower, o.max
    n_out = int(
        np.sum((x < lo) if lo is not None else 0) + np.sum((x > hi) if hi is not None else 0)
    )
    if n_out:
        log.warning("outcome '%s': %d value(s) outside [min, max] clipped", o.name, n_out)
    return np.clip(x, -np.inf if lo is None else lo, np.inf if hi is None else hi)


def _aux_sources(inputs: Inputs, c: SynthConfig, data: FitData) -> list[Source]:
    out = []
    for a in c.auxiliaries if inputs.use_aux else ():
        how = aux_transform_of(inputs.frame[a].to_numpy(dtype=float))
        out.append(learn_numeric(a, "aux", data.raw[a], data.w, transform=how))
    return out


#: an ordinal answer of this many levels or more also gives later answers its rank
#: (``_outcome_sources``). The rank is for many levels, whose rare ones' indicators shrink toward
#: no effect (EU-SILC's 30-level equivalence scale); given for 3- and 5-level ordinals too, it
#: raised the synthetic answers' dependence on each other within cells on a 200-response survey
#: and the fidelity gate then caught a synthesizer blind to the register in 6 of 10 sabotage
#: seeds instead of 10 (tests/test_gates_small.py)
SCORE_MIN_LEVELS = 8


def _outcome_sources(om: OutcomeModel, data: FitData) -> list[Source]:
    """The sources an answer gives the answers after it: a numeric or discrete one, and an
    ordinal answer's score besides its levels (``features.learn_score``) when it has
    ``SCORE_MIN_LEVELS`` or more."""
    o = om.spec
    x = data.raw[o.name]
    if o.type == "ordinal" and len(o.category_levels) >= SCORE_MIN_LEVELS:
        return [learn_discrete(o.name, o, x >= 0), learn_score(o.name, o, x, data.w)]
    return [_outcome_source(om, data)]


def _outcome_source(om: OutcomeModel, data: FitData) -> Source:
    o = om.spec
    x = data.raw[o.name]
    if o.is_discrete:
        return learn_discrete(o.name, o, x >= 0)
    cuts = tuple((k.kind, k.bound) for k in om.splits)
    return learn_numeric(o.name, "numeric", x, data.w, outcome=o, spikes=om.spikes, cuts=cuts)


# ----------------------------------------------------------------------- one outcome
@dataclass
class _OutcomePlan:
    """One outcome's design and components, ready to fit (built in synthesis order: an
    outcome's spikes decide the features later outcomes see)."""

    om: OutcomeModel
    targets: list[dict]
    answered: np.ndarray  # rows with a value where no rule fixes it

    @property
    def groups(self) -> np.ndarray:
        """The source each column of X belongs to (the slopes' prior groups, ``glm``)."""
        widths = [s.width for s in self.om.sources]
        return np.repeat(np.arange(len(widths)), widths)


def _plan_outcome(om: OutcomeModel, data: FitData, c: SynthConfig) -> _OutcomePlan:
    """The components of one outcome (sets the component fields of ``om``)."""
    o, fr = om.spec, data.free[om.spec.name]
    raw = data.raw[o.name]
    present = (raw >= 0) if o.is_discrete else np.isfinite(raw)
    if not (present & fr).any():
        raise SynthInputError(
            f"outcome '{o.name}' has no non-null value on rows where no rule fixes it"
        )
    targets = _targets(om, data, raw, present & fr, fr, c)
    return _OutcomePlan(om, targets, present & fr)


#: outcomes fitted at once: each outcome's fit reads the real answers only, so the fits are
#: independent; numpy and the sparse products release the GIL for much of the work
FIT_THREADS = 2


def _fit_all(plans: Iterable[_OutcomePlan], data: FitData, c: SynthConfig, t0: float) -> list:
    """(plan, (fits, ranges)) of every outcome, in the plans' order: its components fitted
    (slopes + pooled cell effects), their implicates' draws and its location's ranges. Each
    plan is fitted in a thread as soon as it comes. A fit's arithmetic does not depend on
    which thread runs it: the results are the same as one after another. A thread builds its
    outcome's design from the sources' columns and lets it go when done (not every outcome's
    design at once in memory)."""
    columns: dict = {}

    def one(plan: _OutcomePlan):
        X = design(list(plan.om.sources), data.raw, len(data.g), cache=columns)
        fits = _fit_components(plan.targets, X, plan.groups, data, c)
        for f in fits:  # the implicates' draws, while this thread is at it
            f["sigma_draws"] = _sigma_draws(c.seed, f, c.m)
            f["coef_draws"] = _coef_draws(c.seed, f, c.m)
            f["prior_draws"] = _prior_draws(c.seed, f, c.m)
        ranges = _outcome_ranges(plan, fits, data)
        log.info("synth fit: %s done, %.1fs", plan.om.spec.name, time.monotonic() - t0)
        return fits, ranges

    with ThreadPoolExecutor(max_workers=FIT_THREADS) as pool:
        futures = []
        for plan in plans:
            for s in plan.om.sources:  # its design's columns, before a thread reads them
                cached_columns(columns, s, data.raw)
            futures.append((plan, pool.submit(one, plan)))
        return [(plan, f.result()) for plan, f in futures]


def _store_outcome(plan: _OutcomePlan, fits: list[dict], ranges: dict, cols: dict, diags: list):
    """Store one outcome's cell columns (its location's ranges last) and diagnostics."""
    for comp, f in zip(plan.om.components, fits):
        for what in CELL_COLUMNS:
            cols[comp.col(what)] = f[what]
        diags.append(f)
    cols.update(ranges)


def _outcome_ranges(plan: _OutcomePlan, fits: list[dict], data: FitData) -> dict:
    """Set the residuals' texture, the ranges and the bounds the location's draws keep to;
    return the cells' location columns (none without a location)."""
    om, raw = plan.om, data.raw[plan.om.spec.name]
    if om.loc is None:
        return {}
    f = fits[om.components.index(om.loc)]
    om.texture = residuals.texture(f["std_resid"], f["resid_w"], f["fitted"])
    om.z_range = _z_range(f["z"], om.spec)
    answered = plan.answered
    om.answer_range = (float(np.nanmin(raw[answered])), float(np.nanmax(raw[answered])))
    bounds = _cell_ranges(raw[answered], data.g[answered], data, om)
    om.value_bounds = structure.value_bounds(raw, answered, _searched(om), data.raw)
    bin_sd = om.texture.cell_sd(f["fitted"], f["resid_w"], f["resid_g"], data.n_groups)
    return {om.loc.col(what): v for what, v in zip(LOC_COLUMNS, (*bounds, bin_sd))}


def _searched(om: OutcomeModel) -> list:
    """What an outcome's structural zeros and bounds are searched on: its sources and the
    derived answers it is checked against, without an ordinal's rank (the ordinal's levels are
    searched as its discrete source), and the cell. A cell is the finest level the sampler
    knows, so a zero or bound of its own says nothing of cells its respondents never meet (a
    level of one dimension would cap the other dimensions' levels it has no answers from): a
    state whose under-16s' income never passes 1,442 while the other states' passes it in
    hundreds of rows keeps below it, where the padded cell range (``RANGE_PAD``) would not."""
    cell = [Source(CELL_SOURCE, "cell")]
    return [s for s in (*om.sources, *om.checks) if s.kind != "score"] + cell


#: how far beyond the respondents' range a synthetic value may go, as a share of that range's
#: width on the answer's own scale
RANGE_PAD = 0.1


#: a cell dimension's level with fewer answers than this bounds nothing of its own (its records
#: keep the outcome's range): n answers leave about 2 / (n + 1) of a level's values outside their
#: range, and a bound from 5 answers cut real tails (coverage of the Swiss, Belgian and EU-SILC
#: domain means fell by 2-7 points in scripts/eval/eval_real_sae.py; 30 leaves them unchanged)
MIN_LEVEL_ROWS = 30


def _z_range(z: np.ndarray, o) -> tuple[float, float]:
    """The link-scale range synthetic values may take: the respondents' range on the answer's
    own scale, widened by RANGE_PAD of its width on each side (never below the outcome's floor).
    Padding on the link scale instead lets a log link draw values many times the largest
    answer (half a log-range above an income maximum is a factor of hundreds), and those few
    draws dominate a thin cell's mean."""
    z = z[np.isfinite(z)]
    y = from_link(np.array([z.min(), z.max()]), o)
    lo, hi = _padded(y[:1], y[1:], o)
    return float(min(lo[0], z.min())), float(max(hi[0], z.max()))


def _padded(y_lo: np.ndarray, y_hi: np.ndarray, o) -> tuple[np.ndarray, np.ndarray]:
    """Answer-scale ranges [y_lo, y_hi] widened by RANGE_PAD of their width, on the link scale."""
    pad = RANGE_PAD * np.maximum(y_hi - y_lo, 1e-9)
    lo, hi = y_lo - pad, y_hi + pad
    if o.lower is not None:
        lo = np.maximum(lo, o.lower)
    if o.max is not None and o.link_scale == "logit":
        hi = np.minimum(hi, o.max)
    return to_link(lo.astype(float), o), to_link(hi.astype(float), o)


def _cell_ranges(y: np.ndarray, g: np.ndarray, data: FitData, om: OutcomeModel):
    """Each cell x wave's link-scale range: within the outcome's ``z_range``, the intersection
    over the cell dimensions of the range of the answers (spikes included) at the cell's level
    of that dimension, widened as ``_z_range`` (the outcome's range for a level with fewer than
    MIN_LEVEL_ROWS answers). A level's range speaks only for the levels of the other dimensions
    its respondents meet: where no respondent has both the cell's level of dimension k and its
    level of dimension j (pooled over the other dimensions and the waves), k's range is widened
    to take in the range of j's answers, however few (a sector whose respondents are all small
    firms does not cap its large firms). An empty or thin cell of a level with small values so
    draws no value that level never comes near, whatever its drawn location and scale. Where the
    ranges still do not meet (three or more dimensions), the gap between them."""
    ok = np.isfinite(y)
    lev = [codes[g[ok]] for codes in data.dim_codes]
    n_lev = [int(c.max()) + 1 for c in data.dim_codes]
    bounds = [_level_ranges(y[ok], v, n, om, MIN_LEVEL_ROWS) for v, n in zip(lev, n_lev)]
    shown = [_level_ranges(y[ok], v, n, om, 1) for v, n in zip(lev, n_lev)]
    lo = np.full(data.n_groups, om.z_range[0])
    hi = np.full(data.n_groups, om.z_range[1])
    for k, ck in enumerate(data.dim_codes):
        lo_k, hi_k = bounds[k][0][ck], bounds[k][1][ck]
        for j, cj in enumerate(data.dim_codes):
            if j != k:
                met = _met(lev[k], lev[j], n_lev[k], n_lev[j])[ck, cj]
                lo_k = np.where(met, lo_k, np.minimum(lo_k, shown[j][0][cj]))
                hi_k = np.where(met, hi_k, np.maximum(hi_k, shown[j][1][cj]))
        lo, hi = np.maximum(lo, lo_k), np.minimum(hi, hi_k)
    return np.minimum(lo, hi), np.maximum(lo, hi)


def _met(a: np.ndarray, b: np.ndarray, na: int, nb: int) -> np.ndarray:
    """(na x nb): whether some respondent has level i of one dimension and j of another."""
    out = np.zeros((na, nb), dtype=bool)
    out[a, b] = True
    return out


def _level_ranges(y: np.ndarray, lev: np.ndarray, n_lev: int, om: OutcomeModel, min_rows: int):
    """Per level: the ``_padded`` range of its respondents' answers (a count's k taken as
    [k - 1/2, k + 1/2], as dequantised), or the whole range with fewer than min_rows answers."""
    n = np.bincount(lev, minlength=n_lev)
    y_min, y_max = np.full(n_lev, np.inf), np.full(n_lev, -np.inf)
    np.minimum.at(y_min, lev, y)
    np.maximum.at(y_max, lev, y)
    enough = n >= min_rows
    half = 0.5 if om.spec.type == "count" else 0.0
    y_min, y_max = np.where(enough, y_min - half, 0.0), np.where(enough, y_max + half, 0.0)
    lo, hi = _padded(y_min, y_max, om.spec)
    return np.where(enough, lo, om.z_range[0]), np.where(enough, hi, om.z_range[1])


def _targets(om, data, raw, fp, fr, c) -> list[dict]:
    """The rows and response of every component of ``om`` (sets its component fields)."""
    o, out = om.spec, []
    srcs = _searched(om)

    def add(name, kind, event, rows, level=-1, last=None):
        cons = structure.structural_constraints(event, rows, srcs, data.raw)
        # a continuation step past the first: the zeros of the values it decides among every
        # answer too (its own, 0 where it never occurs; at a discrete answer's last step the
        # last level ``last``, where the step's event then always occurs: 1)
        if kind in ("cat", "spike") and (rows != fp).any():
            values = ((event, 0.0),) if last is None else ((event, 0.0), (last, 1.0))
            cons = structure.with_marginal_zeros(cons, values, fp, srcs, data.raw)
        if cons:
            rows = rows & ~_constrained(cons, data.raw)
        if rows.any() and _constant(event[rows]):  # constant where it is free
            # first: the sampler applies constraints in order, a later one overriding an earlier
            # where it holds, so this covers only the rows no structural constraint fixes
            cons = (structure.Constraint("", "all", float(event[rows][0])), *cons)
            rows = np.zeros_like(rows)
        comp = Component(f"{o.name}__{name}", o.name, kind, level, cons)
        out.append({"comp": comp, "rows": rows, "y": event.astype(float)})
        return comp

    missing = ~((raw >= 0) if o.is_discrete else np.isfinite(raw))
    if c.item_missing and (missing & fr).any():
        om.miss = add("miss", "miss", missing, fr)
    if o.is_discrete:
        steps = len(o.category_levels) - 1
        last = [None] * (steps - 1) + [raw == steps]  # the last level, decided at the last step
        om.cats = tuple(
            add(f"cat{j}", "cat", raw == j, fp & (raw >= j), j, last[j]) for j in range(steps)
        )
        return out
    om.spikes = structure.find_spikes(np.where(fp, raw, np.nan), data.w, o, c.spike_share)
    rest = fp.copy()
    comps = []
    for k, s in enumerate(om.spikes):
        comps.append(add(f"spike{k}", "spike", raw == s, rest.copy(), k))
        rest &= raw != s
    om.spike_comps = tuple(comps)
    if not rest.any():
        return out
    if not om.splits and o.type == "continuous":
        om.splits = structure.spike_split(o.name, np.where(rest, raw, np.nan), om.spikes)
    om.split_comps = tuple(
        add(f"split{k}", "split", cut.mask(raw), rest.copy(), k) for k, cut in enumerate(om.splits)
    )
    z = _link_values(raw, o, rest, c.seed)
    om.loc = Component(f"{o.name}__loc", o.name, "loc")
    om.logscale = Component(f"{o.name}__logscale", o.name, "logscale")
    out.append({"comp": om.loc, "rows": rest, "y": z})
    out.append({"comp": om.logscale, "rows": rest, "y": z})
    return out


def _constant(x: np.ndarray) -> bool:
    """Whether ``x`` holds one value (a 0/1 event: no sort needed)."""
    if x.dtype == bool:
        return bool(x.all() or not x.any())
    return np.unique(x).size < 2


def _constrained(cons, raw: dict) -> np.ndarray:
    """The rows some constraint of ``cons`` fixes (the cells' own from one lookup)."""
    n = len(next(iter(raw.values())))
    m = np.zeros(n, dtype=bool)
    cells = [k.level for k in cons if k.of_cell]
    for k in cons:
        if k.kind == "all":
            m[:] = True
        elif not k.of_cell:
            m |= k.mask(raw[k.column])
    if cells:
        codes = raw[CELL_SOURCE]
        fixed = np.zeros(max(int(codes.max()), *cells) + 1, dtype=bool)
        fixed[cells] = True
        m |= fixed[codes]
    return m


def _link_values(raw, o: OutcomeSpec, rows, seed) -> np.ndarray:
    x = raw.copy()
    if o.type == "count":  # dequantise: a count k stands for [k - 1/2, k + 1/2)
        x = x + stream_rng(seed, "dequantise", o.name).random(len(x)) - 0.5
        if o.lower is not None:
            x = np.maximum(x, o.lower + 0.5)
    safe = np.where(rows, x, (o.lower or 0.0) + 1.0)
    return np.where(rows, to_link(safe, o), np.nan)


# ----------------------------------------------------------------------- slopes + pooling
def _fit_components(
    targets: list[dict], X: np.ndarray, groups: np.ndarray, data: FitData, c: SynthConfig
):
    """ROUNDS of: slopes given cell effects, direct cell effects given slopes, pooling."""
    G = data.n_groups
    delta = np.zeros((G, len(targets)))
    pooled: PoolingResult | None = None
    fits: list[glm.GLMFit | None] = [None] * len(targets)
    for rnd in range(ROUNDS):
        theta = np.full((G, len(targets)), np.nan)
        psi = np.full((G, len(targets)), np.nan)
        for k, t in enumerate(targets):
            fits[k] = _slopes(t, X, groups, data, delta[:, k], fits[k])
            theta[:, k], psi[:, k] = _direct(t, X, data, fits[k], delta, targets, k, rnd)
        names = [t["comp"].name for t in targets]
        defaults = np.array([_default(t["comp"]) for t in targets])
        pooled = fit_pooled(
            theta,
            psi,
            data.terms,
            names,
            defaults,
            start=pooled,
            max_iter=36 if rnd == 0 else 24,
            progress_seconds=c.progress_seconds,
            error_df=_error_df(targets, X, data, fits, delta),
            stack=data.stack,
        )
        delta = pooled.post_mean
    psi = pooled.psi_eff
    return [_summary(t, k, theta, psi, pooled, fits[k], X, data) for k, t in enumerate(targets)]


def _error_df(targets, X, data, fits, delta) -> np.ndarray:
    """(cells x components) degrees of freedom of each direct cell effect's sampling error.
    A location's error is the mean of n_eff residuals; with residual kurtosis kappa (pooled,
    each residual standardised by its cell's current scale) the mean has excess kurtosis
    (kappa - 3) / n_eff, which a Student-t with df = 4 + 6 n_eff / (kappa - 3) matches. So one
    respondent's extreme income weighs as noise in a one-respondent cell, while a large cell's
    mean stays Gaussian. Logit components and light tails (kappa <= 3): inf."""
    out = np.full((data.n_groups, len(targets)), np.inf)
    for k, t in enumerate(targets):
        if t["comp"].family != "gauss" or fits[k] is None or not t["rows"].any():
            continue
        rows = t["rows"]
        scale = np.exp(_at(delta, data.g, k + 1)) if k + 1 < delta.shape[1] else 1.0
        r = ((t["y"] - _loc_eta(t, X, fits[k]) - _at(delta, data.g, k)) / scale)[rows]
        kappa = _kurtosis(r, data.w[rows])
        if kappa > 3.0:
            _, _, n_eff = group_weights(data.g, data.w, rows, data.n_groups)
            out[:, k] = 4.0 + 6.0 * np.maximum(n_eff, 1.0) / (kappa - 3.0)
    return out


def _kurtosis(r: np.ndarray, w: np.ndarray) -> float:
    """Weighted kurtosis about the weighted mean (3 below 20 rows: too few to tell)."""
    if r.size < 20:
        return 3.0
    return _moment_ratio(r - np.average(r, weights=w), w)


def _moment_ratio(c: np.ndarray, w: np.ndarray) -> float:
    """Weighted E[c^4] / E[c^2]^2 of values already centred."""
    return float(np.average(c**4, weights=w) / np.average(c**2, weights=w) ** 2)


def _default(comp: Component) -> float:
    return -9.0 if comp.kind in ("miss", "spike") else 0.0


def _slopes(t, X, groups, data, delta_k, prev):
    fam = t["comp"].family
    if fam == "scale":
        return None
    rows = t["rows"]
    if not rows.any():  # fixed by its structural constraints
        p = X.shape[1] + 1
        return glm.GLMFit(np.zeros(p), np.zeros((p, p)))
    if "slope_idx" not in t:  # the same rows every round
        t["slope_idx"] = idx = _slope_rows(rows, t["comp"].name, data)
        t["slope_X"], t["slope_y"], t["slope_w"] = X[idx], t["y"][idx], data.w[idx]
    off = delta_k[data.g[t["slope_idx"]]]
    # the group penalties' evidence updates go on from the previous round's
    eb = {"groups": groups, "penalty": prev.penalty if prev is not None else None}
    if fam == "gauss":
        return glm.fit_gauss(t["slope_X"], t["slope_y"], t["slope_w"], off, **eb)
    start = prev.coef if prev is not None else None
    return glm.fit_logit(t["slope_X"], t["slope_y"], t["slope_w"], off, start, **eb)


def _eta(X: np.ndarray, coef: np.ndarray) -> np.ndarray:
    return coef[0] + X @ coef[1:]


def _slope_rows(rows: np.ndarray, name: str, data: FitData) -> np.ndarray:
    idx = np.flatnonzero(rows)
    if idx.size <= SLOPE_ROWS:
        return idx
    key = stream_rng(data.seed, "slope-rows", name).random(idx.size)
    # the SLOPE_ROWS smallest keys, in row order (a partition, not a full sort: same rows)
    return np.sort(idx[_smallest(key, SLOPE_ROWS)])


def _smallest(key: np.ndarray, k: int) -> np.ndarray:
    """The positions of the k smallest of the uniform ``key``s, as ``argpartition(key, k - 1)
    [:k]``, partitioning only the keys below a cut that holds more than k of them (a few times
    faster). The k smallest are one set unless the k-th smallest key is tied with the next,
    where the order argpartition leaves them in decides: then the whole ``key`` is partitioned
    as before (as when the cut holds too few)."""
    below = np.flatnonzero(key < min(1.0, 1.1 * k / key.size + 0.01))
    if below.size <= k:
        return np.argpartition(key, k - 1)[:k]
    part = np.argpartition(key[below], k)
    if key[below[part[k - 1]]] == key[below[part[k]]]:
        return np.argpartition(key, k - 1)[:k]
    return below[part[:k]]


def _direct(t, X, data, f, delta, targets, k, rnd):
    """Direct cell effect and its sampling variance, given the slopes."""
    comp, rows, G, g = t["comp"], t["rows"], data.n_groups, data.g
    if comp.family == "scale":
        loc = targets[k - 1]  # the location component precedes the scale
        eta = _loc_eta(loc, X, loc["fit"]) if "fit" in loc else 0
        return _direct_scale(t["y"] - eta, rows, data)
    t["fit"] = f
    if comp.family == "gauss":
        eta = _loc_eta(t, X, f)
        mean, var, n, n_eff = weighted_moments(g, data.w, t["y"] - eta, rows, G)
        s2 = f.scale if rnd == 0 else _scale_variance(delta[:, k + 1], var, n_eff)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(n > 0, mean, np.nan), np.where(
                n > 0, s2 / np.maximum(n_eff, 1e-9), np.nan
            )
    sw, n_eff, safe, p_hat, (idx, g_r, w_r) = _cell_sums(t, data)
    mu = expit(_eta(X, f.coef)[idx] + _at(delta, g_r, k))
    mu_bar = np.bincount(g_r, weights=w_r * mu, minlength=G) / safe
    v_bar = np.bincount(g_r, weights=w_r * mu * (1 - mu), minlength=G) / safe
    v_bar = np.maximum(v_bar, 1e-4)
    ok = sw > 0
    # one Newton step from the current effect toward the cell's own root, capped
    step = np.clip((p_hat - mu_bar) / v_bar, -MAX_CELL_STEP, MAX_CELL_STEP)
    theta = np.where(ok, delta[:, k] + step, np.nan)
    psi = np.where(ok, 1.0 / (np.maximum(n_eff, 1e-9) * v_bar), np.nan)
    return theta, psi


def _at(cells: np.ndarray, g: np.ndarray, k: int) -> np.ndarray:
    """``cells[g, k]``: column k of a cells x components table at the rows' cells ``g`` (a take
    of the column, several times faster than the two-index lookup; the same values)."""
    return np.take(cells[:, k], g)


def _loc_eta(t: dict, X: np.ndarray, f: glm.GLMFit) -> np.ndarray:
    """A location's linear predictor at the fit ``f``, kept with the target: the direct
    effects of the location and of its scale, the error df and the summary all read it."""
    if t.get("eta_fit") is not f:
        t["eta"], t["eta_fit"] = _eta(X, f.coef), f
    return t["eta"]


def _cell_sums(t: dict, data: FitData):
    """A logit component's weights per cell, its direct shares and its rows (positions, cell x
    wave, weights): the same every round (its rows and answers do not change), so computed
    once and kept with the target. The cell sums of the model's mu run over those rows only:
    the other rows weigh 0, and each of their terms (0 times a finite mu >= 0) adds an exact 0
    to a sum of terms >= 0, so the sums are the same as over every row, for less work."""
    if "cell_sums" not in t:
        g, G = data.g, data.n_groups
        _, sw, n_eff = group_weights(g, data.w, t["rows"], G)
        wm = np.where(t["rows"], data.w, 0.0)
        safe = np.where(sw > 0, sw, 1.0)
        p_hat = np.bincount(g, weights=wm * t["y"], minlength=G) / safe
        idx = np.flatnonzero(t["rows"])
        t["cell_sums"] = (sw, n_eff, safe, p_hat, (idx, g[idx], data.w[idx]))
    return t["cell_sums"]


def _scale_variance(half_log: np.ndarray, var: np.ndarray, n_eff: np.ndarray) -> np.ndarray:
    """Each cell's residual variance for the sampling variance of its location: the pooled scale
    model's exp(2 theta_c), rescaled so that, over the cells with two or more respondents, it
    matches the within-cell variances on average (weights n_eff - 1, their degrees of freedom).
    The scale model pools log variances, whose level is the geometric mean; with heavy-tailed
    residuals that is well below the arithmetic mean the location's psi_c = sigma_c^2 / n_eff
    needs (log income of the Austrian EU-SILC: 0.18 against 0.25), and the shortfall would be
    read as spread between cells (sigma_v^2) and make every thin cell's draw noisier."""
    s2 = np.exp(2 * half_log)
    ok = np.isfinite(var) & (n_eff > 1.0)
    den = float(np.sum((n_eff[ok] - 1.0) * s2[ok]))
    if ok.sum() < 2 or den <= 0:
        return s2
    return s2 * float(np.sum((n_eff[ok] - 1.0) * var[ok])) / den


def _direct_scale(resid, rows, data):
    """Half the log of a cell's residual variance, with the exact small-sample bias and
    variance of log s^2 for nu = n_eff - 1 degrees of freedom under normality (digamma and
    trigamma of nu / 2: a 2-respondent cell's log variance is biased by -1.27 with variance
    4.9), the variance scaled by the pooled kurtosis ((kappa - 1) / 2, 1 for normal data)."""
    mean, var, _, n_eff = weighted_moments(data.g, data.w, resid, rows, data.n_groups)
    kappa = _pooled_kurtosis(data.g, data.w, resid, rows, mean, var, n_eff)
    with np.errstate(divide="ignore", invalid="ignore"):
        ok = np.isfinite(var) & (var > 0) & (n_eff > 1.0)
        half = np.where(ok, (n_eff - 1.0) / 2.0, 1.0)
        th = np.where(ok, 0.5 * (np.log(var) - digamma(half) + np.log(half)), np.nan)
        ps = np.where(ok, polygamma(1, half) / 4.0 * (kappa - 1.0) / 2.0, np.nan)
    return th, ps


def _pooled_kurtosis(g, w, z, mask, mean, var, n_eff) -> float:
    """Pooled kurtosis of within-cell standardised values (cells with n_eff >= 10)."""
    ok = mask & (n_eff[g] >= 10) & np.isfinite(var[g]) & (var[g] > 0)
    if ok.sum() < 50:
        return 3.0
    rr = (z[ok] - mean[g[ok]]) / np.sqrt(var[g[ok]])
    return float(np.clip(_moment_ratio(rr, w[ok]), 1.8, 30.0))


def _summary(t, k, theta, psi, pooled, f, X, data) -> dict:
    """Cell columns and diagnostics of one component."""
    comp = t["comp"]
    obs = np.isfinite(theta[:, k]) & np.isfinite(psi[:, k])
    has_any = bool(obs.any())
    s2 = float(pooled.sigma_v2[k]) if has_any else 0.0
    gam = np.where(obs, s2 / (s2 + np.where(obs, psi[:, k], 1.0)), 0.0)
    out = {
        "component": comp.name,
        "outcome": comp.outcome,
        "kind": comp.kind,
        "n_rows": int(t["rows"].sum()),
        "n_cells_observed": int(obs.sum()),
        "sigma_v2": s2,
        "mean_gamma": float(gam[obs].mean()) if has_any else np.nan,
        "n_constraints": len(comp.constraints),
        "hat": np.where(obs, theta[:, k], np.nan),
        "psi": np.where(obs, psi[:, k], np.nan),
        "prior": pooled.prior_mean[:, k],
        "priorvar": _capped_prior_var(pooled.prior_var[:, k], theta[:, k], obs),
        "prior_parts": _prior_parts(pooled, k) if has_any else None,
        "sigma_se": _sigma_se(s2, psi[:, k], obs),
        "fit": f,
    }
    if comp.family == "logit" and f is not None and "slope_idx" in t:
        # the rows the slopes were fitted on, for the draws' rate (``_rate_preserving``)
        off = _at(pooled.post_mean, data.g[t["slope_idx"]], k)
        out["rate_rows"] = (t["slope_X"], off, t["slope_w"])
    if comp.kind == "loc":
        post = pooled.post_mean
        scale = np.exp(post[:, k + 1])[data.g]
        eta = _loc_eta(t, X, f)
        rows = t["rows"]
        loc = _at(post, data.g, k)
        out["std_resid"] = ((t["y"] - eta - loc) / scale)[rows]
        out["fitted"] = (eta + loc)[rows]
        out["resid_w"] = data.w[rows]
        out["resid_g"] = data.g[rows]
        out["z"] = t["y"][rows]
    return out


def _prior_parts(pooled: PoolingResult, k: int) -> tuple[float, list[np.ndarray]]:
    """The prior mean's posterior variance of parameter k by part: the intercept's, and each
    term's per level (their sum over a cell's levels is its prior_var)."""
    return float(pooled.beta0_var[k]), [v[:, k] for v in pooled.effect_var.values()]


def _capped_prior_var(a: np.ndarray, theta: np.ndarray, obs: np.ndarray) -> np.ndarray:
    """The prior model's variance for a cell, at most the spread of the observed cells'
    direct estimates: a cell the model knows nothing about is no more uncertain than a cell
    picked at random (a guard against a term variance that a few noisy cells inflate)."""
    if obs.sum() < 2:
        return np.zeros(len(a))
    return np.minimum(a, float(np.var(theta[obs])))


# ----------------------------------------------------------------------- implicates
def _sigma_draws(seed: int, d: dict, m: int) -> np.ndarray:
    family = {"loc": "gauss", "logscale": "scale"}.get(d["kind"], "logit")
    f = d["fit"]
    s0 = variance.prior_scale(family, f.scale if family == "gauss" and f is not None else None)
    u = np.array([stream_rng(seed, "sigma", d["component"], i + 1).random() for i in range(m)])
    hint = d["sigma_v2"] + 6.0 * d["sigma_se"]
    return variance.draw_sigma2(
        d["hat"], d["psi"], d["prior"], s0, u, hint, d["priorvar"], d["sigma_v2"]
    )


def _sigma_se(s2: float, psi: np.ndarray, obs: np.ndarray) -> float:
    """Large-sample standard error of sigma_v2 in the Fay-Herriot likelihood of the cells'
    direct effects: Fisher information I = 1/2 sum_c 1 / (sigma_v2 + psi_c)^2."""
    if not obs.any():
        return 0.0
    info = 0.5 * float(np.sum(1.0 / (s2 + psi[obs]) ** 2))
    return float(np.sqrt(1.0 / info)) if info > 0 else 0.0


def draw_implicates(spec: SamplerSpec, diags: list[dict]) -> None:
    """Hand the implicates' draws, made with each outcome's fit (``_fit_all``), to the spec:
    per implicate the slopes from their Gaussian posterior (``_coef_draws``), each variance
    component from its posterior given the cells' direct effects under a weakly informative
    prior (:mod:`surveysynth.synthesis.variance`) and the prior mean's parts
    (``_prior_draws``). Global streams keyed by (seed, component, implicate)."""
    for d in diags:
        name = d["component"]
        spec.sigma_draws[name] = d["sigma_draws"]
        if d["prior_draws"] is not None:
            spec.prior_draws[name] = d["prior_draws"]
        if d["coef_draws"] is not None:
            spec.coef_draws[name] = d["coef_draws"]


def _coef_draws(seed: int, d: dict, m: int) -> np.ndarray | None:
    """One component's slopes for each implicate (None without a fit)."""
    name, f = d["component"], d["fit"]
    if f is None:
        return None
    L = np.linalg.cholesky(f.cov + 1e-12 * np.eye(len(f.coef)))
    coefs = np.empty((m, len(f.coef)))
    for i in range(m):
        rng = stream_rng(seed, "coef", name, i + 1)
        coefs[i] = f.coef + L @ rng.standard_normal(len(f.coef))
        if "rate_rows" in d:
            coefs[i, 0] += _rate_preserving(f.coef, coefs[i], *d["rate_rows"])
    return coefs


def _prior_draws(seed: int, d: dict, m: int) -> PriorDraws | None:
    """Per implicate, the intercept and every level of every prior term drawn from their
    (mean-field) posteriors, one stream per (component, part, implicate): a level's draw is
    shared by all its cells, as the effect is, so the model's error in a region's effect
    moves all of the region's cells together in an implicate and a margin's estimate carries
    it (drawn independently per cell, it would average away over the cells). None for a
    parameter without a cell with data (it has no spread)."""
    if d["prior_parts"] is None:
        return None
    name, (b0_var, term_vars) = d["component"], d["prior_parts"]
    sd0 = np.sqrt(max(b0_var, 0.0))
    b0 = np.array(
        [sd0 * stream_rng(seed, "prior", name, "b0", i + 1).standard_normal() for i in range(m)]
    )
    terms = []
    for j, v in enumerate(term_vars):
        z = np.column_stack(
            [stream_rng(seed, "prior", name, j, i + 1).standard_normal(len(v)) for i in range(m)]
        )
        terms.append((np.sqrt(np.maximum(v, 0.0))[:, None] * z, np.maximum(v, 0.0)))
    return PriorDraws(b0, sd0 * sd0, tuple(terms))


def _rate_preserving(coef: np.ndarray, drawn: np.ndarray, X, off, w) -> float:
    """The intercept shift c that gives a logit's drawn coefficients the event rate, over the
    rows it was fitted on, of the mode's linear predictor moved by the draw's change of the
    rows' mean linear predictor: sum w expit(eta_drawn + c) = sum w expit(eta_hat + xbar'
    (drawn - coef)), xbar the rows' weighted mean features. The Gaussian (Laplace)
    posterior is centred at the mode on the logit scale, so noise in the slopes moved a rare
    event's rate toward 1/2 (expit is convex below it): EU-SILC survivor's benefits, 0.96%
    of the rows fitted, went to 1.6% of the synthetic adults. With the shift the slopes'
    draws carry the uncertainty of the dependence, and the draw of the mean linear predictor
    (its posterior variance xbar' C xbar) and the cell effects the uncertainty of the rate.
    The rate is held at the cell effects' posterior means; the implicates' draws of the cell
    effects and of the level are logit-normal and still raise a rare rate somewhat (about
    10% for the level of a 1% event with 60 uninformative features)."""
    xbar = np.average(X, axis=0, weights=w) if len(X) else np.zeros(X.shape[1])
    level = (drawn[0] - coef[0]) + float(xbar @ (drawn[1:] - coef[1:]))
    eta_hat = off + glm.linear_predictor(X, coef) + level
    eta = off + glm.linear_predictor(X, drawn)
    return _intercept_for_rate(eta, w, float(np.sum(w * expit(eta_hat))))


def _intercept_for_rate(eta: np.ndarray, w: np.ndarray, target: float) -> float:
    """The c with sum w expit(eta + c) = target: Newton steps (capped at 4 logits), then
    bisection on a bracket doubled until it holds the root when they have not converged
    (the sum rises in c, so the root is unique; a target of 0 or sum w has none, and c then
    stops at the bracket's end, 4096 logits)."""
    total = float(np.sum(w))

    def gap(c: float) -> float:
        return float(np.sum(w * expit(eta + c))) - target

    tol = 1e-9 * max(min(target, total - target), 1e-300)
    c = 0.0
    for _ in range(30):
        mu = expit(eta + c)
        g = float(np.sum(w * mu)) - target
        if abs(g) <= tol:
            return c
        c -= float(np.clip(g / max(float(np.sum(w * mu * (1 - mu))), 1e-300), -4.0, 4.0))
    lo, hi = -1.0, 1.0
    while gap(lo) > 0 and lo > -4096:
        lo *= 2
    while gap(hi) < 0 and hi < 4096:
        hi *= 2
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if gap(mid) < 0 else (lo, mid)
        if hi - lo < 1e-12:
            break
    log.debug("rate-preserving shift by bisection: %.3g logits", 0.5 * (lo + hi))
    return 0.5 * (lo + hi)
