"""Inline SVG charts of the report: heatmap, interval (forest) plot, grouped bars."""

from __future__ import annotations

import math
from collections.abc import Sequence

from surveysynth.report.html import esc, fmt

PALETTE = ["#1f77b4", "#e07b39", "#2ca02c", "#9467bd", "#8c564b"]


def _svg(width: float, height: float, body: str, label: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{esc(label)}" '
        f'width="{width:.0f}" height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}">'
        f"{body}</svg>"
    )


def _text(x, y, s, anchor="start", size=11, extra="") -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" {extra}>'
        f"{esc(s)}</text>"
    )


def heatmap(
    rows: Sequence[str],
    cols: Sequence[str],
    fill: dict[tuple[str, str], str],
    tip: dict[tuple[str, str], str],
    label: str,
    cell: int = 16,
) -> str:
    """A grid: one rect per (row, col) coloured ``fill[(row, col)]``, with a title tooltip."""
    left = 8 + 7 * max((len(str(r)) for r in rows), default=4)
    top = 10 + 6 * max((len(str(c)) for c in cols), default=4)
    parts = []
    for j, c in enumerate(cols):
        x = left + j * cell + cell / 2
        parts.append(
            _text(x, top - 4, c, "start", 10, f'transform="rotate(-60 {x:.1f} {top - 4})"')
        )
    for i, r in enumerate(rows):
        y = top + i * cell
        parts.append(_text(left - 4, y + cell * 0.75, r, "end", 10))
        for j, c in enumerate(cols):
            color = fill.get((r, c), "#f0f0f0")
            parts.append(
                f'<rect x="{left + j * cell}" y="{y}" width="{cell - 1}" height="{cell - 1}" '
                f'fill="{color}"><title>{esc(tip.get((r, c), ""))}</title></rect>'
            )
    width = left + len(cols) * cell + 10
    return _svg(width, top + len(rows) * cell + 10, "".join(parts), label)


def ramp(value: float, vmax: float) -> str:
    """White to red by value / vmax (0..1)."""
    t = 0.0 if vmax <= 0 or math.isnan(value) else max(0.0, min(1.0, value / vmax))
    g = int(245 - 170 * t)
    return f"rgb(245,{g},{g})"


def intervals(
    labels: Sequence[str],
    series: dict[str, list[tuple[float, float, float]]],
    label: str,
    width: int = 720,
) -> str:
    """Forest plot: for each label, one (estimate, low, high) per series, side by side."""
    vals = [v for s in series.values() for t in s for v in t if v is not None and math.isfinite(v)]
    if not vals:
        return '<p class="absent">no intervals to draw</p>'
    lo, hi = min(vals), max(vals)
    lo, hi = (lo - 0.5, hi + 0.5) if hi == lo else (lo, hi)
    left = 10 + 7 * max(len(s) for s in labels)
    plot_w = width - left - 20
    row_h = 8 + 10 * len(series)

    def x(v: float) -> float:
        return left + (v - lo) / (hi - lo) * plot_w

    parts = []
    for i, lab in enumerate(labels):
        y0 = 20 + i * row_h
        parts.append(_text(left - 6, y0 + row_h / 2 + 3, lab, "end", 10))
        for k, (name, pts) in enumerate(series.items()):
            est, a, b = pts[i]
            if est is None or not math.isfinite(est):
                continue
            y = y0 + 6 + 10 * k
            color = PALETTE[k % len(PALETTE)]
            if a is not None and b is not None and math.isfinite(a) and math.isfinite(b):
                parts.append(
                    f'<line x1="{x(a):.1f}" x2="{x(b):.1f}" y1="{y}" y2="{y}" '
                    f'stroke="{color}" stroke-width="2"/>'
                )
            parts.append(
                f'<circle cx="{x(est):.1f}" cy="{y}" r="3" fill="{color}"><title>{esc(name)}: '
                f"{fmt(est)} [{fmt(a)}, {fmt(b)}]</title></circle>"
            )
    height = 30 + len(labels) * row_h
    parts.append(_text(left, height - 4, fmt(lo), "start", 10))
    parts.append(_text(left + plot_w, height - 4, fmt(hi), "end", 10))
    parts += [
        _text(left + 120 * k, 12, f"● {name}", "start", 11, f'fill="{PALETTE[k % 5]}"')
        for k, name in enumerate(series)
    ]
    return _svg(width, height, "".join(parts), label)


def grouped_bars(
    categories: Sequence[str], series: dict[str, list[float]], label: str, width: int = 360
) -> str:
    """Horizontal bars, one group per category, one bar per series (shares 0..1 or any scale)."""
    vals = [v for s in series.values() for v in s if v is not None and math.isfinite(v)]
    vmax = max(vals, default=1.0) or 1.0
    left = 10 + 7 * max((len(str(c)) for c in categories), default=4)
    plot_w = width - left - 50
    bar = 9
    group = bar * len(series) + 6
    parts = []
    for i, cat in enumerate(categories):
        y0 = 18 + i * group
        parts.append(_text(left - 6, y0 + group / 2, cat, "end", 10))
        for k, (name, vs) in enumerate(series.items()):
            v = vs[i]
            w = 0 if v is None or not math.isfinite(v) else max(0.0, v / vmax * plot_w)
            y = y0 + k * bar
            parts.append(
                f'<rect x="{left}" y="{y}" width="{w:.1f}" height="{bar - 1}" '
                f'fill="{PALETTE[k % 5]}"><title>{esc(name)}: {fmt(v)}</title></rect>'
            )
            parts.append(_text(left + w + 3, y + bar - 1, fmt(v, 3), "start", 9))
    parts += [
        _text(left + 140 * k, 11, f"■ {name}", "start", 10, f'fill="{PALETTE[k % 5]}"')
        for k, name in enumerate(series)
    ]
    return _svg(width, 24 + len(categories) * group, "".join(parts), label)
