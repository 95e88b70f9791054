"""README's Python quick start runs as written: its code block is taken from README.md and run
in a fresh interpreter, from a folder holding a small demo world under data/demo (what `make demo`
writes), so the README stays copy-paste correct."""

from __future__ import annotations

import re
import subprocess
import sys

from harness import ROOT, generate_demo

SMALL = [
    "--seed",
    "3",
    "--frame-size",
    "6000",
    "--target-responses-per-wave",
    "150",
    "--waves",
    "2",
]


def quickstart_block() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Python quick start", 1)
    assert len(section) == 2, "README has no '## Python quick start' section"
    block = re.search(r"```python\n(.*?)```", section[1], re.DOTALL)
    assert block, "the quick start section has no python code block"
    return block.group(1)


def test_quickstart_is_five_lines():
    lines = [line for line in quickstart_block().splitlines() if line.strip()]
    assert len(lines) <= 5, lines


def test_readme_quickstart_runs(tmp_path):
    generate_demo(tmp_path / "data" / "demo", *SMALL)
    code = quickstart_block() + (
        "\nassert len(result.records) > 0 and result.records['implicate'].nunique() == config.m"
        "\nassert result.estimates['estimate'].notna().any()"
        "\nassert set(result.estimates['indicator']) >= {'turnover', 'applied_finance=1'}\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        check=False,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "cell_id" in proc.stdout
