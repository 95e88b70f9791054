"""Protection of published tables of estimates: primary rules, secondary suppression, audit.

    cells = primary_suppression(cells, "n", contrib, keys=["region", "size_band"],
                                value_col="turnover")               # threshold, (n,k), p%
    result = secondary_suppression(table, primary_mask, protection)  # 2-D table with margins
    audit = audit_intervals(table, result.suppressed, protection)    # LP bounds, shortfall
    protected = protect_two_way(contrib, "region", "size_band", "turnover")  # all three

Rules (STATS.md, "Table protection"; Hundepool et al. 2012, ch. 4):

- threshold: a cell with 0 < n < ``threshold_k`` contributors is unsafe;
- (n, k) dominance: unsafe when the ``dominance_n`` largest contributions exceed
  ``dominance_k`` % of the cell total X;
- p%: with x1 >= x2 the two largest contributions, unsafe when X - x1 - x2 < p/100 x1.

A suppressed cell is protected when the interval an intruder can derive for it, from the
published cells, the table's additivity and non-negativity, reaches far enough from its
value X on both sides. Required protection: p% rule p/100 x1 - (X - x1 - x2); (n, k) rule
100/k (x1 + ... + xn) - X (the standard upper protection level, used on both sides);
threshold rule ``threshold_protection_share`` x X (a share of the cell value, so that a
small cell cannot be pinned down exactly); the largest that applies.

Scope: 2-D tables with both margins (rows x columns, row totals, column totals, the grand
total), every cell of which (margins included) may be suppressed. The audit itself works on
any table written as cells plus additive relations (``total = sum of parts``): n-D or
hierarchical tables need only more relations (:func:`audit_linear`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import linprog
from scipy.sparse import csr_matrix

__all__ = [
    "ProtectedTable",
    "SuppressionResult",
    "add_margins",
    "audit_intervals",
    "audit_linear",
    "primary_suppression",
    "protect_two_way",
    "secondary_suppression",
]

TOTAL = "Total"


# ------------------------------------------------------------------------------ primary


def primary_suppression(
    cells: pd.DataFrame,
    n_col: str | None,
    contrib: pd.DataFrame,
    threshold_k: int = 3,
    dominance_n: int = 2,
    dominance_k: float = 85.0,
    p: float = 10.0,
    *,
    keys: Sequence[str] | None = None,
    value_col: str,
    unit_col: str | None = None,
    weight_col: str | None = None,
    threshold_protection_share: float = 0.10,
) -> pd.DataFrame:
    """Flag unsafe cells of a magnitude table and the protection each one needs.

    ``cells`` holds one row per published cell (``keys`` columns, and ``n_col``, the number
    of contributors the threshold rule counts; None = count them in ``contrib``). ``contrib``
    is the real microdata: ``keys`` and ``value_col``. With ``unit_col`` the rows of one unit
    in a cell are added first (a business reporting twice is one contributor). With
    ``weight_col`` contributions are weighted (the estimate's own contributions); by default
    they are the respondents' reported values, which is what an intruder among them knows.

    Returns ``cells`` plus: ``n_contributors``, ``total``, ``x1``, ``x2``, ``top_n_sum``,
    ``unsafe_threshold``, ``unsafe_dominance``, ``unsafe_p``, ``primary``,
    ``protection_required`` (0 for safe cells) and ``reason``. A cell with no contributors
    is safe (its zero is published); a cell absent from ``contrib`` is judged on ``n_col``
    alone."""
    keys = _primary_keys(cells, n_col, contrib, keys, value_col, unit_col, weight_col)
    if not 0 < dominance_k <= 100 or dominance_n < 1 or p < 0 or threshold_k < 1:
        raise ValueError(
            f"rule parameters out of range: threshold_k={threshold_k} (>= 1), dominance_n="
            f"{dominance_n} (>= 1), dominance_k={dominance_k} (in (0, 100]), p={p} (>= 0)"
        )
    agg = _concentration(contrib, keys, value_col, unit_col, weight_col, dominance_n)
    out = cells.merge(agg, on=keys, how="left", validate="one_to_one")
    for col in ("n_contributors", "total", "x1", "x2", "top_n_sum"):
        out[col] = out[col].fillna(0.0)
    out["n_contributors"] = out["n_contributors"].astype(int)
    n = out[n_col].to_numpy(dtype=float) if n_col else out["n_contributors"].to_numpy(dtype=float)
    _apply_rules(out, n, threshold_k, dominance_n, dominance_k, p, threshold_protection_share)
    return out


def _primary_keys(cells, n_col, contrib, keys, value_col, unit_col, weight_col) -> list[str]:
    """The key columns (given, or those ``cells`` and ``contrib`` share), every named column
    checked to exist."""
    if keys is None:
        keys = [c for c in cells.columns if c in contrib.columns and c not in (n_col, value_col)]
    keys = list(keys)
    if not keys:
        raise ValueError(
            "primary_suppression: no key columns shared by cells and contrib; pass keys="
        )
    for c in [*keys, value_col, *(x for x in (unit_col, weight_col) if x)]:
        if c not in contrib.columns:
            raise KeyError(f"contrib has no column {c!r} (columns: {list(contrib.columns)})")
    for c in [*keys, *([n_col] if n_col else [])]:
        if c not in cells.columns:
            raise KeyError(f"cells has no column {c!r} (columns: {list(cells.columns)})")
    return keys


def _concentration(contrib, keys, value_col, unit_col, weight_col, dominance_n) -> pd.DataFrame:
    """Per cell of ``contrib``: its contributors (a unit's rows added first), their total, the
    largest two contributions and the sum of the largest ``dominance_n``."""
    v = pd.to_numeric(contrib[value_col], errors="coerce")
    if weight_col:
        v = v * pd.to_numeric(contrib[weight_col], errors="coerce")
    c = contrib[keys].copy()
    c["_v"] = v.to_numpy(dtype=float)
    c = c[c["_v"].notna()]
    if (c["_v"] < 0).any():
        raise ValueError(
            f"{value_col!r} has negative contributions; dominance and p% rules need values >= 0 "
            "(protect the absolute values, or the positive and negative parts as two tables)"
        )
    if unit_col:
        c["_u"] = contrib.loc[c.index, unit_col].to_numpy()
        c = (
            c.groupby([*keys, "_u"], dropna=False, sort=False, observed=True)["_v"]
            .sum()
            .reset_index()
        )
    c = c.sort_values([*keys, "_v"], ascending=[True] * len(keys) + [False], kind="stable")
    rank = c.groupby(keys, dropna=False, sort=False, observed=True).cumcount().to_numpy()
    c["_x1"] = np.where(rank == 0, c["_v"], 0.0)
    c["_x2"] = np.where(rank == 1, c["_v"], 0.0)
    c["_top"] = np.where(rank < dominance_n, c["_v"], 0.0)
    return (
        c.groupby(keys, dropna=False, sort=False, observed=True)
        .agg(
            n_contributors=("_v", "size"),
            total=("_v", "sum"),
            x1=("_x1", "sum"),
            x2=("_x2", "sum"),
            top_n_sum=("_top", "sum"),
        )
        .reset_index()
    )


def _apply_rules(out, n, threshold_k, dominance_n, dominance_k, p, protection_share) -> None:
    """The three rules' flags, ``primary``, ``protection_required`` and ``reason``, in place."""
    x, x1, x2, top = (out[k].to_numpy(dtype=float) for k in ("total", "x1", "x2", "top_n_sum"))
    pos = x > 0
    out["unsafe_threshold"] = (n > 0) & (n < threshold_k)
    out["unsafe_dominance"] = pos & (top > dominance_k / 100.0 * x)
    p_margin = x - x1 - x2 - p / 100.0 * x1
    out["unsafe_p"] = pos & (p_margin < 0)
    out["primary"] = out["unsafe_threshold"] | out["unsafe_dominance"] | out["unsafe_p"]
    prot = np.zeros(len(out))
    prot = np.where(out["unsafe_p"], np.maximum(prot, -p_margin), prot)
    prot = np.where(out["unsafe_dominance"], np.maximum(prot, 100.0 / dominance_k * top - x), prot)
    prot = np.where(out["unsafe_threshold"], np.maximum(prot, protection_share * np.abs(x)), prot)
    out["protection_required"] = prot
    reasons = np.full(len(out), "", dtype=object)
    for flag, text in (
        ("unsafe_threshold", f"threshold (n < {threshold_k})"),
        ("unsafe_dominance", f"({dominance_n},{dominance_k:g}) dominance"),
        ("unsafe_p", f"p% (p = {p:g})"),
    ):
        f = out[flag].to_numpy()
        reasons[f] = np.where(reasons[f] == "", text, reasons[f] + "; " + text)
    out["reason"] = reasons


# ------------------------------------------------------------------------------ 2-D tables


def add_margins(interior: pd.DataFrame, total_label: str = TOTAL) -> pd.DataFrame:
    """The interior table plus a row of column totals and a column of row totals."""
    t = interior.astype(float).copy()
    t[total_label] = t.sum(axis=1)
    t.loc[total_label] = t.sum(axis=0)
    return t


def _relations_2d(n_rows: int, n_cols: int) -> csr_matrix:
    """A with A @ cells = 0 for a 2-D table with margins (last row / column are totals),
    cells flattened row-major: each row sums to its total, each column to its total."""
    rows, cols, vals = [], [], []
    r = 0
    for i in range(n_rows):
        for j in range(n_cols - 1):
            rows.append(r), cols.append(i * n_cols + j), vals.append(1.0)
        rows.append(r), cols.append(i * n_cols + n_cols - 1), vals.append(-1.0)
        r += 1
    for j in range(n_cols):
        for i in range(n_rows - 1):
            rows.append(r), cols.append(i * n_cols + j), vals.append(1.0)
        rows.append(r), cols.append((n_rows - 1) * n_cols + j), vals.append(-1.0)
        r += 1
    return csr_matrix((vals, (rows, cols)), shape=(r, n_rows * n_cols))


def _check_additive(values: np.ndarray, a: csr_matrix) -> None:
    resid = a @ values
    scale = max(float(np.abs(values).max(initial=0.0)), 1.0)
    bad = np.abs(resid) > 1e-6 * scale
    if bad.any():
        raise ValueError(
            f"the table is not additive: {int(bad.sum())} relations off by up to "
            f"{float(np.abs(resid).max()):.6g}; build the margins with add_margins() so that "
            "every total equals the sum of its parts"
        )


def audit_linear(
    values: np.ndarray,
    relations: csr_matrix,
    suppressed: np.ndarray,
    protection: np.ndarray | None = None,
    *,
    nonnegative: bool = True,
) -> pd.DataFrame:
    """Feasible interval of every suppressed cell of any additive table (``relations`` @
    cells = 0), by linear programming: minimise and maximise the cell subject to the
    published cells, the relations and (by default) non-negativity (STATS.md). Returns
    ``cell`` (flat position), ``value``, ``lower``, ``upper``, ``protection_required``,
    ``lower_gap`` (value - lower), ``upper_gap`` (upper - value), ``shortfall`` =
    max(0, protection - upper_gap, protection - lower_gap) and ``protected``."""
    values = np.asarray(values, dtype=float)
    suppressed = np.asarray(suppressed, dtype=bool)
    prot = np.zeros(len(values)) if protection is None else np.asarray(protection, dtype=float)
    _check_additive(values, relations)
    sup = np.flatnonzero(suppressed)
    pub = np.flatnonzero(~suppressed)
    cols = ["cell", *AUDIT_AMOUNTS, "protected"]
    if len(sup) == 0:
        return pd.DataFrame(columns=cols)
    a = relations.tocsc()
    a_sup, a_pub = a[:, sup], a[:, pub]
    keep = np.asarray((a_sup != 0).sum(axis=1)).ravel() > 0
    a_eq = a_sup[keep]
    b_eq = -(a_pub[keep] @ values[pub])
    bounds = [(0.0, None) if nonnegative else (None, None)] * len(sup)
    lower = np.empty(len(sup))
    upper = np.empty(len(sup))
    for k in range(len(sup)):
        c = np.zeros(len(sup))
        c[k] = 1.0
        for sign, store in ((1.0, lower), (-1.0, upper)):
            if a_eq.shape[0] == 0:  # no relation involves a suppressed cell
                store[k] = (0.0 if nonnegative else -np.inf) if sign > 0 else np.inf
                continue
            res = linprog(sign * c, A_eq=a_eq, b_eq=b_eq, bounds=bounds, method="highs")
            if res.status == 0:
                store[k] = float(res.x[k])
            elif res.status == 3:  # unbounded in this direction
                store[k] = -np.inf if sign > 0 else np.inf
            else:
                raise ValueError(f"audit LP failed for cell {int(sup[k])}: {res.message}")
    v = values[sup]
    lo_gap, up_gap = v - lower, upper - v
    need = prot[sup]
    shortfall = np.maximum(0.0, np.maximum(need - up_gap, need - lo_gap))
    tol = 1e-9 * max(float(np.abs(values).max(initial=0.0)), 1.0)
    shortfall = np.where(shortfall > tol, shortfall, 0.0)
    return pd.DataFrame(
        {
            "cell": sup,
            "value": v,
            "lower": lower,
            "upper": upper,
            "protection_required": need,
            "lower_gap": lo_gap,
            "upper_gap": up_gap,
            "shortfall": shortfall,
            "protected": shortfall == 0.0,
        }
    )


def _as_grid(
    frame: pd.DataFrame | np.ndarray | None, table: pd.DataFrame, what: str, dtype: type
) -> np.ndarray:
    if frame is None:
        return np.zeros(table.shape, dtype=dtype)
    if isinstance(frame, pd.DataFrame):
        frame = frame.reindex(index=table.index, columns=table.columns)
        if frame.isna().any().any():
            raise ValueError(f"{what} does not cover every cell of the table (labels must match)")
        arr = frame.to_numpy()
    else:
        arr = np.asarray(frame)
    if arr.shape != table.shape:
        raise ValueError(f"{what} has shape {arr.shape}, the table {table.shape}")
    return arr.astype(dtype)


# the magnitudes in an audit row (a cell's value, its feasible interval, the protection
# required, the gaps and the shortfall), in the order the audit reports them
AUDIT_AMOUNTS = (
    "value",
    "lower",
    "upper",
    "protection_required",
    "lower_gap",
    "upper_gap",
    "shortfall",
)


def audit_intervals(
    table: pd.DataFrame,
    suppressed: pd.DataFrame | np.ndarray,
    protection: pd.DataFrame | np.ndarray | None = None,
    *,
    nonnegative: bool = True,
) -> pd.DataFrame:
    """LP bounds of each suppressed cell of a 2-D ``table`` with margins (its last row and last
    column are the totals, as :func:`add_margins` makes them) given everything published.

    ``suppressed`` and ``protection`` (required protection per cell, e.g. from
    :func:`primary_suppression`; default 0) are grids of the table's shape. Returns one row
    per suppressed cell: ``row``, ``col`` and the columns of :func:`audit_linear`; a cell with
    ``shortfall`` > 0 can be estimated more closely than its rule allows."""
    values = table.to_numpy(dtype=float)
    mask = _as_grid(suppressed, table, "suppressed", bool)
    prot = _as_grid(protection, table, "protection", float)
    nr, nc = values.shape
    out = audit_linear(
        values.ravel(), _relations_2d(nr, nc), mask.ravel(), prot.ravel(), nonnegative=nonnegative
    )
    out.insert(0, "col", [table.columns[i % nc] for i in out["cell"]])
    out.insert(0, "row", [table.index[i // nc] for i in out["cell"]])
    return out.drop(columns="cell")


# ------------------------------------------------------------------------------ secondary


@dataclass(frozen=True)
class SuppressionResult:
    """Cells to suppress (``suppressed``: primary + secondary), the secondary ones alone, the
    final audit, and whether every suppressed cell got its protection."""

    suppressed: pd.DataFrame
    secondary: pd.DataFrame
    audit: pd.DataFrame
    iterations: int
    protected: bool


def secondary_suppression(
    table: pd.DataFrame,
    primary: pd.DataFrame | np.ndarray,
    protection: pd.DataFrame | np.ndarray | None = None,
    *,
    nonnegative: bool = True,
    max_iter: int = 100,
) -> SuppressionResult:
    """Complementary suppressions for a 2-D table with margins, until the audit passes.

    A heuristic, not an optimal pattern (tau-ARGUS's optimisation is the reference):

    1. every row and column of the table (margins included) that holds one suppressed cell
       gets a second, among the published cells of that line whose value is at least the
       protection its suppressed cell needs (zeros are useless partners: non-negativity pins
       them): first one whose crossing line also holds a lone suppressed cell (closing a
       rectangle rather than opening a new line), then interior before margins, then the
       smallest;
    2. the LP audit (:func:`audit_intervals`) then bounds every suppressed cell; for a cell
       still short of protection, the smallest published cell of its row or column that is
       at least the shortfall is suppressed too, and step 1 runs again.

    Stops when every suppressed cell is protected, or when no candidate is left
    (``protected`` False: the caller must then suppress more, e.g. the whole line)."""
    pat = _Pattern(table, _as_grid(primary, table, "primary", bool), protection)
    it = 0
    ok = True
    audit = pd.DataFrame()
    while it < max_iter:
        it += 1
        ok = pat.close_lines()
        audit = audit_intervals(table, pat.sup, pat.prot, nonnegative=nonnegative)
        short = audit[audit["shortfall"] > 0]
        if short.empty or not ok or not pat.cover_shortfalls(short):
            break
    protected = ok and bool(audit.empty or (audit["shortfall"] == 0).all())
    as_frame = lambda m: pd.DataFrame(m, index=table.index, columns=table.columns)
    return SuppressionResult(as_frame(pat.sup), as_frame(pat.sup & ~pat.prim), audit, it, protected)


class _Pattern:
    """A 2-D table's suppression pattern as :func:`secondary_suppression` grows it: the values,
    the suppressed cells (``sup``; ``prim`` the primary ones), the protection each needs, which
    cells are margins, and every row and column as a line of cells."""

    def __init__(self, table: pd.DataFrame, primary: np.ndarray, protection) -> None:
        self.table = table
        self.values = table.to_numpy(dtype=float)
        self.nr, self.nc = self.values.shape
        self.sup = primary.copy()
        self.prim = self.sup.copy()
        self.prot = _as_grid(protection, table, "protection", float)
        self.is_margin = np.zeros_like(self.sup)
        self.is_margin[-1, :] = True
        self.is_margin[:, -1] = True
        nr, nc = self.nr, self.nc
        self.lines = [[(i, j) for j in range(nc)] for i in range(nr)] + [
            [(i, j) for i in range(nr)] for j in range(nc)
        ]

    def pick(self, cands: list[tuple[int, int]], need: float) -> tuple[int, int] | None:
        """The best published partner among ``cands`` (one line) for a cell needing ``need``:
        one that closes a crossing line holding one suppressed cell (no new lone line), else
        joins a line that already has two, else opens a new one; then interior before margins;
        then the smallest value. Zeros only when nothing else is left; none at least ``need``:
        the largest interior one."""
        sup, values = self.sup, self.values
        pool = [(i, j) for i, j in cands if not sup[i, j] and values[i, j] > 0]
        if not pool:
            pool = [(i, j) for i, j in cands if not sup[i, j]]
            if not pool:
                return None
        line_is_row = len({i for i, _ in cands}) == 1

        def key(c: tuple[int, int]) -> tuple[int, bool, float]:
            # suppressed cells already in the line that crosses this one at c
            k = int(sup[:, c[1]].sum()) if line_is_row else int(sup[c[0], :].sum())
            return (0 if k == 1 else 1 if k >= 2 else 2, bool(self.is_margin[c]), float(values[c]))

        enough = [c for c in pool if values[c] >= need]
        if enough:
            return min(enough, key=key)
        return max(pool, key=lambda c: (not self.is_margin[c], values[c]))

    def close_lines(self) -> bool:
        """Give every line holding one suppressed cell a second, until none is left; False when
        a line has no candidate."""
        changed = True
        while changed:
            changed = False
            for line in self.lines:
                inside = [c for c in line if self.sup[c]]
                if len(inside) == 1:
                    c = self.pick(line, float(self.prot[inside[0]]))
                    if c is None:
                        return False
                    self.sup[c] = True
                    changed = True
        return True

    def cover_shortfalls(self, short: pd.DataFrame) -> bool:
        """For each audited cell short of protection, suppress the smallest published cell of
        its row or column that is at least the shortfall; False when none was added."""
        added = False
        for _, r in short.iterrows():
            i, j = self.table.index.get_loc(r["row"]), self.table.columns.get_loc(r["col"])
            options = [
                self.pick([(i, jj) for jj in range(self.nc)], float(r["shortfall"])),
                self.pick([(ii, j) for ii in range(self.nr)], float(r["shortfall"])),
            ]
            options = [o for o in options if o is not None]
            c = min(options, key=lambda o: self.values[o]) if options else None
            if c is not None:
                self.sup[c] = True
                added = True
        return added


# ------------------------------------------------------------------------------ all in one


@dataclass(frozen=True)
class ProtectedTable:
    """A protected 2-D magnitude table: values with margins, the primary check of every cell
    (long form), the suppression pattern, and the audit that proves it."""

    table: pd.DataFrame
    cells: pd.DataFrame
    suppressed: pd.DataFrame
    audit: pd.DataFrame
    protected: bool

    def published(self) -> pd.DataFrame:
        """The table as released: suppressed cells are NaN."""
        return self.table.mask(self.suppressed)


def protect_two_way(
    contrib: pd.DataFrame,
    row: str,
    col: str,
    value_col: str,
    *,
    unit_col: str | None = None,
    weight_col: str | None = None,
    threshold_k: int = 3,
    dominance_n: int = 2,
    dominance_k: float = 85.0,
    p: float = 10.0,
    threshold_protection_share: float = 0.10,
    total_label: str = TOTAL,
    nonnegative: bool = True,
) -> ProtectedTable:
    """Tabulate ``value_col`` by ``row`` x ``col`` with margins from the microdata, apply the
    primary rules to every cell (margins too: a row total can have one contributor), then
    secondary suppression and the audit."""
    for c in (row, col, value_col):
        if c not in contrib.columns:
            raise KeyError(f"contrib has no column {c!r}")
    data = contrib.copy()
    v = pd.to_numeric(data[value_col], errors="coerce")
    if weight_col:
        v = v * pd.to_numeric(data[weight_col], errors="coerce")
    interior = data.assign(_v=v).pivot_table(
        index=row, columns=col, values="_v", aggfunc="sum", fill_value=0.0, observed=False
    )
    # labels as strings (in the categories' own sorted order), so the total label fits in
    interior.index = interior.index.map(str)
    interior.columns = interior.columns.map(str)
    data[row] = data[row].map(str)
    data[col] = data[col].map(str)
    if total_label in interior.index or total_label in interior.columns:
        raise ValueError(
            f"{total_label!r} is a category of {row!r} or {col!r}; pick another total_label"
        )
    table = add_margins(interior, total_label)
    # every contribution counts in its cell, its row total, its column total and the grand total
    stacked = pd.concat(
        [
            data,
            data.assign(**{col: total_label}),
            data.assign(**{row: total_label}),
            data.assign(**{row: total_label, col: total_label}),
        ],
        ignore_index=True,
    )
    grid = pd.MultiIndex.from_product([table.index, table.columns], names=[row, col]).to_frame(
        index=False
    )
    cells = primary_suppression(
        grid,
        None,
        stacked,
        threshold_k,
        dominance_n,
        dominance_k,
        p,
        keys=[row, col],
        value_col=value_col,
        unit_col=unit_col,
        weight_col=weight_col,
        threshold_protection_share=threshold_protection_share,
    )
    wide = lambda c: cells.pivot(index=row, columns=col, values=c).reindex(
        index=table.index, columns=table.columns
    )
    res = secondary_suppression(
        table, wide("primary").astype(bool), wide("protection_required"), nonnegative=nonnegative
    )
    cells = cells.merge(
        res.suppressed.stack()
        .rename("suppressed")
        .reset_index()
        .rename(columns={"level_0": row, "level_1": col}),
        on=[row, col],
    )
    cells["secondary"] = cells["suppressed"] & ~cells["primary"]
    return ProtectedTable(table, cells, res.suppressed, res.audit, res.protected)
