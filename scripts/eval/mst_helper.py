"""smartnoise-synth MST on the demo responses, for eval_dp.py (run in smartnoise's own venv).

    python mst_helper.py responses.parquet out.parquet '<json plan>'

MST takes categorical columns only: numeric outcomes are put on public bins (the value at the
lower bound; ten equal bins of log(1 + x - lo) up to log(1 + hi - lo), from the plan's bounds) and
decoded to the bin's middle; a missing answer is its own category. One fit at (epsilon, delta),
then ``m`` samples of ``rows`` records each (implicate 1..m).
"""

from __future__ import annotations

import json
import sys

import numpy as np
import pandas as pd

N_BINS = 10


def encode(r: pd.DataFrame, plan: dict) -> pd.DataFrame:
    cols = [*plan["dims"], plan["wave"]]
    out = r[cols].astype(str).copy()
    for name, typ, _ in plan["outcomes"]:
        s = r[name]
        if typ in ("continuous", "count"):
            lo, hi = plan["bounds"][name]
            x = np.clip(pd.to_numeric(s, errors="coerce").to_numpy(dtype=float), lo, hi)
            v = np.log1p(np.where(np.isnan(x), 0.0, x) - lo) / np.log1p(hi - lo)
            b = np.where(x <= lo, 0, np.minimum(np.ceil(v * N_BINS), N_BINS)).astype(int)
            out[name] = np.where(np.isnan(x), "NA", b.astype(str))
        else:
            out[name] = s.astype(object).where(s.notna(), "NA").astype(str)
    return out


def decode(df: pd.DataFrame, plan: dict) -> pd.DataFrame:
    out = df.copy()
    out[plan["wave"]] = pd.to_numeric(out[plan["wave"]]).astype("int64")
    for name, typ, levels in plan["outcomes"]:
        s = out[name].astype(str)
        if typ in ("continuous", "count"):
            lo, hi = plan["bounds"][name]
            b = pd.to_numeric(s.where(s != "NA"), errors="coerce").to_numpy(dtype=float)
            mid = np.where(b == 0, 0.0, (b - 0.5) / N_BINS) * np.log1p(hi - lo)
            x = np.where(np.isnan(b), np.nan, lo + np.expm1(mid))
            out[name] = np.round(x) if typ == "count" else x
        elif typ == "binary":
            out[name] = pd.to_numeric(s.where(s != "NA"), errors="coerce").astype("Int64")
        else:
            out[name] = s.where(s != "NA", None)
    return out


def main() -> int:
    src, dst, raw = sys.argv[1:4]
    plan = json.loads(raw)
    from snsynth import Synthesizer

    data = encode(pd.read_parquet(src), plan)
    synth = Synthesizer.create("mst", epsilon=plan["epsilon"], delta=plan["delta"])
    synth.fit(data, categorical_columns=list(data.columns), preprocessor_eps=0.0)
    parts = []
    for i in range(1, plan["m"] + 1):
        s = decode(synth.sample(plan["rows"]), plan)
        parts.append(s.assign(implicate=i))
    pd.concat(parts, ignore_index=True).to_parquet(dst)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
