"""Business rules in DP mode: shares drawn for the rows no rule overrides.

A rule such as ``when trading_status in [paused, closed] then turnover = 0`` is enforced after
sampling. Drawn blindly from its cell's shares, the target would then hold the rule's value in
the rows the rule fires on *and* in a share of the others: turnover would be 0 about
P(zero) + P(not trading) of the time instead of P(zero). So, before the target is drawn, the rows
where the rule does not fire (known: its when-columns are earlier outcomes, already drawn) get
the cell's shares with the rule's part taken out of the forced code,

    p'_v = p_v max(m_v - f_c, 0) / m_v,   p'_j = p_j (j != v),   renormalised,

p the implicate's drawn shares, m_v the posterior mean share of the forced code and f_c the
posterior mean share of the rule's condition in the cell (a product over its when-columns when
there are several: independence between them is assumed). The part is taken from the posterior
means, not from the draws: with the wide draws of a noisy cell, max(p_v - f, 0) of two
independent draws would leave the forced code too often (a tenth of the trading businesses'
records with no turnover, against 3% of the respondents'). The rows where it fires are overwritten by
:func:`surveysynth.contract.rules.enforce` as before. Rules whose target or condition cannot be
read as answer codes (``in`` consequences, numeric conditions, a condition on a later outcome)
are left to ``enforce`` alone.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from surveysynth.contract.rules import when_mask
from surveysynth.privacy.measure import value_levels


def _code_of(o, value, lo):
    """The answer code (0 missing, levels from 1; numeric: 1 + j at lo + j for a value with a
    code of its own, :func:`surveysynth.privacy.measure.codes_of`) of a value."""
    if value is None:
        return 0
    if o.is_numeric:
        j = float(value) - lo if lo is not None else -1.0
        return 1 + int(j) if j in range(value_levels(o) + 1) else None
    levels = list(o.category_levels)
    return levels.index(value) + 1 if value in levels else None


def _condition_share(rule, outcomes, par, k):
    """The cell's share of the rule's condition in ``par`` (shares per cell; None: not readable
    as answer codes)."""
    f = np.ones(len(k))
    for col, values in rule.when:
        o = outcomes.get(col)
        if o is None or o.is_numeric or col not in par:
            return None
        codes = [c for c in (_code_of(o, v, None) for v in values) if c]
        f = f * par[col][k][:, codes].sum(axis=1)
    return f


def rule_shares(o, shares, k, drawn: dict, rules, outcomes: dict, means, lo=None) -> np.ndarray:
    """``shares`` (rows x codes, the cells' drawn shares of outcome ``o`` for the rows) with each
    readable rule's part taken out of its forced code on the rows where it does not fire;
    ``means``: the posterior mean shares per cell of every outcome."""
    out = shares
    for rule in rules:
        for t in rule.then:
            if t.column != o.name or t.op not in ("equals", "is_null"):
                continue
            code = _code_of(o, None if t.op == "is_null" else t.value, lo)
            if code is None or not all(c in drawn for c in rule.when_columns):
                continue
            f = _condition_share(rule, outcomes, means, k)
            if f is None:
                continue
            fired = when_mask(pd.DataFrame({c: drawn[c] for c in rule.when_columns}), rule)
            out = out.copy() if out is shares else out
            keep = ~fired
            m = means[o.name][k[keep], code]
            out[keep, code] *= np.maximum(m - f[keep], 0.0) / np.maximum(m, 1e-12)
            out[keep] = out[keep] / np.maximum(out[keep].sum(axis=1, keepdims=True), 1e-300)
    return out
