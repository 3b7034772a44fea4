# molgen developer entry points. Each target sets itself up: a .venv with
# torch==2.13.0 installed first (a CPU wheel here), then molgen with extras.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.molgen-installed
SHARED_DATA ?= $(abspath ../shared/data)
DEMO_OUT ?= runs/demo

.PHONY: venv demo test test-all bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

# Main job on the embedded default: sample the shipped ZINC250k prior, evaluate, optimise a PMO
# task for a few hundred oracle calls, write runs/demo/report.html.
demo: $(STAMP)
	$(BIN)/molgen demo --out $(DEMO_OUT) --overwrite

# Default suite: fast tests (slow and GPU tests are deselected).
test: $(STAMP)
	MOLGEN_DATA_MIRROR=$${MOLGEN_DATA_MIRROR:-$(SHARED_DATA)} $(BIN)/python -m pytest -q -m "not slow and not gpu"

test-all: $(STAMP)
	MOLGEN_DATA_MIRROR=$${MOLGEN_DATA_MIRROR:-$(SHARED_DATA)} $(BIN)/python -m pytest -q

bench: $(STAMP)
	MOLGEN_DATA_MIRROR=$${MOLGEN_DATA_MIRROR:-$(SHARED_DATA)} $(BIN)/python benchmarks/bench_smiles_ar.py

clean:
	rm -rf $(VENV) runs .pytest_cache
