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

# The quick loop: no PostgreSQL, browser or Docker, and none of the tests marked slow
# (whole studies, CLI processes that load the training stack); `make test` runs them all.
UNIT_MARKERS := not postgres and not browser and not docker and not slow

.PHONY: test-unit
test-unit: install ## The quick tests: no PostgreSQL, browser, Docker or slow tests (~1.5 CPU-minutes)
	$(BIN)/python -m pytest -m "$(UNIT_MARKERS)" $(ARGS)

# A bare venv with the newest Optuna 5.x and no torch: tuner/storage/optuna_compat.py is the one
# module that touches Optuna's internals, and its tests import nothing else.
COMPAT_VENV ?= $(or $(TMPDIR),/tmp)/kalaha-optuna-latest

.PHONY: compat-latest
compat-latest: ## The Optuna-compatibility tests against the newest Optuna 5.x (a fresh, bare venv)
	rm -rf $(COMPAT_VENV)
	$(PYTHON) -m venv $(COMPAT_VENV)
	$(COMPAT_VENV)/bin/python -m pip install -q --upgrade 'optuna>=5,<6' 'sqlalchemy>=2.0' \
		psycopg2-binary pytest pytest-timeout
	@$(COMPAT_VENV)/bin/python -c 'import optuna; print("compat tests against optuna", optuna.__version__)'
	PYTHONPATH=. $(COMPAT_VENV)/bin/python -m pytest -p no:cacheprovider \
		tests/tuner_tests/storage_tests/test_optuna_compat.py $(ARGS)

.PHONY: lint
lint: install ## Check style (ruff), the import contracts (import-linter) and the types (mypy)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache
	$(BIN)/mypy

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
	$(BIN)/tuner verify $(STUDY) --top $(TOP) --fresh-seeds $(SEEDS) $(ARGS)

.PHONY: export
export: install ## Write the best trial of STUDY to studies/best/STUDY.yaml (ARGS=--force replaces another trial's)
	$(BIN)/tuner export $(STUDY) $(ARGS)

# A study that moves to another machine: save it here, copy the file, load it there.
SAVED ?= docs/results/$(STUDY)/study.sqlite3

.PHONY: save
save: install ## Save STUDY to SAVED (docs/results/STUDY/study.sqlite3) to move it; ARGS=--force replaces an older save
	$(BIN)/tuner save $(STUDY) --to $(SAVED) $(ARGS)

.PHONY: load
load: install ## Load STUDY from SAVED (docs/results/STUDY/study.sqlite3) into the storage, e.g. a fresh PostgreSQL
	$(BIN)/tuner load $(SAVED) $(STUDY) $(ARGS)

.PHONY: train
train: install ## Retrain studies/best/STUDY.yaml and evaluate the agent
	$(BIN)/tuner train studies/best/$(STUDY).yaml $(ARGS)

.PHONY: ladder
ladder: install ## Rate the reference ladder by a round robin and rewrite env/ladder.yaml (ARGS="--games 160")
	$(BIN)/tuner ladder --force $(ARGS)

DEVICE ?= cpu

.PHONY: bench
bench: install ## Engine vs a Python loop; whole training: the batched env, the lookahead features, torch threads (DEVICE=cuda on a GPU); the solver by phase and --perfect vs a rating
	$(BIN)/python -m benchmarks.engine $(ARGS)
	$(BIN)/python -m benchmarks.training --device $(DEVICE) $(TRAIN_ARGS)
	$(BIN)/python -m benchmarks.perfect $(PERFECT_ARGS)

.PHONY: bench-trial
bench-trial: install ## One selfplay trial (250k steps) split into collection, update, evaluation and storage (ARGS="--cprofile trial.prof")
	$(BIN)/python -m benchmarks.trial_profile $(ARGS)

.PHONY: bench-rating
bench-rating: install ## The rating evaluation's share of a trial, by the agent's strength and the trial budget
	$(BIN)/python -m benchmarks.rating $(ARGS)

