# Quickstart: `make demo`, `make test`. Each target sets up .venv first (idempotent).
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=
STAMP := $(VENV)/.ltbench-installed

.PHONY: setup demo test lint format bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

demo: setup
	$(VENV)/bin/ltbench demo

# pytest exits 5 when it collected no test: that is a failure here, never a pass.
test: setup
	$(PY) -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "error: pytest collected no tests"; exit 1; fi; exit $$rc

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: setup
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: setup
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) data results .pytest_cache
