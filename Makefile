# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# No telemetry: nothing may wait on the network.
export RUNTIME__DLTHUB_TELEMETRY := false
export DO_NOT_TRACK := 1
export DBT_SEND_ANONYMOUS_USAGE_STATS := false

RELIABILITY_REPORT := $(CURDIR)/.courier/reliability.jsonl

BENCH_ROWS ?= 1000000

.PHONY: demo test reliability scaleout matrix matrix-lock bench install clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

# Each performance case beside its baseline (end to end, then landing); `make bench BENCH_ROWS=10000000`
# for the large size. bench/history.py (30 days of part files, one run a day), bench/year.py (a day onto a
# year of record, and `courier status` there), bench/spark.py (Spark increments) and bench/experiment.py
# (experiment results at 10 M decisions) run on their own.
bench: $(STAMP)
	$(BIN)/python bench/e2e.py --rows $(BENCH_ROWS)
	$(BIN)/python bench/suite.py --rows $(BENCH_ROWS)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m optimizely_courier.dev.demo

# The linter, then everything but the fault loops and the injection fuzz test, which `make reliability`
# runs after it.
test: $(STAMP)
	$(BIN)/ruff check pipelines tests bench
	$(BIN)/python -m pytest -m "not faults and not injection and not scaleout and not long"

# The fault, crash and fuzz suites, then their report: faults injected, runs recovered, rows lost
# and duplicated (must be 0), bad inputs tried, tracebacks seen (must be 0), injection inputs tried,
# canary changes (must be 0: tests/test_injection_fuzz.py). Every fault point is hit
# FAULT_RUNS times from an empty warehouse and FAULT_RUNS times after a landed day (20 runs a point);
# SEQUENCES random run histories.
FAULT_RUNS ?= 10
SEQUENCES ?= 10
reliability: $(STAMP)
	mkdir -p .courier && rm -f $(RELIABILITY_REPORT)
	COURIER_RELIABILITY_REPORT=$(RELIABILITY_REPORT) COURIER_FAULT_RUNS=$(FAULT_RUNS) COURIER_SEQUENCES=$(SEQUENCES) \
		$(BIN)/python -m pytest -m reliability -q
	$(BIN)/python -m tests.reliability_report $(RELIABILITY_REPORT)

# The suites too slow for `make test` (about 10 minutes): the Spark equivalence tests, local and on a
# standalone cluster (a master and two workers, each its own JVM), 3,600 part files in one run, the
# benchmarks' smoke runs, the long end-to-end suites (dlt's own CLI through a run, the demo), the UI's
# browser test (Debian's chromium, driven by Playwright), and the exported Airflow DAG under Airflow 2.10
# and 3.1 (each installed from PyPI once into .courier/airflow-<version>, about 1 to 3 minutes; Airflow's
# dependencies conflict with dbt's, so never into .venv).
scaleout: $(STAMP)
	$(BIN)/python -m pytest -m "scaleout or long" -q

# Both ends of the supported ranges (pyproject.toml): for each set of constraints/<set>.txt, a fresh venv
# in .courier/matrix-<set> (never .venv) with the runtime, the demo's S3 server and the test tools as that
# set pins them, and the core tests: landing from the S3 server, a courier run, the shipped feeds built by
# dbt, their semantic tags in dbt's docs, experiment results (with the lab example's seed). Measured
# here (2 cores, pip's cache warm): about 1 minute to install a set and 40 s to test it, 3.5 minutes for both.
MATRIX_SETS := oldest newest
MATRIX_TESTS := \
	tests/test_landing.py::test_lands_kms_encrypted_export_into_raw_tables_with_landing_columns \
	tests/test_landing.py::test_rerun_of_the_same_dates_lands_nothing_new \
	tests/test_domain.py::test_shipped_feeds_build_one_row_per_uuid_from_generated_e3 \
	tests/test_domain.py::test_later_row_in_a_file_wins_over_an_earlier_one \
	tests/test_domain.py::test_dbt_docs_show_semantic_tags_and_pii_flags \
	tests/test_experiments.py::test_results_hold_units_totals_means_and_variances_per_variation_and_metric \
	tests/test_experiments.py::test_courier_results_compares_each_variation_with_the_baseline \
	tests/test_experiments.py::test_the_lab_example_gives_its_five_metrics_two_of_them_from_a_seed_by_its_own_columns
MATRIX_TOOLS := pytest pytest-timeout hypothesis
matrix: $(MATRIX_SETS:%=matrix-%)

matrix-%: constraints/%.txt
	rm -rf .courier/matrix-$*
	$(PYTHON) -m venv .courier/matrix-$*
	.courier/matrix-$*/bin/pip install --quiet --upgrade pip
	.courier/matrix-$*/bin/pip install --quiet -c constraints/$*.txt -e ".[demo]" $(MATRIX_TOOLS)
	.courier/matrix-$*/bin/python -m pip check
	.courier/matrix-$*/bin/python -m pip freeze | grep -iE '^(dlt|duckdb|dbt-core|dbt-duckdb|pyarrow|boto3)=='
	.courier/matrix-$*/bin/python -m pytest -q -p no:cacheprovider $(MATRIX_TESTS)

# Rewrites constraints/<set>.txt from what pip resolves today: oldest from the floors in
# constraints/oldest.in, newest from pyproject.toml's ranges alone. Run `make matrix` after it.
matrix-lock:
	for set in $(MATRIX_SETS); do \
		rm -rf .courier/lock-$$set && $(PYTHON) -m venv .courier/lock-$$set && \
		.courier/lock-$$set/bin/pip install --quiet --upgrade pip && \
		.courier/lock-$$set/bin/pip install --quiet $$( [ -f constraints/$$set.in ] && echo -c constraints/$$set.in ) \
			-e ".[demo]" $(MATRIX_TOOLS) && \
		{ echo "# make matrix-lock: the $$set set (see the Makefile); pip freeze of a fresh venv"; \
		  .courier/lock-$$set/bin/pip freeze --exclude-editable; } > constraints/$$set.txt || exit 1; \
	done

clean:
	rm -rf $(VENV) .courier warehouse.duckdb warehouse.duckdb.wal target logs *.egg-info pipelines/*.egg-info
