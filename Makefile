# Two commands do all the set-up on a fresh machine (Python 3.11 with venv):
#   make run    create .venv, install the pinned project, run every pipeline (`kedro run`)
#   make test   create .venv, install the pinned project with dev tools, run the tests (all of
#               them on TensorFlow, then those marked both_backends again on JAX)
#   make mlflow-ui      the MLflow UI over the runs tracked in mlruns/ (kedro-mlflow)
#   make prune KEEP=3   keep only the 3 newest versions of every dataset under data/
#   make mutation  plant small bugs in the pure-Python modules (mutmut) and report the share caught
# Keras' backend: the project's default, JAX (src/memory_efficient_embeddings/keras_backend.py), or
#   KERAS_BACKEND=tensorflow on the command line or in the environment: `make run KERAS_BACKEND=tensorflow`.
# Kedro telemetry is off everywhere: it would try the network and rewrite pyproject.toml (the
# project's .telemetry file turns it off for a plain `kedro` call too).
export KEDRO_DISABLE_TELEMETRY := 1
export MLFLOW_DISABLE_TELEMETRY := true
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install run test lint viz mlflow-ui prune mutation clean-venv

$(BIN)/kedro: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(BIN)/kedro

install: $(BIN)/kedro

run: install
	$(BIN)/kedro run $(ARGS)

# The whole suite on TensorFlow; then, on JAX, the tests marked both_backends (the layers' oracles,
# the optimizers, batches and training: pyproject.toml's markers). ARGS reach both passes (a -m
# in ARGS selects in the first only: the second's -m comes last and wins). The JAX pass collects only
# the files that hold such tests (collecting the whole suite a second time would cost minutes).
JAX_TESTS := tests/embeddings tests/modeling/test_quantized.py tests/test_batches.py \
	tests/test_training_backends.py
# The TensorFlow pass runs on PYTEST_WORKERS processes (pytest-xdist), each TensorFlow on one thread:
# the tests' models are small, so two single-threaded workers beat one two-threaded process
# (tests/embeddings, tests/modeling and two more files: 204 s against 267 s on 2 cores, load ~4).
# A file's tests stay on one worker (--dist loadfile): its module fixtures (trained sweeps, the
# backend workers) are built once, not once per worker.
PYTEST_WORKERS ?= 2
test: install
	KERAS_BACKEND=tensorflow TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1 \
		$(BIN)/pytest --numprocesses=$(PYTEST_WORKERS) --dist=loadfile $(ARGS)
	KERAS_BACKEND=jax $(BIN)/pytest $(JAX_TESTS) $(ARGS) -m both_backends

lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

viz: install
	$(BIN)/kedro viz run --host 127.0.0.1 --port 4141 --no-browser

# The runs every `kedro run` logs (conf/base/mlflow.yml: mlruns/), at http://127.0.0.1:5000.
# `kedro mlflow ui` starts the `mlflow` command, so the virtualenv's bin goes first on PATH.
mlflow-ui: install
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/kedro mlflow ui

KEEP ?= 3
prune: install
	$(BIN)/python -m memory_efficient_embeddings.prune_versions --keep $(KEEP) $(ARGS)

# The ingest's checksum paths and what reaches each sweep run (seeds, plans, regime, data).
MUTATION_SCOPE_CHECKSUMS_AND_SWEEP_SETUP := \
	'memory_efficient_embeddings.ingest.archive.x_file_md5__*' \
	'memory_efficient_embeddings.ingest.archive.x_checksum_message__*' \
	'memory_efficient_embeddings.ingest.archive.x_download__*' \
	'memory_efficient_embeddings.ingest.archive.x_resolve_user_path__*' \
	'memory_efficient_embeddings.ingest.archive.x_find_local__*' \
	'memory_efficient_embeddings.ingest.archive.x__in_folder__*' \
	'memory_efficient_embeddings.pipelines.sweep.runs.x_quantized_fields__*' \
	'memory_efficient_embeddings.pipelines.sweep.runs.x_train_sweep_point__*' \
	'memory_efficient_embeddings.pipelines.sweep.runs.x_data_fingerprint__*' \
	'memory_efficient_embeddings.pipelines.sweep.runs.x?SweepCheckpoints?identity__*' \
	'memory_efficient_embeddings.pipelines.sweep.runs.x__runs_to_train__*' \
	'memory_efficient_embeddings.pipelines.sweep.runs.x_run_sweep__*' \
	'memory_efficient_embeddings.pipelines.sweep.plan.*' \
	'memory_efficient_embeddings.modeling.grid.*'

# The functions `make mutation` mutates: pure Python, checked by fast tests (no training).
# The charts and the sweep's training loop are left out: their tests need TensorFlow runs.
# `make mutation MUTATION_SCOPE='pattern ...'` mutates only the functions named.
MUTATION_SCOPE := \
	'memory_efficient_embeddings.embeddings.blocks.*' \
	'memory_efficient_embeddings.ingest.parsing.*' \
	'memory_efficient_embeddings.ingest.releases.*' \
	'memory_efficient_embeddings.ingest.sources.*' \
	'memory_efficient_embeddings.pipelines.reporting.nodes.x_compare_models__*' \
	'memory_efficient_embeddings.pipelines.reporting.nodes.x_render_comparison_table__*' \
	'memory_efficient_embeddings.pipelines.sweep.summary.x_summarize_sweep__*' \
	'memory_efficient_embeddings.pipelines.sweep.summary.x__pareto_mask__*' \
	'memory_efficient_embeddings.pipelines.sweep.summary.x_render_sweep_table__*' \
	'memory_efficient_embeddings.pipelines.sweep.summary.x__mean_std__*' \
	$(MUTATION_SCOPE_CHECKSUMS_AND_SWEEP_SETUP)

# mutmut works in a fresh copy of the project (mutants/) and puts mutants/src first on the path.
mutation: install
	rm -rf mutants
	env -u PYTHONPATH $(BIN)/mutmut run $(MUTATION_SCOPE) > /dev/null
	$(BIN)/mutmut results --all true | $(BIN)/python tools/mutation_score.py $(MUTATION_SCOPE)

clean-venv:
	rm -rf $(VENV)
