# kalaha-tuner: `make` (or `make help`) lists the targets.
# Every target creates .venv first when it is missing or older than pyproject.toml.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# A CPU build that lies on disk here; an unpinned torch pulls a multi-GB CUDA build.
TORCH_PIN ?= torch==2.13.0
STUDY ?= smoke
ARGS ?=
DASHBOARD_PORT ?= 8080
TENSORBOARD_PORT ?= 6006

.DEFAULT_GOAL := help

.PHONY: help
help: ## Show this help
	@grep -E '^[a-zA-Z0-9_-]+:.*?## ' $(MAKEFILE_LIST) | \
		awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2}'

.PHONY: install
install: ## Create .venv (pinned CPU torch) and install the project with its dev tools
	@if [ ! -f $(STAMP) ] || [ pyproject.toml -nt $(STAMP) ]; then \
		set -e; \
		[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV); \
		$(BIN)/python -m pip install -q --upgrade pip; \
		$(BIN)/python -m pip install -q "$(TORCH_PIN)"; \
		$(BIN)/python -m pip install -q -e '.[dev]'; \
		touch $(STAMP); \
	fi

.PHONY: test
test: install ## Run the whole test suite (real PostgreSQL included)
	$(BIN)/python -m pytest $(ARGS)

.PHONY: lint
lint: install ## Check style with ruff (lint and format)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

.PHONY: format
format: install ## Format and auto-fix with ruff
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

.PHONY: tune
tune: install ## Run one worker on studies/STUDY.yaml (SQLite by default; $OPTUNA_STORAGE overrides)
	$(BIN)/tuner tune $(STUDY) $(ARGS)

.PHONY: status
status: install ## Trial counts, best trial and running trials of STUDY
	$(BIN)/tuner status $(STUDY) $(ARGS)

.PHONY: dashboard
dashboard: install ## optuna-dashboard on 127.0.0.1:DASHBOARD_PORT over the storage of `make tune`, with trial artifacts
	$(BIN)/tuner dashboard --port $(DASHBOARD_PORT) $(ARGS)

.PHONY: tensorboard
tensorboard: install ## TensorBoard on 127.0.0.1:TENSORBOARD_PORT for the trials of STUDY
	@logdir="$${KALAHA_RUNS:-runs}/tensorboard/$(STUDY)"; \
	if [ ! -d "$$logdir" ]; then \
		echo "no TensorBoard logs in $$logdir: run \`make tune STUDY=$(STUDY)\` first" >&2; exit 2; \
	fi; \
	echo "TensorBoard for study $(STUDY) ($$logdir): open http://127.0.0.1:$(TENSORBOARD_PORT)/"; \
	exec $(BIN)/tensorboard --logdir "$$logdir" --host 127.0.0.1 --port $(TENSORBOARD_PORT) $(ARGS)

.PHONY: report
report: install ## HTML report and PNGs of STUDY in runs/reports/STUDY/
	$(BIN)/tuner report $(STUDY) $(ARGS)

TOP ?= 3
SEEDS ?= 3

.PHONY: verify
verify: install ## Re-train the TOP (3) best configurations of STUDY with SEEDS (3) fresh seeds; more workers: make tune STUDY=STUDY:verify
	$(BIN)/tuner verify $(STUDY) --top $(TOP) --seeds $(SEEDS) $(ARGS)

.PHONY: export
export: install ## Write the best trial of STUDY to studies/best/STUDY.yaml
	$(BIN)/tuner export $(STUDY) $(ARGS)

.PHONY: train
train: install ## Retrain studies/best/STUDY.yaml and evaluate the agent
	$(BIN)/tuner train studies/best/$(STUDY).yaml $(ARGS)

.PHONY: ladder
ladder: install ## Rate the reference ladder by a round robin and rewrite env/ladder.yaml (ARGS="--games 160")
	$(BIN)/tuner ladder $(ARGS)

DEVICE ?= cpu

.PHONY: bench
bench: install ## Engine vs a Python loop, and whole training DummyVecEnv vs KalahaVecEnv (DEVICE=cuda on a GPU)
	$(BIN)/python -m benchmarks.engine $(ARGS)
	$(BIN)/python -m benchmarks.training --device $(DEVICE) $(TRAIN_ARGS)

.PHONY: bench-rating
bench-rating: install ## The rating evaluation's share of a trial, by the agent's strength and the trial budget
	$(BIN)/python -m benchmarks.rating $(ARGS)

.PHONY: bench-storage
bench-storage: install ## Storage overhead per trial: SQLite, journal file, PostgreSQL; 1-8 worker processes
	$(BIN)/python -m benchmarks.storage $(ARGS)

# --- docker compose: Postgres + create-study + WORKERS workers + dashboard ---------------
# Settings come from .env (cp .env.example .env); STUDY=... on the command line overrides it.
COMPOSE ?= docker compose
WORKERS ?= 2

.PHONY: up
up: ## docker compose: Postgres, the study, WORKERS workers (default 2) and the dashboard
	@test -f .env || { echo "error: no .env; run 'cp .env.example .env' and set POSTGRES_PASSWORD" >&2; exit 2; }
	$(COMPOSE) up -d --build --scale worker=$(WORKERS)

.PHONY: scale
scale: ## docker compose: run WORKERS workers (make scale WORKERS=8); extra ones stop cleanly
	$(COMPOSE) up -d --no-recreate --scale worker=$(WORKERS) worker

.PHONY: down
down: ## docker compose: stop and remove the containers (the database volume is kept)
	$(COMPOSE) down

.PHONY: logs
logs: ## docker compose: follow the logs of every service
	$(COMPOSE) logs -f --tail=100

.PHONY: clean
clean: ## Remove caches (keeps .venv and runs/)
	rm -rf .pytest_cache .ruff_cache build dist *.egg-info
	find . -name __pycache__ -not -path './$(VENV)/*' -prune -exec rm -rf {} +
