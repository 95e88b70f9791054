# surveysynth: the two commands README promises.
#   make demo   set up, generate the demo survey world, dbt build on embedded DuckDB with the demo's
#               configuration (demo/demo_vars.yml, plus its back-test truth), print a summary
#   make test   set up, then run the whole test suite (pytest: library + end-to-end dbt runs)
#   make bench  benchmarks that print ratios measured side by side in one run
#   make report / make dashboard   the release report (target/report.html) and the dashboard

PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
DBT := $(VENV)/bin/dbt
STAMP := $(VENV)/.installed
DEMO_SEED ?= 42

export DBT_PROFILES_DIR := $(CURDIR)
export DBT_SEND_ANONYMOUS_USAGE_STATS := false
export PYSPARK_PYTHON := $(CURDIR)/$(PY)
export PYSPARK_DRIVER_PYTHON := $(CURDIR)/$(PY)

.PHONY: setup demo test bench lint clean report dashboard

setup: $(STAMP)

# torch (CPU build) first, so sdv does not pull a multi-GB CUDA build.
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -c constraints.txt -e '.[dbt,engines,baselines,privacy,dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) scripts/demo/generate_demo.py --seed $(DEMO_SEED) --out data/demo
	$(DBT) build --target duckdb --vars "$$(cat demo/demo_vars.yml; echo 'ss_backtest_truth: "file:data/demo/demo_truth.parquet"')"
	$(PY) scripts/demo/demo_summary.py

test: $(STAMP)
	$(PY) -m pytest -q tests

# the release report of the demo warehouse (one self-contained HTML file) and the analysts' dashboard
report: $(STAMP)
	$(VENV)/bin/surveysynth report --db target/surveysynth.duckdb --out target/report.html

dashboard: $(STAMP)
	$(VENV)/bin/streamlit run scripts/demo/dashboard.py -- --db target/surveysynth.duckdb

bench: $(STAMP)
	$(PY) scripts/bench/bench.py

lint: $(STAMP)
	$(VENV)/bin/ruff check surveysynth scripts tests
	$(VENV)/bin/ruff format --check surveysynth scripts tests

clean:
	rm -rf target logs data
