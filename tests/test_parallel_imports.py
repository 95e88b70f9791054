"""Python models that import heavy libraries are safe to run in parallel.

dbt runs Python models in threads of one process. Without care, SDV (ss_synth_backend:
sdv_gaussian_copula) imported in one model while another imports the checks fails with
`ImportError: cannot import name 'chi2_contingency' from partially initialized module`. Each case
here starts a fresh interpreter that has loaded dbt, as a dbt run has, and imports from two
threads at once what two models import: the glue and SDV, and one of the checks.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

SCRIPT = """
import sys, threading
if sys.argv[1] == "dbt":
    import dbt.version  # a dbt run has dbt loaded when its models import the package
errors = []
def load(names):
    try:
        for name in names.split(","):
            __import__(name)
    except Exception as e:
        errors.append(f"{names}: {type(e).__name__}: {e}")
threads = [threading.Thread(target=load, args=(m,)) for m in sys.argv[2:]]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(errors or "ok")
"""

# the synthesis model: the glue, then SDV when the backend is one of its synthesizers
SDV_MODEL = "surveysynth.dbt_glue,sdv.single_table"


@pytest.mark.parametrize(
    "other",
    ["surveysynth.checks.backtest", "surveysynth.checks.fidelity", "surveysynth.checks.risk"],
)
def test_sdv_and_checks_import_at_once(other):
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, "dbt", SDV_MODEL, other],
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == "ok", proc.stdout
