# Prompt Workbench. `make demo` and `make test` create .venv on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

export LITELLM_LOCAL_MODEL_COST_MAP ?= True
export MLFLOW_DISABLE_TELEMETRY ?= true

.PHONY: demo test lint ui clean-reports

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	@echo "Installing the workbench and its dependencies (first time: ~10 min, llama-cpp-python compiles)..."
	$(BIN)/python -m pip install --quiet -e ".[local,dev]"
	@touch $(STAMP)

## demo: run notebooks/ab_test.ipynb on the local model, write reports/, print the winner
demo: $(STAMP)
	$(BIN)/workbench report notebooks/ab_test.ipynb

## test: the whole suite, notebooks included
test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check workbench tests
	$(BIN)/ruff format --check workbench tests
	$(BIN)/mypy workbench

## ui: open the MLflow UI on mlruns/ at http://127.0.0.1:5000
ui: $(STAMP)
	$(BIN)/mlflow ui --backend-store-uri sqlite:///$(CURDIR)/mlruns/mlflow.db --host 127.0.0.1 --port 5000

clean-reports:
	rm -rf reports/*
