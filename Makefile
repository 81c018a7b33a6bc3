# Two commands do all the set-up on a fresh machine (Python 3.11 with venv):
#   make run    create .venv, install the pinned project, run every pipeline (`kedro run`)
#   make test   create .venv, install the pinned project with dev tools, run the tests
#   make prune KEEP=3   keep only the 3 newest versions of every dataset under data/
# Kedro telemetry is off everywhere: it would try the network and rewrite pyproject.toml.
export KEDRO_DISABLE_TELEMETRY := 1
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install run test lint viz prune clean-venv

$(BIN)/kedro: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(BIN)/kedro

install: $(BIN)/kedro

run: install
	$(BIN)/kedro run $(ARGS)

test: install
	$(BIN)/pytest $(ARGS)

lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

viz: install
	$(BIN)/kedro viz run --host 127.0.0.1 --port 4141 --no-browser

KEEP ?= 3
prune: install
	$(BIN)/python -m memory_efficient_embeddings.prune_versions --keep $(KEEP) $(ARGS)

clean-venv:
	rm -rf $(VENV)
