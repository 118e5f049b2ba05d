# Two commands set everything up on a machine with only python3:
#   make run   - virtualenv, install, train the demo corpus if no model exists, serve on 127.0.0.1:8000
#   make test  - virtualenv, install with dev extras, run the whole test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
MODELS_DIR ?= models
HOST ?= 127.0.0.1
PORT ?= 8000
DEMO_CORPUS := recommender/data/demo_articles.jsonl

.PHONY: run test test-fast install dev lint bench bench-quick clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed

dev: $(VENV)/.installed-dev

run: install
	@if [ ! -e $(MODELS_DIR)/current ]; then \
		echo "No model in $(MODELS_DIR)/: training the bundled demo corpus"; \
		$(BIN)/recommender train --corpus $(DEMO_CORPUS) --models-dir $(MODELS_DIR) --quiet; \
	fi
	$(BIN)/recommender serve --host $(HOST) --port $(PORT) --models-dir $(MODELS_DIR)

# The slowest tests are listed at the end, to keep an eye on the whole run's time.
test: dev
	$(BIN)/python -m pytest --durations=15 $(PYTEST_ARGS)

# The fast tier for your own loop: no browser, no shared corpora, no slow tests (real servers, kill -9, benchmarks).
test-fast: dev
	$(BIN)/python -m pytest -m "not slow and not corpora and not browser" $(PYTEST_ARGS)

lint: dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check recommender tests benchmarks
	$(BIN)/mypy recommender

bench: dev
	@$(BIN)/python -c "import sparse_dot_topn, matplotlib" 2>/dev/null || $(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	@bash benchmarks/setup.sh
	$(BIN)/python -m benchmarks.run --full

bench-quick: dev
	@$(BIN)/python -c "import sparse_dot_topn, matplotlib" 2>/dev/null || $(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	@bash benchmarks/setup.sh
	$(BIN)/python -m benchmarks.run --quick

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info
