"""Content hash of the synthesizer's output on the planted 100k replica (bench_synth's compare
data: ``planted_rows(100_000)``, replica mode, one implicate, seed 1), for checking that a
speed-up leaves the output unchanged.

    .venv/bin/python scripts/bench/replica_hash.py            # content_hash dfd2dc78...
    .venv/bin/python scripts/bench/replica_hash.py --rows 20000

The content hash is ``surveysynth.seeding.content_hash`` (what the manifest records as
``hash_output``: order-free); ``ordered`` also fixes the row order (md5 of the rows'
``hash_pandas_object`` in output order).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts" / "bench"))

from bench_synth import planted_rows

from surveysynth.seeding import content_hash
from surveysynth.synthesis.api import synthesize


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000)
    a = ap.parse_args(argv)
    data = planted_rows(a.rows)
    cfg = data["config"].with_(mode="replica", m=1, seed=1)
    t0 = time.perf_counter()
    out = synthesize(data["responses"], data["frame"], data["support"], cfg)
    secs = time.perf_counter() - t0
    ordered = hashlib.md5(pd.util.hash_pandas_object(out, index=False).to_numpy()).hexdigest()
    print(f"rows {len(out):,} in {secs:.2f}s")
    print(f"content_hash {content_hash(out)}")
    print(f"ordered      {ordered}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
