# Two commands do all the set-up on a fresh machine (Python 3.11 with venv):
#   make run    create .venv, install the pinned project, run every pipeline (`kedro run`)
#   make test   create .venv, install the pinned project with dev tools, run the tests
# Kedro telemetry is off everywhere: it would try the network and rewrite pyproject.toml.
export KEDRO_DISABLE_TELEMETRY := 1
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install run test lint viz clean-venv

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

clean-venv:
	rm -rf $(VENV)
