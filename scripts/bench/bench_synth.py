"""Benchmarks of the hierarchical synthesizer (a script that prints tables, not a test).

1. ``compare``: fit + sample of the hierarchical synthesizer (replica mode, one implicate)
   vs SDV's GaussianCopulaSynthesizer (fit + sample of as many rows) on the same table of
   respondents; wall times, their ratio, and SDMetrics' QualityReport score of both
   (real respondents vs each synthetic table, same columns and metadata).
2. ``scale``: replica mode at scale, e.g. 1M responses -> 5 implicates x 1M rows; wall
   time and peak resident memory of the process (resource.getrusage).

    .venv/bin/python scripts/bench/bench_synth.py compare --rows 100000
    .venv/bin/python scripts/bench/bench_synth.py compare --rows 100000 --repeat 5   # in turn, medians
    .venv/bin/python scripts/bench/bench_synth.py scale --rows 1000000 --m 5
    .venv/bin/python scripts/bench/bench_synth.py compare --data demo     # the demo world's responses
"""

from __future__ import annotations

import argparse
import logging
import resource
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from surveysynth.contract.config import SynthConfig
from surveysynth.synthesis.api import support_table, synthesize
from surveysynth.synthesis.planted import planted_survey


def planted_rows(n_rows: int, seed: int = 1, waves: int = 4) -> dict:
    """A planted survey with about ``n_rows`` responses over 12 x 12 x 4 cells."""
    n_cells = 12 * 12 * 4
    n_per = max(1.0, n_rows / (n_cells * waves * 0.8) - 1.0)
    rng = np.random.default_rng(seed)
    # uneven cells: a fifth sparse (1-3 respondents a wave), the rest supported
    n = rng.poisson(n_per, n_cells) * rng.choice([0, 1, 1, 1, 1], n_cells) + rng.integers(
        1, 4, n_cells
    )
    return planted_survey(
        n_regions=12,
        n_sectors=12,
        sizes=("a", "b", "c", "d"),
        waves=waves,
        n_per_cell=n,
        N_per_cell=np.maximum(4 * n, 50),
        seed=seed,
    )


def demo_rows() -> dict:
    sys.path.insert(0, str(ROOT / "scripts" / "eval"))
    import eval_synth

    d = eval_synth.load_demo()
    cfg = eval_synth.demo_config()
    s = support_table(d["responses"], cfg, frame=d["frame"])
    return {"responses": d["responses"], "frame": d["frame"], "support": s, "config": cfg}


def quality_columns(cfg: SynthConfig) -> tuple[list[str], dict]:
    cols = [*cfg.cell_dims, cfg.wave, *cfg.outcome_names]
    meta = {"columns": {c: {"sdtype": "categorical"} for c in [*cfg.cell_dims, cfg.wave]}}
    for o in cfg.outcomes:
        meta["columns"][o.name] = {"sdtype": "numerical" if o.is_numeric else "categorical"}
    return cols, meta


def _q_table(df: pd.DataFrame, cfg: SynthConfig) -> pd.DataFrame:
    cols, _ = quality_columns(cfg)
    out = df[cols].copy()
    out[cfg.wave] = out[cfg.wave].astype(str)
    for o in cfg.outcomes:
        if o.is_numeric:
            out[o.name] = pd.to_numeric(out[o.name], errors="coerce").astype(float)
        elif o.type == "binary":
            x = pd.to_numeric(out[o.name], errors="coerce")
            out[o.name] = x.map({0.0: "0", 1.0: "1"})
    return out


def quality_score(real: pd.DataFrame, synthetic: pd.DataFrame, cfg: SynthConfig) -> float:
    from sdmetrics.reports.single_table import QualityReport

    _, meta = quality_columns(cfg)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rep = QualityReport()
        rep.generate(_q_table(real, cfg), _q_table(synthetic, cfg), meta, verbose=False)
    return float(rep.get_score())


