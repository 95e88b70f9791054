"""The register auxiliaries in DP mode: each unit's place within its cell of the frame.

The frame (the business register) is public to the synthesizer; the answers are not. A unit's
auxiliary x enters DP mode only as its mid-rank within its cell of the frame,

    u = (#{frame units of the cell with x' < x} + #{x' = x} / 2) / N_c,

a value in (0, 1) that is about uniform over the cell's units (a missing x, or a cell the frame
does not hold, gives 1/2). For the respondents it becomes a score 2u - 1 in [-1, 1] beside the
answers' scores in the one noisy measurement of sums and cross-products per pooling group x wave
(:func:`surveysynth.privacy.measure.query_scores`), so the copula learns how the answers move with
the unit's size inside its cell; for a record to synthesize, z = Phi^-1(u) is the copula's
conditioning value. Because u is uniform within every cell, conditioning on it moves records
within the cell and leaves the cell's drawn shares and means where the fit put them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from surveysynth.contract.config import SynthConfig
from surveysynth.contract.inputs import make_cell_id


class RegisterRanks:
    """The frame's auxiliaries, sorted within cells, to place any unit within its cell."""

    def __init__(self, frame: pd.DataFrame | None, config: SynthConfig):
        self.names = tuple(config.auxiliaries) if frame is not None else ()
        self.dims = list(config.cell_dims)
        self.unit_id = config.unit_id
        self._frame = frame
        if not self.names:
            return
        cells = pd.Index(make_cell_id(frame, self.dims).astype(str))
        self._cells = pd.Index(sorted(cells.unique()))
        self._code = self._cells.get_indexer(cells)
        self._n = np.bincount(self._code, minlength=len(self._cells)).astype(float)
        self._start = np.concatenate([[0], np.cumsum(self._n)[:-1]]).astype(np.int64)
        self._sorted = {a: self._sort(self._values(frame, a)) for a in self.names}

    @property
    def width(self) -> int:
        return len(self.names)

    def _values(self, df: pd.DataFrame, a: str) -> np.ndarray:
        if a in df.columns:
            return pd.to_numeric(df[a], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        f = self._frame
        pos = pd.Index(f[self.unit_id].astype(str)).get_indexer(df[self.unit_id].astype(str))
        vals = self._values(f, a)
        return np.where(pos >= 0, vals[np.maximum(pos, 0)], np.nan)

    def _sort(self, x: np.ndarray) -> np.ndarray:
        """The frame's values ordered by cell, then value (missing values last in their cell)."""
        order = np.lexsort((np.nan_to_num(x, nan=np.inf), self._code))
        return np.nan_to_num(x[order], nan=np.inf)

    def u(self, df: pd.DataFrame, jitter: np.ndarray | None = None) -> np.ndarray:
        """Each row's mid-rank within its frame cell, one column per auxiliary (rows x width).
        ``jitter`` (uniforms, rows x width): a unit tied with others takes its place within the
        tie at that share instead of the middle (a randomised rank, exactly uniform over the
        cell's units: a micro cell's register values are mostly 1 or 2, and their mid-ranks,
        clumped, drew too many records to the first values of the answers they predict)."""
        out = np.full((len(df), self.width), 0.5)
        if not self.names:
            return out
        c = self._cells.get_indexer(make_cell_id(df, self.dims).astype(str))
        known = c >= 0
        for j, a in enumerate(self.names):
            x = self._values(df, a)
            ok = known & np.isfinite(x)
            at = None if jitter is None else jitter[ok, j]
            out[ok, j] = self._mid_rank(self._sorted[a], c[ok], x[ok], at)
        return out

    def _mid_rank(self, s: np.ndarray, c: np.ndarray, x: np.ndarray, at=None) -> np.ndarray:
        """(below + equal / 2) / N_c (``at``: below + at x equal), by binary search inside each
        cell's sorted block."""
        below, equal = np.empty(len(x)), np.empty(len(x))
        for cell in np.unique(c):
            rows = np.flatnonzero(c == cell)
            a, n = self._start[cell], int(self._n[cell])
            block = s[a : a + n]
            lo = np.searchsorted(block, x[rows], side="left")
            hi = np.searchsorted(block, x[rows], side="right")
            below[rows], equal[rows] = lo, hi - lo
        n_c = self._n[c]
        if at is not None:
            return np.clip((below + at * equal) / n_c, 1e-9, 1.0 - 1e-9)
        return np.clip((below + equal / 2.0) / n_c, 0.5 / n_c, 1.0 - 0.5 / n_c)


def scores(u: np.ndarray) -> np.ndarray:
    """The measured score of a mid-rank: 2u - 1, in [-1, 1]."""
    return 2.0 * u - 1.0
