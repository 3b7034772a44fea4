# molgen developer entry points. Each target sets itself up: a .venv with
# torch==2.13.0 installed first (a CPU wheel here), then molgen with extras.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.molgen-installed
SHARED_DATA ?= $(abspath ../shared/data)
DEMO_MINUTES ?= 3
DEMO_OUT ?= runs/demo

.PHONY: venv demo test test-all bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

# Main job on the embedded default: train on RDKit's NCI 5k, sample 1,000.
demo: $(STAMP)
	$(BIN)/molgen train --config data/configs/demo.toml --max-minutes $(DEMO_MINUTES) --out $(DEMO_OUT)
	$(BIN)/molgen sample $(DEMO_OUT) -n 1000 --seed 0 -o $(DEMO_OUT)/samples.smi

# Default suite: fast tests (slow and GPU tests are deselected).
test: $(STAMP)
	MOLGEN_DATA_MIRROR=$${MOLGEN_DATA_MIRROR:-$(SHARED_DATA)} $(BIN)/python -m pytest -q -m "not slow and not gpu"

test-all: $(STAMP)
	MOLGEN_DATA_MIRROR=$${MOLGEN_DATA_MIRROR:-$(SHARED_DATA)} $(BIN)/python -m pytest -q

bench: $(STAMP)
	MOLGEN_DATA_MIRROR=$${MOLGEN_DATA_MIRROR:-$(SHARED_DATA)} $(BIN)/python benchmarks/bench_smiles_ar.py

clean:
	rm -rf $(VENV) runs .pytest_cache
