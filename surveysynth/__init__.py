"""surveysynth: sparse-cell survey synthesis, calibration and disclosure control.

Public entry points are importable from the package (``from surveysynth import
disclosure_metrics``) but loaded on first use, so ``import surveysynth.synth`` in a dbt Python
model or a Spark worker does not pay for modules it does not use. To export a name, add it to
``_EXPORTS`` with the module that defines it.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    # disclosure risk of synthetic records (risk.py)
    "DEFAULT_RISK_THRESHOLDS": "risk",
    "disclosure_metrics": "risk",
    # fidelity of synthetic records (fidelity.py)
    "DEFAULT_FIDELITY_THRESHOLDS": "fidelity",
    "fidelity_metrics": "fidelity",
    # protection of published tables (tables.py)
    "add_margins": "tables",
    "audit_intervals": "tables",
    "primary_suppression": "tables",
    "protect_two_way": "tables",
    "secondary_suppression": "tables",
    # sparse-cell synthesizer (synth.py, rules.py, synth_config.py)
    "SynthConfig": "synth",
    "synthesize": "synth",
    "synthesize_spark": "synth",
    "fit_model": "synth",
    "plan_records": "synth",
    "make_cell_sampler": "synth",
    "manifest": "synth",
    "support_table": "synth",
    "violations": "rules",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'surveysynth' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
