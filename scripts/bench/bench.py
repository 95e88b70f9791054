"""`make bench`: every benchmark of the project, one after another, each printing its own table
of ratios measured side by side in the same run. Nothing here asserts; read the ratios against
the targets printed beside them. Pass names to run a subset: `python scripts/bench/bench.py synth risk`.

The samplics comparison inside `design` is slow (minutes); BENCH_SAMPLICS_ROWS lowers its size.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable

BENCHES: dict[str, list[list[str]]] = {
    # issue: foundation (demo build wall time; staging at 1M / 10M vs one scan-and-group-by)
    "staging": [[PY, "scripts/bench/bench_staging.py"]],
    # issue: raking 10M rows vs the minimal job; 1M rows vs samplics
    "design": [
        [
            PY,
            "scripts/bench/bench_design.py",
            "--samplics-rows",
            os.environ.get("BENCH_SAMPLICS_ROWS", "1000000"),
        ]
    ],
    # issue: synthesizer vs SDV GaussianCopula on 100k rows; 1M responses x 5 implicates
    "synth": [
        [PY, "scripts/bench/bench_synth.py", "compare", "--rows", "100000", "--repeat", "3"],
        [PY, "scripts/bench/bench_synth.py", "scale", "--rows", "1000000", "--m", "5"],
    ],
    # issue: augmented vs Fay-Herriot EBLUP; back-test build overhead
    "augmented": [[PY, "scripts/bench/bench_augmented.py"]],
    # issue: disclosure metrics, 100k synthetic x 100k real
    "risk": [[PY, "scripts/bench/bench_risk.py", "--rows", "100000"]],
    # issue 10: unit-level baselines (BHF, logistic EBP) vs statsmodels REML; 1,000 domains
    "unit_level": [[PY, "scripts/bench/bench_unit_level.py", "--reps", "5"]],
}


def main(names: list[str]) -> int:
    chosen = names or list(BENCHES)
    unknown = [n for n in chosen if n not in BENCHES]
    if unknown:
        print(f"unknown benchmark(s) {unknown}; choose from {list(BENCHES)}", file=sys.stderr)
        return 2
    failed = []
    for name in chosen:
        for cmd in BENCHES[name]:
            print(
                f"\n===== {name}: {' '.join(Path(c).name if c == PY else c for c in cmd)}",
                flush=True,
            )
            t = time.perf_counter()
            rc = subprocess.run(cmd, check=False, cwd=ROOT).returncode
            print(f"----- {name} done in {time.perf_counter() - t:.0f} s (exit {rc})", flush=True)
            if rc != 0:
                failed.append(name)
    if failed:
        print(f"\nbenchmarks that did not complete: {failed}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
