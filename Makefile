# Two commands do all the set-up on a fresh clone:
#   make run   - build .venv, run the whole study on config/config.yaml, write results/report.html
#   make test  - build .venv, run the whole test suite (skips count as failures)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CORES ?= all
CONFIG ?= config/config.yaml

.PHONY: run test lint dry-run report clean-results

$(STAMP): envs/main.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r envs/main.txt
	$(BIN)/pip install -q --no-deps -e .
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/snakemake --cores $(CORES) --configfile $(CONFIG) --rerun-incomplete
	$(BIN)/snakemake --cores $(CORES) --configfile $(CONFIG) --report results/report.html

test: $(STAMP)
	$(BIN)/python -m pytest -q -rs -p no:cacheprovider tests

lint: $(STAMP)
	$(BIN)/ruff check src tests workflow/scripts benchmarks
	$(BIN)/snakemake --lint

dry-run: $(STAMP)
	$(BIN)/snakemake -n --configfile $(CONFIG)
