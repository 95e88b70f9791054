"""What every statistical gate shares: its false-alarm rate, when it cannot judge, and whether
that blocks the release.

Each metrics table (fidelity_metrics, disclosure_metrics, backtest_summary) carries, per row,
``status`` (``pass``, ``fail``, ``not_assessable`` or ``report``), ``blocks_release`` and
``passed`` = not ``blocks_release``; the gate tests fail the build on rows not passed. A row is
``not_assessable`` when the gate has too few rows to tell a failure from chance (the row's
``detail`` says why); var ``ss_not_assessable_blocks`` decides whether that stops the release
(default false: a small survey releases, and the release records the gate as not assessable).

Vars:
  ss_gate_alpha            false-alarm rate of each statistical gate: the probability that it fails
                           when the synthetic records are as good as a fresh real sample (0.01)
  ss_gate_min_rows         fewest rows a gate judges: fidelity pairs, units in each of the
                           disclosure train and holdout halves, back-test cell x wave rows (20)
  ss_not_assessable_blocks a gate that cannot judge blocks the release (false)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["NOT_ASSESSABLE", "GateSettings", "finish", "not_assessable_row", "p_value_row"]

NOT_ASSESSABLE = "not_assessable"


class GateConfigError(ValueError):
    """A gate var is malformed; the message names the var and the fix."""


@dataclass(frozen=True)
class GateSettings:
    alpha: float = 0.01
    min_rows: int = 20
    not_assessable_blocks: bool = False

    @classmethod
    def from_vars(cls, v: Mapping[str, Any]) -> GateSettings:
        alpha = v.get("ss_gate_alpha")
        alpha = 0.01 if alpha is None else float(alpha)
        if not 0.0 < alpha < 0.5:
            raise GateConfigError(f"ss_gate_alpha must be in (0, 0.5), got {alpha}")
        min_rows = v.get("ss_gate_min_rows")
        min_rows = 20 if min_rows is None else int(min_rows)
        if min_rows < 2:
            raise GateConfigError(f"ss_gate_min_rows must be >= 2, got {min_rows}")
        blocks = bool(v.get("ss_not_assessable_blocks") or False)
        return cls(alpha, min_rows, blocks)


def not_assessable_row(metric: str, reason: str, **extra: Any) -> dict[str, Any]:
    """The one row a gate writes when it cannot judge."""
    return {
        "metric": metric,
        "column": None,
        "value": float("nan"),
        "threshold": float("nan"),
        "comparison": "",
        "status": NOT_ASSESSABLE,
        "detail": f"not assessable: {reason}",
        **extra,
    }


def p_value_row(metric: str, p: float, alpha: float, detail: str, **first: Any) -> dict[str, Any]:
    """The row a gate writes for its test: the p-value, passed when above ``alpha``. ``first``:
    columns placed before the metric (a table's family, say)."""
    return {
        **first,
        "metric": metric,
        "column": None,
        "value": p,
        "reference": float("nan"),
        "threshold": alpha,
        "comparison": ">",
        "passed": bool(p > alpha),
        "detail": detail,
    }


def finish(frame: pd.DataFrame, settings: GateSettings) -> pd.DataFrame:
    """Fill ``status`` (from ``passed`` where not set), ``blocks_release`` and ``passed``."""
    out = frame.copy()
    if "status" not in out.columns:
        out["status"] = None
    passed = out["passed"] if "passed" in out.columns else pd.Series(True, index=out.index)
    passed = passed.astype(object).where(passed.notna(), True).astype(bool)
    has_thr = pd.to_numeric(out["threshold"], errors="coerce").notna()
    derived = np.where(passed, np.where(has_thr, "pass", "report"), "fail")
    out["status"] = out["status"].where(out["status"].notna(), pd.Series(derived, index=out.index))
    na = out["status"] == NOT_ASSESSABLE
    out["blocks_release"] = (out["status"] == "fail") | (na & settings.not_assessable_blocks)
    out["passed"] = ~out["blocks_release"]
    return out
