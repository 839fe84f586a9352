# Prompt Workbench. `make demo` and `make test` create .venv on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

export LITELLM_LOCAL_MODEL_COST_MAP ?= True
export MLFLOW_DISABLE_TELEMETRY ?= true

.PHONY: demo test test-mlflow-server lint ui clean-reports

# llama.cpp's default (native) build turns on every instruction set the CPU has; on CPUs with
# AMX its AMX kernels crash (segfault) on the embedded Gemma 3 model. A portable AVX2 build runs
# on any x86-64 CPU of the last decade, and gives the same outputs on all of them.
# --no-cache-dir: never reuse a wheel pip built natively before.
LLAMA_CPP := llama-cpp-python==0.3.36
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	@echo "Installing the workbench and its dependencies (first time: ~10 min, llama-cpp-python compiles)..."
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/python -m pip install --quiet --no-cache-dir "$(LLAMA_CPP)"
	$(BIN)/python -m pip install --quiet -e ".[local,rag,dev,team,scale]"
	@touch $(STAMP)

## demo: run notebooks/ab_test.ipynb on the local model, write reports/, print the winner
demo: $(STAMP)
	$(BIN)/workbench report notebooks/ab_test.ipynb

## test: the whole suite, notebooks included
test: $(STAMP)
	$(BIN)/python -m pytest

## test-mlflow-server: the MLflow tests again, against a team server (PostgreSQL + mlflow server with logins)
## started for the session (tests/tracking_store.py); needs PostgreSQL's initdb (apt-get install postgresql)
test-mlflow-server: $(STAMP)
	WORKBENCH_TEST_TRACKING=server $(BIN)/python -m pytest -m "mlflow and not local_store"

lint: $(STAMP)
	$(BIN)/ruff check workbench tests
	$(BIN)/ruff format --check workbench tests
	$(BIN)/mypy workbench
	$(BIN)/lint-imports

## ui: open the MLflow UI on mlruns/ at http://127.0.0.1:5000
ui: $(STAMP)
	$(BIN)/mlflow ui --backend-store-uri sqlite:///$(CURDIR)/mlruns/mlflow.db --host 127.0.0.1 --port 5000

clean-reports:
	rm -rf reports/*
