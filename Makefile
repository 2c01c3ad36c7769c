# Two commands do everything on a fresh machine:
#   make reproduce   create .venv, install, run the companion (cpu profile, synthetic data)
#   make test        create .venv, install, run the whole test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.sisnet-installed
# The torch build this project is tested with; override for another CUDA/CPU build.
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
PROFILE ?= cpu
DATASET ?= synthetic

.PHONY: install test reproduce real scale benchmark time-from-scratch clean-venv

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet $(TORCH_SPEC)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

test: install
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q

reproduce: install
	$(BIN)/python -m sisnet.reproduce --profile $(PROFILE) --dataset $(DATASET)

# Table 2 on real pedestrians (needs data/cuhk03, cuhk01, viper, prid, grid, ilids; README "Real datasets")
real: install
	HF_HUB_OFFLINE=1 $(BIN)/python -m sisnet.experiments real

# The controlled scale study on generated far/near people (generates its data; about an hour on 2 cores)
scale: install
	HF_HUB_OFFLINE=1 $(BIN)/python -m sisnet.experiments scale

benchmark: install
	$(BIN)/python -m sisnet.benchmark

# `make reproduce` timed in a fresh clone (install included); writes results/scratch/$(PROFILE)/$(DATASET)/.
time-from-scratch:
	PROFILE=$(PROFILE) DATASET=$(DATASET) tools/time_from_scratch.sh

clean-venv:
	rm -rf $(VENV)
