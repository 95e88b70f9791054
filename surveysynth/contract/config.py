"""Typed configuration of the sparse-cell synthesizer, built from the dbt vars.

The dbt project's input contract (``ss_unit_id``, ``ss_wave``, ``ss_cell_dims``,
``ss_design_weight``, ``ss_outcomes``, ``ss_frame_auxiliaries``, ``ss_seed``) plus the
synthesis vars (``ss_synth_*``) map one-to-one onto :class:`SynthConfig`. Nothing in the
library knows the demo's column names: everything flows from this object.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

OUTCOME_TYPES: tuple[str, ...] = ("continuous", "count", "binary", "categorical", "ordinal")
MODES: tuple[str, ...] = ("augment", "replica")
BACKENDS: tuple[str, ...] = ("hierarchical", "sdv_gaussian_copula", "sdv_ctgan", "sdv_tvae")
SCALES: tuple[str, ...] = ("log", "identity", "logit")
RULE_OPS: tuple[str, ...] = ("equals", "in", "is_null")
SUPPORT_CLASSES: tuple[str, ...] = ("supported", "sparse", "empty")


class SynthConfigError(ValueError):
    """A synthesis var is missing or malformed; the message names the var and the fix."""


@dataclass(frozen=True)
class OutcomeSpec:
    """One outcome variable.

    ``scale`` is the link for the positive part of continuous/count outcomes: ``log`` of
    (y - min) when a minimum is declared (business magnitudes: right-skewed, zero floor),
    ``logit`` of the position in [min, max] when both bounds are declared and the scale is
    asked for, else ``identity``.
    """

    name: str
    type: str
    levels: tuple[Any, ...] | None = None
    min: float | None = None
    max: float | None = None
    scale: str | None = None

    @property
    def is_numeric(self) -> bool:
        return self.type in ("continuous", "count")

    @property
    def is_discrete(self) -> bool:
        return self.type in ("binary", "categorical", "ordinal")

    @property
    def category_levels(self) -> tuple[Any, ...]:
        """Levels in model order (binary: 0 then 1)."""
        if self.type == "binary":
            return (0, 1)
        return tuple(self.levels or ())

    @property
    def lower(self) -> float | None:
        """Effective lower bound: counts default to 0."""
        if self.min is not None:
            return float(self.min)
        return 0.0 if self.type == "count" else None

    @property
    def link_scale(self) -> str:
        if self.scale is not None:
            return self.scale
        if self.type == "count":
            return "log"
        return "log" if self.lower is not None else "identity"


@dataclass(frozen=True)
class RuleConsequence:
    column: str
    op: str
    value: Any = None


@dataclass(frozen=True)
class Rule:
    """``when`` every listed column takes one of its listed values, ``then`` holds.

    Grammar (one list entry of ``ss_synth_rules``)::

        {name: str, when: {col: [values]}, then: {col: {equals: v} | {in: [..]} | {is_null: true}}}
    """

    name: str
    when: tuple[tuple[str, tuple[Any, ...]], ...]
    then: tuple[RuleConsequence, ...]

    @property
    def when_columns(self) -> tuple[str, ...]:
        return tuple(c for c, _ in self.when)

    @property
    def target_columns(self) -> tuple[str, ...]:
        return tuple(t.column for t in self.then)

    def to_dict(self) -> dict[str, Any]:
        then: dict[str, Any] = {}
        for t in self.then:
            then[t.column] = {t.op: True if t.op == "is_null" else _jsonable(t.value)}
        return {
            "name": self.name,
            "when": {c: [_jsonable(v) for v in vals] for c, vals in self.when},
            "then": then,
        }


@dataclass(frozen=True)
class SynthConfig:
    """Everything the synthesizer needs besides the data.

    ``max_records_per_cell`` caps synthetic records per cell x wave x implicate in
    augment mode (frame units are then a seeded sample without replacement and
    ``synth_weight`` scales up). ``augment_classes`` lists the support classes that
    augment mode synthesizes. ``item_missing`` reproduces item nonresponse at the cell's
    (shrunken) missingness rate; switch it off for complete synthetic records.
    """

    unit_id: str
    wave: str
    cell_dims: tuple[str, ...]
    outcomes: tuple[OutcomeSpec, ...]
    weight: str | None = None
    auxiliaries: tuple[str, ...] = ()
    m: int = 20  # ss_synth_m's default (docs/estimation.md, "How many implicates")
    seed: int = 0
    mode: str = "augment"
    backend: str = "hierarchical"
    max_records_per_cell: int = 2000
    rules: tuple[Rule, ...] = ()
    item_missing: bool = True
    augment_classes: tuple[str, ...] = ("sparse", "empty")
    augment_units: str = "nonrespondents"
    interactions: bool = True
    backend_options: tuple[tuple[str, Any], ...] = field(default_factory=tuple)
    progress_seconds: float = 5.0
    order: tuple[str, ...] = ()
    derived: tuple[tuple[str, str], ...] = ()
    spike_share: float = 0.05

    def __post_init__(self) -> None:
        _coerce_fields(self)
        _validate(self)

    # ------------------------------------------------------------------ builders
    @classmethod
    def from_vars(cls, vars: Mapping[str, Any], **overrides: Any) -> SynthConfig:
        """Build from dbt vars (``ss_*`` keys); keyword overrides win.

        Synthesis vars: ``ss_synth_m``, ``ss_synth_mode``, ``ss_synth_backend``,
        ``ss_synth_max_records_per_cell``, ``ss_synth_rules``, ``ss_synth_item_missing``,
        ``ss_synth_augment_classes``, ``ss_synth_interactions``, ``ss_synth_backend_options``.
        """
        v = dict(vars)

        def need(key: str) -> Any:
            if key not in v or v[key] is None:
                raise SynthConfigError(f"dbt var '{key}' is required for synthesis; set it")
            return v[key]

        outcomes_raw = need("ss_outcomes")
        if not isinstance(outcomes_raw, Mapping) or not outcomes_raw:
            raise SynthConfigError(
                "dbt var 'ss_outcomes' must map outcome name -> {type: ...}; got "
                f"{type(outcomes_raw).__name__}"
            )
        kwargs: dict[str, Any] = {
            "unit_id": str(need("ss_unit_id")),
            "wave": str(need("ss_wave")),
            "cell_dims": _names(need("ss_cell_dims")),
            "outcomes": parse_outcomes(outcomes_raw),
            "weight": v.get("ss_design_weight"),
            "auxiliaries": _names(v.get("ss_frame_auxiliaries") or ()),
            "m": int(v.get("ss_synth_m", 20)),
            "seed": int(v.get("ss_seed", 0)),
            "mode": str(v.get("ss_synth_mode", "augment")),
            "backend": str(v.get("ss_synth_backend", "hierarchical")),
            "max_records_per_cell": int(v.get("ss_synth_max_records_per_cell", 2000)),
            "rules": parse_rules(v.get("ss_synth_rules") or []),
            "item_missing": bool(v.get("ss_synth_item_missing", True)),
            "augment_classes": _names(v.get("ss_synth_augment_classes", ("sparse", "empty"))),
            "augment_units": str(v.get("ss_synth_augment_units") or "nonrespondents"),
            "interactions": bool(v.get("ss_synth_interactions", True)),
            "backend_options": tuple(sorted((v.get("ss_synth_backend_options") or {}).items())),
            "order": _names(v.get("ss_synth_order") or ()),
            "derived": tuple(sorted((v.get("ss_synth_derived") or {}).items())),
            "spike_share": float(_or(v.get("ss_synth_spike_share"), 0.05)),
        }
        kwargs.update(overrides)
        if "outcomes" in overrides and isinstance(overrides["outcomes"], Mapping):
            kwargs["outcomes"] = parse_outcomes(overrides["outcomes"])
        if "rules" in overrides and not _is_parsed_rules(overrides["rules"]):
            kwargs["rules"] = parse_rules(overrides["rules"])
        return cls(**kwargs)

    @classmethod
    def from_dbt_project(
        cls, path: str = "dbt_project.yml", vars_file: str | None = None, **overrides: Any
    ) -> SynthConfig:
        """Build from the ``vars`` block of a dbt_project.yml (plain values, no Jinja), with the
        vars of ``vars_file`` (a YAML mapping such as the demo's demo/demo_vars.yml, what
        `dbt build --vars` would be given) laid over it."""
        import yaml

        with open(path, encoding="utf-8") as fh:
            project = yaml.safe_load(fh) or {}
        v = dict(project.get("vars") or {})
        if vars_file is not None:
            with open(vars_file, encoding="utf-8") as fh:
                v.update(yaml.safe_load(fh) or {})
        return cls.from_vars(v, **overrides)

    def with_(self, **changes: Any) -> SynthConfig:
        """A copy with some fields changed (validated again)."""
        if "rules" in changes and not _is_parsed_rules(changes["rules"]):
            changes["rules"] = parse_rules(changes["rules"])
        if "outcomes" in changes and isinstance(changes["outcomes"], Mapping):
            changes["outcomes"] = parse_outcomes(changes["outcomes"])
        return replace(self, **changes)

    # ------------------------------------------------------------------ helpers
    @property
    def outcome_names(self) -> tuple[str, ...]:
        return tuple(o.name for o in self.outcomes)

    def outcome(self, name: str) -> OutcomeSpec:
        for o in self.outcomes:
            if o.name == name:
                return o
        raise KeyError(f"'{name}' is not a configured outcome (ss_outcomes)")

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.backend_options)

    def to_json(self) -> str:
        """Canonical JSON (sorted keys): part of the run id."""
        d = asdict(self)
        d["rules"] = [r.to_dict() for r in self.rules]
        d["backend_options"] = {k: _jsonable(val) for k, val in self.backend_options}
        return json.dumps(_jsonable(d), sort_keys=True, separators=(",", ":"))


# ---------------------------------------------------------------------- parsing
def _coerce_fields(c: SynthConfig) -> None:
    """Plain Python values as the fields expect them: ``outcomes`` as a mapping of name ->
    {type, ...} or name -> type string (``{"turnover": "continuous"}``), lists as tuples.
    Anything else stops with a message naming the field."""
    outcomes = c.outcomes
    if isinstance(outcomes, Mapping):
        outcomes = parse_outcomes(outcomes)
    elif isinstance(outcomes, (str, bytes)) or not isinstance(outcomes, Sequence):
        raise SynthConfigError(
            "outcomes must map outcome name -> {type: ...} (or name -> type), e.g. "
            f"{{'turnover': {{'type': 'continuous', 'min': 0}}}}; got {type(outcomes).__name__}"
        )
    bad = [o for o in outcomes if not isinstance(o, OutcomeSpec)]
    if bad:
        raise SynthConfigError(
            f"outcomes must be OutcomeSpec values or a mapping name -> spec; got {bad[0]!r}"
        )
    object.__setattr__(c, "outcomes", tuple(outcomes))
    for name in ("cell_dims", "auxiliaries", "augment_classes", "order"):
        value = getattr(c, name)
        if isinstance(value, str):
            object.__setattr__(c, name, (value,))
        elif isinstance(value, list):
            object.__setattr__(c, name, tuple(value))


def parse_outcomes(raw: Mapping[str, Any]) -> tuple[OutcomeSpec, ...]:
    out = []
    for name, spec in raw.items():
        if isinstance(spec, OutcomeSpec):
            out.append(spec)
            continue
        if isinstance(spec, str):
            spec = {"type": spec}
        if not isinstance(spec, Mapping) or "type" not in spec:
            raise SynthConfigError(
                f"ss_outcomes['{name}'] must be a mapping with a 'type' "
                f"(one of {', '.join(OUTCOME_TYPES)})"
            )
        unknown = set(spec) - {"type", "levels", "min", "max", "scale"}
        if unknown:
            raise SynthConfigError(
                f"ss_outcomes['{name}'] has unknown keys {sorted(unknown)}; "
                "allowed: type, levels, min, max, scale"
            )
        levels = spec.get("levels")
        out.append(
            OutcomeSpec(
                name=str(name),
                type=str(spec["type"]),
                levels=tuple(levels) if levels is not None else None,
                min=None if spec.get("min") is None else float(spec["min"]),
                max=None if spec.get("max") is None else float(spec["max"]),
                scale=spec.get("scale"),
            )
        )
    return tuple(out)


def _names(value: Any) -> tuple[str, ...]:
    """A var that lists names, given as a list or as one name (a string was split into its
    letters: ``ss_synth_augment_classes: empty`` read as e, m, p, t, y)."""
    if isinstance(value, str):
        return (value,)
    return tuple(str(x) for x in value)


def _yaml_bool(v: Any) -> Any:
    """A rule value written the YAML way for a binary answer (true / false) as 1 / 0, the
    answer's values: as a bool it matched nothing in the sampler's numeric columns."""
    return int(v) if isinstance(v, bool) else v


def parse_rules(raw: Sequence[Any]) -> tuple[Rule, ...]:
    if isinstance(raw, Mapping):
        raise SynthConfigError("ss_synth_rules must be a list of {name, when, then} mappings")
    rules = []
    for i, r in enumerate(raw):
        if isinstance(r, Rule):
            rules.append(r)
            continue
        where = f"ss_synth_rules[{i}]"
        if not isinstance(r, Mapping) or not {"name", "when", "then"} <= set(r):
            raise SynthConfigError(f"{where} must have keys name, when, then; got {r!r}")
        where = f"ss_synth_rules[{i}] ('{r['name']}')"
        when = r["when"]
        if not isinstance(when, Mapping) or not when:
            raise SynthConfigError(f"{where}: 'when' must map column -> list of values")
        when_t = []
        for col, vals in when.items():
            if isinstance(vals, (str, bytes)) or not isinstance(vals, Sequence):
                vals = [vals]
            when_t.append((str(col), tuple(_yaml_bool(v) for v in vals)))
        then = r["then"]
        if not isinstance(then, Mapping) or not then:
            raise SynthConfigError(f"{where}: 'then' must map column -> {{equals|in|is_null}}")
        cons = []
        for col, op_spec in then.items():
            if not isinstance(op_spec, Mapping) or len(op_spec) != 1:
                raise SynthConfigError(
                    f"{where}: then['{col}'] must be exactly one of "
                    "{equals: v}, {in: [..]}, {is_null: true}"
                )
            op, val = next(iter(op_spec.items()))
            if op not in RULE_OPS:
                raise SynthConfigError(
                    f"{where}: then['{col}'] op '{op}' unknown; use one of {RULE_OPS}"
                )
            if op == "in":
                if isinstance(val, (str, bytes)) or not isinstance(val, Sequence) or not val:
                    raise SynthConfigError(f"{where}: then['{col}'].in must be a non-empty list")
                val = tuple(_yaml_bool(v) for v in val)
            elif op == "equals":
                val = _yaml_bool(val)
            if op == "is_null" and val is not True:
                raise SynthConfigError(f"{where}: then['{col}'].is_null must be true")
            cons.append(RuleConsequence(str(col), op, None if op == "is_null" else val))
        rules.append(Rule(str(r["name"]), tuple(when_t), tuple(cons)))
    return tuple(rules)


def _or(value: Any, default: Any) -> Any:
    return default if value is None else value


def _is_parsed_rules(rules: Any) -> bool:
    return isinstance(rules, tuple) and all(isinstance(r, Rule) for r in rules)


def _validate_structure(c: SynthConfig) -> None:
    names = [o.name for o in c.outcomes]
    if c.order and sorted(c.order) != sorted(names):
        raise SynthConfigError(
            f"ss_synth_order must list every outcome of ss_outcomes once; got {list(c.order)}, "
            f"outcomes {names}"
        )
    for target, source in c.derived:
        if target not in names or source not in names or target == source:
            raise SynthConfigError(
                f"ss_synth_derived: '{target}: {source}' must map one outcome to another outcome"
            )
        if not c.outcome(source).is_discrete:
            raise SynthConfigError(
                f"ss_synth_derived: source '{source}' of '{target}' must be binary, categorical "
                "or ordinal"
            )
    if not 0 < c.spike_share <= 1:
        raise SynthConfigError(f"ss_synth_spike_share must be in (0, 1]; got {c.spike_share}")


def _validate(c: SynthConfig) -> None:
    _validate_structure(c)
    if not c.cell_dims:
        raise SynthConfigError("ss_cell_dims is empty: give at least one cell dimension")
    if len(set(c.cell_dims)) != len(c.cell_dims):
        raise SynthConfigError(f"ss_cell_dims has duplicates: {list(c.cell_dims)}")
    if not c.outcomes:
        raise SynthConfigError("ss_outcomes is empty: give at least one outcome")
    reserved = {c.unit_id, c.wave, "cell_id", *c.cell_dims, *c.auxiliaries}
    if c.weight:
        reserved.add(c.weight)
    for o in c.outcomes:
        where = f"ss_outcomes['{o.name}']"
        if o.name in reserved:
            raise SynthConfigError(f"{where}: name clashes with an id, dim, weight or auxiliary")
        if o.type not in OUTCOME_TYPES:
            raise SynthConfigError(f"{where}: type '{o.type}' unknown; use one of {OUTCOME_TYPES}")
        if o.type in ("categorical", "ordinal"):
            if not o.levels or len(o.levels) < 2:
                raise SynthConfigError(f"{where}: {o.type} needs 'levels' (at least two)")
            if len(set(o.levels)) != len(o.levels):
                raise SynthConfigError(f"{where}: levels have duplicates")
        elif o.levels is not None and o.type != "binary":
            raise SynthConfigError(f"{where}: 'levels' only applies to categorical/ordinal")
        if o.min is not None and o.max is not None and o.min >= o.max:
            raise SynthConfigError(f"{where}: min ({o.min}) must be below max ({o.max})")
        if o.scale is not None and o.scale not in SCALES:
            raise SynthConfigError(f"{where}: scale '{o.scale}' unknown; use one of {SCALES}")
        if o.scale == "log" and o.lower is None:
            raise SynthConfigError(f"{where}: scale 'log' needs a 'min'")
        if o.scale == "logit" and (o.min is None or o.max is None):
            raise SynthConfigError(f"{where}: scale 'logit' needs both 'min' and 'max'")
    if len(set(c.outcome_names)) != len(c.outcome_names):
        raise SynthConfigError("ss_outcomes has duplicate names")
    if c.m < 1:
        raise SynthConfigError(f"ss_synth_m must be >= 1; got {c.m}")
    if c.mode not in MODES:
        raise SynthConfigError(f"ss_synth_mode '{c.mode}' unknown; use one of {MODES}")
    if c.backend not in BACKENDS:
        raise SynthConfigError(f"ss_synth_backend '{c.backend}' unknown; use one of {BACKENDS}")
    if c.max_records_per_cell < 1:
        raise SynthConfigError("ss_synth_max_records_per_cell must be >= 1")
    if c.augment_units not in ("nonrespondents", "all"):
        raise SynthConfigError(
            f"ss_synth_augment_units must be 'nonrespondents' or 'all', got '{c.augment_units}'"
        )
    bad = set(c.augment_classes) - set(SUPPORT_CLASSES)
    if bad:
        raise SynthConfigError(
            f"ss_synth_augment_classes has {sorted(bad)}; allowed {SUPPORT_CLASSES}"
        )
    known = set(c.outcome_names) | set(c.cell_dims) | set(c.auxiliaries) | {c.wave}
    by_name = {o.name: o for o in c.outcomes}
    for r in c.rules:
        for col, vals in r.when:
            if col not in known:
                raise SynthConfigError(
                    f"rule '{r.name}': when-column '{col}' is not an outcome, cell dim, "
                    "auxiliary or the wave column"
                )
            if col in by_name and by_name[col].is_discrete:  # a typo would never fire
                _check_rule_value(r.name, by_name[col], RuleConsequence(col, "in", vals), "when")
        for t in r.then:
            if t.column not in by_name:
                raise SynthConfigError(
                    f"rule '{r.name}': then-column '{t.column}' must be a configured outcome"
                )
            _check_rule_value(r.name, by_name[t.column], t)


def _check_rule_value(rule: str, o: OutcomeSpec, t: RuleConsequence, side: str = "then") -> None:
    vals = [] if t.op == "is_null" else (list(t.value) if t.op == "in" else [t.value])
    for v in vals:
        where = f"rule '{rule}': {side}['{o.name}'] value {v!r}"
        if o.type in ("categorical", "ordinal"):
            if v not in o.levels:
                raise SynthConfigError(f"{where} is not one of the levels {list(o.levels)}")
        elif o.type == "binary":
            if v not in (0, 1):
                raise SynthConfigError(f"{where} must be 0 or 1")
        else:
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v):
                raise SynthConfigError(f"{where} must be a finite number")
            if o.lower is not None and v < o.lower or o.max is not None and v > o.max:
                raise SynthConfigError(f"{where} is outside [{o.lower}, {o.max}]")
            if o.type == "count" and float(v) != int(v):
                raise SynthConfigError(f"{where} must be an integer for a count")


def _jsonable(x: Any) -> Any:
    if isinstance(x, Mapping):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if hasattr(x, "item") and callable(x.item):
        return x.item()
    return x
