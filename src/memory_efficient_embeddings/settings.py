"""Project settings: Kedro defaults except where a comment says why."""

import os
import warnings

from kedro.config import OmegaConfigLoader

from memory_efficient_embeddings.hooks import (
    ClearErrorHooks,
    LineageHooks,
    NodeTimingHooks,
    ParameterValidationHooks,
    ProcessStateLockHooks,
    RunRecordHooks,
    UserErrorHooks,
)
from memory_efficient_embeddings.run_summary import RunSummaryHooks
from memory_efficient_embeddings.tracking import GuardedMlflowHooks, TrackingHooks

# MLflow's usage telemetry would try the network: off, like Kedro's (the README says so).
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
# Runs go to a local file store (conf/base/mlflow.yml: mlruns/), which MLflow 3 keeps behind this
# switch: no database to set up, readable by `kedro mlflow ui`, works offline.
os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")

# omegaconf deprecates the resolver API that Kedro 1.7 calls: noise on every run, nothing to fix here.
warnings.filterwarnings("ignore", message=".*register_new_resolver.*", category=UserWarning)


# Parameters are checked first (tryfirst), before versions are pinned or any node runs.
HOOKS = (
    ParameterValidationHooks(),
    RunRecordHooks(),
    LineageHooks(),
    ProcessStateLockHooks(),
    NodeTimingHooks(),
    RunSummaryHooks(),
    TrackingHooks(),
    ClearErrorHooks(),
    UserErrorHooks(),
    # kedro-mlflow's hooks, registered here (below) so that a broken MLflow store turns tracking
    # off with one warning instead of stopping the run; last, so they run where the plugin's did.
    GuardedMlflowHooks(),
)
DISABLE_HOOKS_FOR_PLUGINS = ("kedro_mlflow", "kedro-mlflow")

# ParallelRunner's workers start fresh (spawn) instead of forking: a fork of a process in which
# TensorFlow has already run crashes (a notebook or test that trained, then ran in parallel).
os.environ.setdefault("KEDRO_MP_CONTEXT", "spawn")

CONFIG_LOADER_CLASS = OmegaConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # An overlay environment such as `recipe` changes a few nested keys, not whole sections.
    "merge_strategy": {"parameters": "soft"},
}
