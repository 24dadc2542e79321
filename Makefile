# ponder: the two commands a fresh machine needs are `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test

.PHONY: demo test bench clean venv browser

# What running ponder needs (make demo): the package and its dependencies, no test-only package.
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -c constraints.txt -e .
	touch $(STAMP)

# What the tests need on top (make test): pytest, the oracles (keras, jax, OpenCV), Ray, MLflow, Playwright.
$(TEST_STAMP): $(STAMP)
	$(PIP) install -q -c constraints.txt -e '.[test]'
	touch $(TEST_STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/ponder run quickstart --out reports

# OMP_WAIT_POLICY=PASSIVE: idle OpenMP threads sleep, so two suites (or a suite and a study) can share the cores.
test: $(TEST_STAMP) browser
	OMP_WAIT_POLICY=PASSIVE $(PY) -m pytest -q -m "not slow"

# The report test drives Debian's headless Chromium (never a downloaded browser).
browser:
	@command -v chromium >/dev/null 2>&1 || (DEBIAN_FRONTEND=noninteractive apt-get update -q && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium) || \
		{ echo "make test needs Debian's chromium for the browser test: apt-get install chromium"; exit 1; }

bench: $(STAMP)
	$(PY) benchmarks/population.py
	$(PY) benchmarks/whole_job.py

clean:
	rm -rf $(VENV) reports ponder.duckdb ponder.duckdb.wal .pytest_cache build dist src/*.egg-info