def compare(data: dict, seed: int = 1, repeat: int = 1) -> pd.DataFrame:
    """Both synthesizers timed ``repeat`` times, one after the other in turn (so a slow spell of
    the machine falls on both); the rows report the median run of each, and ``ratios`` in the
    frame's attrs the SDV / hierarchical wall ratio of every turn."""
    from surveysynth.synthesis.sdv import fit_sdv, sample_sdv

    r, f, s = data["responses"], data["frame"], data["support"]
    cfg = data["config"].with_(mode="replica", m=1, seed=seed)
    gc_cfg = cfg.with_(backend="sdv_gaussian_copula")
    # warm-up on a small slice (imports, first-call overheads) for both, then time each in turn
    few = r.groupby(cfg.wave).head(200)
    synthesize(few, f, s, cfg)
    fit_sdv(few, gc_cfg)
    runs_h, runs_gc = [], []
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        hier = synthesize(r, f, s, cfg)
        runs_h.append((time.perf_counter() - t0, time.process_time() - c0))
        t0, c0 = time.perf_counter(), time.process_time()
        synth = fit_sdv(r, gc_cfg)
        t_fit = time.perf_counter() - t0
        gc = sample_sdv(synth, len(r), seed)
        runs_gc.append((time.perf_counter() - t0, time.process_time() - c0, t_fit))
    (t_h, c_h), (t_gc, c_gc, t_fit) = _median_run(runs_h), _median_run(runs_gc)

    q_h = quality_score(r, hier, cfg)
    q_gc = quality_score(r, gc, cfg)
    out = pd.DataFrame(
        [
            {
                "synthesizer": "hierarchical (surveysynth)",
                "rows_in": len(r),
                "rows_out": len(hier),
                "wall_s": t_h,
                "cpu_s": c_h,
                "quality_score": q_h,
            },
            {
                "synthesizer": "SDV GaussianCopula",
                "rows_in": len(r),
                "rows_out": len(gc),
                "wall_s": t_gc,
                "cpu_s": c_gc,
                "quality_score": q_gc,
                "fit_wall_s": t_fit,
            },
        ]
    )
    out.attrs["ratios"] = [g[0] / h[0] for h, g in zip(runs_h, runs_gc)]
    return out


def _median_run(runs: list[tuple]) -> tuple:
    """The run whose wall time is the median (the lower middle one of an even count)."""
    return sorted(runs)[(len(runs) - 1) // 2]


def scale(data: dict, m: int = 5, seed: int = 1) -> dict:
    r, f, s = data["responses"], data["frame"], data["support"]
    cfg = data["config"].with_(mode="replica", m=m, seed=seed)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    t0, c0 = time.perf_counter(), time.process_time()
    out = synthesize(r, f, s, cfg)
    secs, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    tim = out.attrs.get("surveysynth_manifest", {}).get("timings")
    return {
        "responses": len(r),
        "implicates": m,
        "rows_out": len(out),
        "wall_s": round(secs, 1),
        "cpu_s": round(cpu, 1),
        "peak_rss_gb_process": round(peak, 2),
        "peak_rss_gb_before": round(rss0, 2),
        "timings": tim,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=["compare", "scale"])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--m", type=int, default=5)
    ap.add_argument("--data", choices=["planted", "demo"], default="planted")
    ap.add_argument(
        "--repeat", type=int, default=1, help="compare: time both this many times, in turn"
    )
    ap.add_argument("--verbose", action="store_true")
    a = ap.parse_args(argv)
    if a.verbose:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    t0 = time.perf_counter()
    data = demo_rows() if a.data == "demo" else planted_rows(a.rows)
    print(
        f"data: {a.data}, {len(data['responses']):,} responses, "
        f"{0 if data['frame'] is None else len(data['frame']):,} frame units "
        f"({time.perf_counter() - t0:.1f}s to build)"
    )
    pd.set_option("display.width", 160)
    if a.what == "compare":
        res = compare(data, repeat=max(a.repeat, 1))
        print(res.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
        h, g = res.iloc[0], res.iloc[1]
        ratios = res.attrs["ratios"]
        print(
            f"\nspeed-up SDV / hierarchical: wall {g['wall_s'] / h['wall_s']:.1f}x, "
            f"CPU {g['cpu_s'] / h['cpu_s']:.1f}x (target >= 10x); quality "
            f"{h['quality_score']:.3f} vs SDV {g['quality_score']:.3f} (target >= SDV)"
        )
        if len(ratios) > 1:
            print(
                f"wall ratio of each of the {len(ratios)} turns: "
                + ", ".join(f"{x:.1f}x" for x in ratios)
                + f" (median {float(np.median(ratios)):.1f}x; the rows above are each side's "
                "median run)"
            )
    else:
        res = scale(data, a.m)
        for k, v in res.items():
            print(f"{k:>22}: {v}")
        print("targets: <= 300 s, <= 8 GB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