.PHONY: bench-perfect-signal
bench-perfect-signal: install ## Regret vs the ladder rating on 96 checkpoints (6 configs x 2 seeds): rank correlation and seed noise (ARGS="--fresh" retrains)
	$(BIN)/python -m benchmarks.perfect_signal $(ARGS)

.PHONY: bench-search
bench-search: install ## Search at play time: score vs minimax:4/6 and ms per move by depth/simulations (ARGS="--games 400")
	$(BIN)/python -m benchmarks.search $(ARGS)

CPU_HOURS ?= 4

.PHONY: bench-pbt
bench-pbt: install ## PBT vs TPE+Hyperband on the exploration space, CPU_HOURS (4) each, 2 workers; winners retrained on 3 fresh seeds
	$(BIN)/python -m benchmarks.pbt_vs_tpe --cpu-hours $(CPU_HOURS) $(ARGS)

.PHONY: learning-curve
learning-curve: install ## A retrained agent's rating and regret against steps, from MODEL's checkpoints (tuner train --save-every)
	$(BIN)/python -m benchmarks.learning_curve $(MODEL) $(ARGS)

.PHONY: bench-storage
bench-storage: install ## Storage overhead per trial: SQLite, journal file, PostgreSQL; 1-8 worker processes
	$(BIN)/python -m benchmarks.storage $(ARGS)

