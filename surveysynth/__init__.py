"""surveysynth: sparse-cell survey synthesis, calibration and disclosure control.

Public entry points are importable from the package (``from surveysynth import
disclosure_metrics``) but loaded on first use, so ``import surveysynth.synthesis.api`` in a dbt Python
model or a Spark worker does not pay for modules it does not use. To export a name, add it to
``_EXPORTS`` with the module that defines it.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

#: The library's version; the dbt package (dbt_project.yml) carries the same one, and every dbt
#: Python model checks that they match (surveysynth.versions.require_matching_versions).
__version__ = "0.1.0"


def _preload_for_model_threads() -> None:
    """Import scipy.stats now when the package is loaded inside a dbt run.

    dbt runs Python models in threads of one process. Two models importing scipy.stats at once
    by different paths (SDV's and the checks') deadlock inside the import system, which breaks
    the tie by handing one of them a partially initialised module (``ImportError: cannot import
    name 'chi2_contingency' from partially initialized module``). The import system runs this
    file once while every other thread that imports the package waits, so scipy.stats is
    complete before any model imports anything else. Outside dbt the package stays lazy."""
    if "dbt" in sys.modules:
        importlib.import_module("scipy.stats")


_preload_for_model_threads()

_EXPORTS: dict[str, str] = {
    # disclosure risk of synthetic records (checks/risk.py)
    "DEFAULT_RISK_THRESHOLDS": "checks.risk",
    "disclosure_metrics": "checks.risk",
    # fidelity of synthetic records (checks/fidelity.py)
    "DEFAULT_FIDELITY_THRESHOLDS": "checks.fidelity",
    "fidelity_metrics": "checks.fidelity",
    # protection of published tables (disclosure/tables.py)
    "add_margins": "disclosure.tables",
    "audit_intervals": "disclosure.tables",
    "primary_suppression": "disclosure.tables",
    "protect_two_way": "disclosure.tables",
    "secondary_suppression": "disclosure.tables",
    # sparse-cell synthesizer (synthesis/, contract/)
    "SynthConfig": "synthesis.api",
    "synthesize": "synthesis.api",
    "synthesize_spark": "synthesis.api",
    "fit_model": "synthesis.api",
    "plan_records": "synthesis.api",
    "make_cell_sampler": "synthesis.api",
    "manifest": "synthesis.api",
    "support_table": "synthesis.api",
    "violations": "contract.rules",
    # a DataFrame in, synthetic records and estimates out (quick.py)
    "synthesize_survey": "quick",
    "SurveySynthesis": "quick",
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
