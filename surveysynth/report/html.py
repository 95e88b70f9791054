"""HTML pieces of the report: escaping, tables, badges, the page shell (inline CSS, no network)."""

from __future__ import annotations

import html
import math
from typing import Any

import pandas as pd

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:0;color:#1d2430;
background:#f6f7f9;line-height:1.45}
header{background:#1f3a5f;color:#fff;padding:18px 32px}header h1{margin:0;font-size:1.5em}
nav{padding:6px 32px;background:#e6ebf2;font-size:.9em}nav a{margin-right:12px;color:#1f3a5f}
main{padding:8px 32px 40px;max-width:1200px}
section{background:#fff;border:1px solid #dde2ea;border-radius:6px;padding:12px 20px;margin:16px 0}
h2{font-size:1.2em;margin:.3em 0 .6em;color:#1f3a5f}h3{font-size:1em;margin:1em 0 .4em}
table{border-collapse:collapse;font-size:.85em;margin:6px 0}
th,td{border:1px solid #dde2ea;padding:3px 7px;text-align:left;vertical-align:top;max-width:420px}
th{background:#eef1f5}td.num{text-align:right;font-variant-numeric:tabular-nums}
.pass{color:#0b6b2f;font-weight:600}.fail{color:#b3261e;font-weight:600}
.na{color:#8a6d00;font-weight:600}.absent{color:#777;font-style:italic}
.verdict{font-size:1.1em;padding:10px 14px;border-radius:6px;margin:8px 0}
.verdict.ok{background:#e3f4e8;border:1px solid #9bd3ac}.verdict.bad{background:#fbe4e2;border:1px solid #e8a29c}
td{white-space:nowrap}.note{color:#555;font-size:.88em}.wide{overflow-x:auto}svg text{font-family:inherit}
"""


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def fmt(value: Any, digits: int = 4) -> str:
    """A cell's text: numbers to ``digits`` significant figures, missing as an em dash."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    try:
        if pd.isna(value):
            return "—"
    except (TypeError, ValueError):
        pass
    return str(value)


def status_badge(value: Any) -> str:
    """passed True / False / None (or a status string) as a coloured word."""
    if isinstance(value, str):
        low = value.lower()
        cls = "pass" if low in {"pass", "passed", "ok"} else "fail" if "fail" in low else "na"
        cls = "note" if low == "information" else cls
        return f'<span class="{cls}">{esc(value)}</span>'
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return '<span class="na">not assessable</span>'
    return '<span class="pass">pass</span>' if bool(value) else '<span class="fail">fail</span>'


def table(df: pd.DataFrame | None, badges: tuple[str, ...] = (), max_rows: int = 200) -> str:
    """A DataFrame as an HTML table; columns in ``badges`` shown as pass/fail words."""
    if df is None:
        return '<p class="absent">table absent from this warehouse</p>'
    if df.empty:
        return '<p class="absent">no rows</p>'
    head = "".join(f"<th>{esc(c)}</th>" for c in df.columns)
    rows = []
    for rec in df.head(max_rows).itertuples(index=False):
        cells = []
        for col, v in zip(df.columns, rec):
            if col in badges:
                cells.append(f"<td>{status_badge(v)}</td>")
            else:
                num = isinstance(v, (int, float)) and not isinstance(v, bool)
                text = fmt(v)
                if len(text) > 120:
                    cells.append(f'<td title="{esc(text)}">{esc(text[:117])}…</td>')
                else:
                    cells.append(f"<td{' class=num' if num else ''}>{esc(text)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    more = (
        f'<p class="note">{len(df) - max_rows} more rows not shown</p>'
        if len(df) > max_rows
        else ""
    )
    return f'<div class="wide"><table><tr>{head}</tr>{"".join(rows)}</table></div>{more}'


def section(sid: str, title: str, body: str) -> str:
    return f'<section id="{sid}" data-section="{sid}"><h2>{esc(title)}</h2>{body}</section>'


def page(title: str, subtitle: str, sections: list[tuple[str, str, str]]) -> str:
    nav = "".join(f'<a href="#{sid}">{esc(t)}</a>' for sid, t, _ in sections)
    body = "".join(section(sid, t, b) for sid, t, b in sections)
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{esc(title)}</title>"
        '<link rel="icon" href="data:,">'
        f"<style>{CSS}</style></head><body><header><h1>{esc(title)}</h1>"
        f"<div>{esc(subtitle)}</div></header><nav>{nav}</nav><main>{body}</main></body></html>"
    )