# --- docker compose: Postgres + create-study + WORKERS workers + dashboard ---------------
# Settings come from ENV_FILE (.env: cp .env.example .env); STUDY=... on the command line
# overrides it. Compose reads the file itself; the few settings the targets below need
# outside Compose are read from it with `dotenv` (the command line and environment win).
ENV_FILE ?= .env
COMPOSE ?= docker compose --env-file $(ENV_FILE)
WORKERS ?= 2
dotenv = $(shell sed -n 's/^[[:space:]]*$(1)=//p' $(ENV_FILE) 2>/dev/null | tail -n 1)
TORCH_VARIANT ?= $(or $(call dotenv,TORCH_VARIANT),cuda)
TORCH_VERSION ?= 2.13.0
PIP_INDEX_URL ?= $(or $(call dotenv,PIP_INDEX_URL),https://pypi.org/simple)
TORCH_INDEX_URL ?= $(call dotenv,TORCH_INDEX_URL)
# The image's Python and platform, for `make wheelhouse` (python:3.11-slim: Debian
# bookworm, glibc 2.36): every manylinux tag up to glibc 2.36, and the 2014/2010/1 aliases.
WHEEL_PYTHON ?= 3.11
WHEEL_ARCH ?= x86_64
WHEEL_GLIBC_MINOR ?= 36
WHEELHOUSE_DIR = wheelhouse/$(TORCH_VARIANT)
CPU_TORCH_INDEX := https://download.pytorch.org/whl/cpu

.PHONY: compose-check
compose-check: ## Check the Docker Engine, BuildKit and Compose versions the stack needs
	@sh docker/check-versions.sh $(COMPOSE)

.PHONY: up
up: ## docker compose: Postgres, the study, WORKERS workers (default 2) and the dashboard
	@test -f $(ENV_FILE) || { echo "error: expected settings in $(ENV_FILE), but there is no such file; run 'cp .env.example .env' and set POSTGRES_PASSWORD" >&2; exit 2; }
	@sh docker/check-versions.sh $(COMPOSE)
	$(COMPOSE) up -d --build --scale worker=$(WORKERS)

.PHONY: scale
scale: ## docker compose: run WORKERS workers (make scale WORKERS=8); extra ones stop cleanly
	$(COMPOSE) up -d --no-deps --no-recreate --scale worker=$(WORKERS) worker

.PHONY: down
down: ## docker compose: stop and remove the containers; the database is kept (ARGS=-v drops it)
	$(COMPOSE) down $(ARGS)

.PHONY: logs
logs: ## docker compose: follow the logs of every service
	$(COMPOSE) logs -f --tail=100

.PHONY: compose-url
compose-url: ## Print the storage URL of the compose PostgreSQL as seen from this host (ENV_FILE's settings)
	@test -f $(ENV_FILE) || { echo "error: expected settings in $(ENV_FILE), but there is no such file; run 'cp .env.example .env'" >&2; exit 2; }
	@echo "postgresql+psycopg2://$(or $(call dotenv,POSTGRES_USER),tuner):$(call dotenv,POSTGRES_PASSWORD)@127.0.0.1:$(or $(call dotenv,POSTGRES_PORT),15432)/$(or $(call dotenv,POSTGRES_DB),optuna)"

.PHONY: wheelhouse
wheelhouse: ## Download every wheel the image needs (pyproject.toml + torch) into wheelhouse/TORCH_VARIANT/
	@if [ ! -f $(WHEELHOUSE_DIR)/.complete ] || [ pyproject.toml -nt $(WHEELHOUSE_DIR)/.complete ] || [ "$$(cat $(WHEELHOUSE_DIR)/.complete)" != "torch==$(TORCH_VERSION) $(WHEEL_PYTHON) $(WHEEL_ARCH)" ]; then \
		set -e; \
		case "$(TORCH_VARIANT)" in \
			cuda) index="$(or $(TORCH_INDEX_URL),$(PIP_INDEX_URL))";; \
			cpu) index="$(or $(TORCH_INDEX_URL),$(CPU_TORCH_INDEX))";; \
			*) echo "error: TORCH_VARIANT: expected cuda or cpu, but got '$(TORCH_VARIANT)'" >&2; exit 2;; \
		esac; \
		torch="torch==$(TORCH_VERSION)"; platforms="--platform manylinux2014_$(WHEEL_ARCH)"; \
		for m in $$(seq $(WHEEL_GLIBC_MINOR) -1 17); do platforms="$$platforms --platform manylinux_2_$${m}_$(WHEEL_ARCH)"; done; \
		target="--only-binary=:all: $$platforms --python-version $(WHEEL_PYTHON) --implementation cp"; \
		rm -f $(WHEELHOUSE_DIR)/.complete; mkdir -p $(WHEELHOUSE_DIR); \
		echo "wheelhouse: torch ($$torch) from $$index into $(WHEELHOUSE_DIR)/"; \
		$(PYTHON) -m pip download -q --dest $(WHEELHOUSE_DIR) $$target --no-deps --index-url "$$index" "$$torch"; \
		echo "wheelhouse: pyproject.toml's dependencies from $(PIP_INDEX_URL) into $(WHEELHOUSE_DIR)/"; \
		$(PYTHON) docker/requirements.py pyproject.toml > $(WHEELHOUSE_DIR)/requirements.txt; \
		$(PYTHON) -m pip download -q --dest $(WHEELHOUSE_DIR) $$target --index-url "$(PIP_INDEX_URL)" \
			--find-links $(WHEELHOUSE_DIR) "$$torch" -r $(WHEELHOUSE_DIR)/requirements.txt; \
		echo "torch==$(TORCH_VERSION) $(WHEEL_PYTHON) $(WHEEL_ARCH)" > $(WHEELHOUSE_DIR)/.complete; \
		echo "wheelhouse: $$(ls $(WHEELHOUSE_DIR)/*.whl | wc -l) wheels, $$(du -sh $(WHEELHOUSE_DIR) | cut -f1) in $(WHEELHOUSE_DIR)/; build with WHEELHOUSE=1"; \
	else \
		echo "wheelhouse: $(WHEELHOUSE_DIR)/ is newer than pyproject.toml (delete it to download again)"; \
	fi

.PHONY: compose-test
compose-test: install ## The compose stack end to end on this Docker host (CPU image from wheelhouse/cpu/; minutes)
	KALAHA_DOCKER_TESTS=require $(BIN)/python -m pytest -m docker -p no:cacheprovider tests/tuner_tests/test_compose_stack.py $(ARGS)

.PHONY: clean
clean: ## Remove caches (keeps .venv and runs/)
	rm -rf .pytest_cache .ruff_cache .mypy_cache build dist *.egg-info
	find . -name __pycache__ -not -path './$(VENV)/*' -prune -exec rm -rf {} +
