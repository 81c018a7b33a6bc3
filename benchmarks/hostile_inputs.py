"""Bad inputs, tried as a hostile but realistic user would, each classified automatically.

Every input goes through the entry point a user would use: `kedro run` (in-process, one
KedroSession per input on tiny synthetic data, so TensorFlow is imported once), a few `kedro run`
command lines (subprocess: what only the CLI parses), and a saved model's prediction entry points.
Each is classified as

- clear: refused before any model trains (no training node started; for prediction: before
  computing), with a short message (no traceback) that names the parameter key or the file;
- late: refused, but after training started, or with a traceback, or without naming the key/file;
- silent: accepted (the run finished, or a prediction came back).

Only inputs that are wrong are listed: legal values (a duplicate (user, item) row, whose rule is
stated; an unknown but well-formed id, which scores as cold start) are not. One legal control run
comes first; the harness stops if it does not finish, since nothing else would mean anything.

    python benchmarks/hostile_inputs.py [--only SUBSTRING] [--skip-cli] [--json-out FILE]

Prints one row per input (category, input, class, first line of the message) and the counts.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kedro.framework.hooks import hook_impl

REPO_ROOT = Path(__file__).resolve().parents[1]

CLEAR, LATE, SILENT = "clear", "late", "silent"
# Nodes that train a model as soon as they start: "before work" is before these, and before any
# Keras fit (the sweep's run_sweep node checks its set-up first, then fits run after run).
TRAINING_NODES = ("train_model", "fit_and_score")
# A message longer than this is no "one clear message" (a ParameterError is a header and a line).
MAX_MESSAGE_LINES = 6

# Tiny runs: a few thousand synthetic ratings, one epoch; a sweep of one technique and one seed.
TINY_PARAMETERS: dict[str, Any] = {
    "data": {
        "source": "synthetic",
        "dataset": "ml-100k",
        "synthetic": {"num_users": 100, "num_movies": 80, "num_ratings": 3000, "seed": 7},
    },
    "training": {
        "epochs": 1,
        "batch_size": 512,
        "steps_per_execution": 4,
        "verbose": 0,
        "cce_recluster_epochs": [],
    },
    "sweep": {
        "seeds": [1],
        "quantize": None,
        "peers": None,
        "recipe": {"baseline": None, "memory_efficient": None},
        "budgets": {"floats_per_id": [8]},
        "executor": {"progress": False},
        "resume": False,
        "techniques": {
            name: None
            for name in (
                "uniform",
                "hashing",
                "quotient_remainder",
                "mixed_dimension",
                "cce",
                "tt_rec",
                "robe",
                "hash_embedding",
                "dhe",
            )
        },
    },
}
DEFAULT_PIPELINES = ("data_processing", "baseline")


@dataclass
class Outcome:
    """What one input did: refused or not, the message shown, whether training had started."""

    refused: bool
    message: str = ""
    traceback_shown: bool = False
    trained_before_refusal: bool = False
    # the bad file the input wrote, if any: "{file}" in a case's expect stands for it
    file: str = ""


@dataclass
class Case:
    category: str
    name: str
    # names the input must be refused by: the key or file a clear message names (any of them)
    expect: tuple[str, ...]
    params: dict[str, Any] | None = None
    pipelines: tuple[str, ...] = DEFAULT_PIPELINES
    # writes a bad file into a folder and returns its path, substituted for "{file}" in params
    make_file: Callable[[Path], Path] | None = None
    # a prediction input: called with the saved model, returns what predict returned
    predict: Callable[[Any], Any] | None = None
    # a command line (after `kedro run`), for what only the CLI parses
    cli: list[str] | None = None
    env: dict[str, str] = field(default_factory=dict)


def classify(outcome: Outcome, expect: tuple[str, ...]) -> tuple[str, str]:
    """The class of an outcome and why: clear before work, late (or unclear), or silent."""
    if not outcome.refused:
        return SILENT, "accepted"
    if outcome.traceback_shown:
        return LATE, "a traceback"
    if outcome.trained_before_refusal:
        return LATE, "after training started"
    if outcome.message.count("\n") + 1 > MAX_MESSAGE_LINES:
        return LATE, f"a message of {outcome.message.count(chr(10)) + 1} lines"
    tokens = [
        t.replace("{file}", outcome.file) for t in expect if outcome.file or "{file}" not in t
    ]
    if tokens and not any(names(outcome.message, token) for token in tokens):
        return LATE, f"does not name {' or '.join(tokens)}"
    return CLEAR, "before work"


def names(message: str, key: str) -> bool:
    """Whether a message names a key: the dotted key itself, or its section and its last part
    (`baseline.model` is inconsistent: embedding_dim 0 ... names baseline.model.embedding_dim)."""
    if key in message:
        return True
    section, _, leaf = key.rpartition(".")
    return bool(section) and "." in section and section in message and leaf in message


def first_line(message: str) -> str:
    """The line of a message that says the most: a ParameterError's first problem, else line 1."""
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    if not lines:
        return ""
    if lines[0].startswith("Error (ParameterError): Invalid parameters") and len(lines) > 1:
        return lines[1].removeprefix("- ")
    return lines[0]


def _nested(dotted: str, value: Any) -> dict[str, Any]:
    head, *rest = dotted.split(".")
    return {head: _nested(".".join(rest), value) if rest else value}


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _substitute(value: Any, file: str) -> Any:
    if isinstance(value, dict):
        return {k: _substitute(v, file) for k, v in value.items()}
    if isinstance(value, str):
        return value.replace("{file}", file)
    return value


# ---------------------------------------------------------------------------------------------
# The bad files


def _write(name: str, content: str | bytes) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        path = folder / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
        return path

    return make


def _good_rows(n: int = 400, sep: str = ",") -> str:
    return "\n".join(
        sep.join(map(str, (1 + i % 40, 1 + (i * 7) % 30, 1 + i % 5))) for i in range(n)
    )


def _udata(extra: str = "", n: int = 400) -> str:
    rows = [f"{1 + i % 40}\t{1 + (i * 7) % 30}\t{1 + i % 5}\t88125{i:04d}" for i in range(n)]
    return "\n".join(rows[:200] + ([extra] if extra else []) + rows[200:]) + "\n"


def _zip_bytes(members: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in members.items():
            archive.writestr(name, text)
    return buffer.getvalue()


def _tar_gz(folder: Path) -> Path:
    import tarfile  # noqa: PLC0415

    source = folder / "u.data"
    source.write_text(_udata())
    path = folder / "ml-100k.tar.gz"
    with tarfile.open(path, "w:gz") as archive:
        archive.add(source, arcname="ml-100k/u.data")
    return path


def _mat(name: str, variables: dict[str, Any]) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        from scipy.io import savemat  # noqa: PLC0415

        path = folder / name
        savemat(path, variables)
        return path

    return make


def _ciao_rows(rating: Any = None, user: Any = None, columns: int = 4):
    import numpy as np  # noqa: PLC0415

    rows = np.array([[1 + i % 40, 1 + (i * 7) % 30, 1, 1 + i % 5] for i in range(400)], dtype=float)
    if rating is not None:
        rows[200, 3] = rating
    if user is not None:
        rows[200, 0] = user
    return rows[:, :columns]


def _directory(folder: Path) -> Path:
    path = folder / "ratings_folder.csv"
    path.mkdir()
    return path


def _missing(name: str) -> Callable[[Path], Path]:
    return lambda folder: folder / name


# ---------------------------------------------------------------------------------------------
# The cases


def _p(category: str, dotted: str, value: Any, **kwargs: Any) -> Case:
    """A case that sets one parameter (a dotted key) to a bad value."""
    expect = kwargs.pop("expect", (dotted,))
    return Case(category, f"{dotted}: {value!r}", expect, params=_nested(dotted, value), **kwargs)


def _file_case(category: str, name: str, params: dict[str, Any], make_file, **kwargs) -> Case:
    expect = kwargs.pop("expect", ("data.path", "{file}"))
    return Case(category, name, expect, params=params, make_file=make_file, **kwargs)


def parameter_cases() -> list[Case]:
    """Wrong types and ranges for every parameter group of conf/base/parameters_*.yml."""
    me, bl = "memory_efficient.model", "baseline.model"
    me_only = {"pipelines": ("data_processing", "memory_efficient")}
    sweep = {"pipelines": ("data_processing", "sweep")}
    report = {"pipelines": ("data_processing", "baseline", "memory_efficient", "reporting")}
    cases = [
        # data
        _p("data", "data.source", "kaggle"),
        _p("data", "data.dataset", "ml-2m"),
        _p("data", "data.dataset", 100),
        _p("data", "data.sourc", "synthetic"),
        _p("data", "data.verify_checksum", "no"),
        _p("data", "data.on_bad_lines", "warn"),
        _p("data", "data.download_timeout_s", 0),
        _p("data", "data.download_timeout_s", -5),
        _p("data", "data.drop_zero_ratings", "yes"),
        _p("data", "data.path", 42),
        _p("data", "data.raw_dir", 5),
        _p("data", "data.columns.user", ""),
        _p("data", "data.columns.usr", "u"),
        _p("data", "data.columns", {"user": "a", "item": "a"}),
        _p("data", "data.synthetic.num_ratings", 0),
        _p("data", "data.synthetic.num_ratings", -10),
        _p("data", "data.synthetic.num_ratings", "many"),
        _p("data", "data.synthetic.num_ratings", 10, expect=("num_ratings",)),
        _p("data", "data.synthetic.num_users", 0),
        _p("data", "data.synthetic.num_movies", 1.5),
        _p("data", "data.synthetic.seed", "x"),
        _p("data", "data.synthetic.min_ratings_per_user", 0),
        _p("data", "data.synthetic.noise_sd", -1, expect=("noise_sd",)),
        _p("data", "data.synthetic.interaction_sd", "big", expect=("interaction_sd",)),
        _p(
            "data",
            "data.synthetic.rating_distribution",
            [0.5, 0.6],
            expect=("rating_distribution",),
        ),
        _p(
            "data",
            "data.synthetic.rating_distribution",
            [0.5, 0.5, 0.5, -0.5, 0.0],
            expect=("rating_distribution",),
        ),
        _p("data", "data.synthetic.popularity_curve", [], expect=("popularity_curve",)),
        _p("data", "data.synthetic.max_user_fraction", 2, expect=("max_user_fraction",)),
        _p("data", "data.synthetic.max_user_fraction", 0, expect=("max_user_fraction",)),
        _p("data", "data.synthetic.num_factors", 0, expect=("num_factors",)),
        _p("data", "data.synthetic.span_s", -1, expect=("span_s",)),
        _p("data", "data.synthetic.max_gap_s", 1, expect=("max_gap_s",)),
        _p(
            "data",
            "data.synthetic.popularity_curve",
            [[0.0, "a"], [1.0, 0.0]],
            expect=("popularity_curve",),
        ),
        _p("data", "data.synthetic.nosie_sd", 1.0, expect=("nosie_sd",)),
        # split
        _p("split", "split.train_fraction", 0),
        _p("split", "split.train_fraction", 1),
        _p("split", "split.train_fraction", 1.5),
        _p("split", "split.train_fraction", "half"),
        _p("split", "split.train_fraction", True),
        _p("split", "split.validation_fraction", 1),
        _p("split", "split.validation_fraction", -0.1),
        _p("split", "split.seed", "x"),
        _p("split", "split.seed", 1.5),
        _p("split", "split.seeds", 1),
        # vocabulary
        _p("vocabulary", "vocabulary.source", "eval"),
        _p("vocabulary", "vocabulary.source", "ALL"),
        _p("vocabulary", "vocabulary.sorce", "train"),
        # training
        _p("training", "training.optimizer", "adamw"),
        _p("training", "training.learning_rate", 0),
        _p("training", "training.learning_rate", -0.1),
        _p("training", "training.learning_rate", 1e9),
        _p("training", "training.learning_rate", "fast"),
        _p("training", "training.batch_size", 0),
        _p("training", "training.batch_size", True),
        _p("training", "training.batch_size", 2.5),
        _p("training", "training.epochs", 0),
        _p("training", "training.epochs", -1),
        _p("training", "training.epoch", 1),
        _p("training", "training.steps_per_execution", 0),
        _p("training", "training.validation_batch_size", 0),
        _p("training", "training.early_stopping.monitor", "eval_rmse"),
        _p("training", "training.early_stopping.patience", -1),
        _p("training", "training.early_stopping.min_delta", -1),
        _p("training", "training.early_stopping.enabled", "yes"),
        _p("training", "training.cce_recluster_epochs", [0]),
        _p("training", "training.cce_recluster_epochs", "one"),
        _p("training", "training.seed", "x"),
        _p("training", "training.deterministic", "maybe"),
        _p("training", "training.verbose", 3),
        _p("training", "training.verbose", True),
        _p("training", "training.lazy_adam", "fast"),
        _p("training", "training.lazy_adam.sparse_min_size", -1),
        _p("training", "training.lazy_adam.beta_1", 1.5),
        _p("training", "training.adam.epsilon", -1),
        _p("training", "training.adam.epsilonn", 1e-7),
        _p("training", "training.adam.learning_rate", 0.1),
        _p("training", "training.adam.clipnorm", 0),
        _p("training", "training.sgd.momentum", 2),
        Case(
            "training",
            "training.rowwise_adagrad.epsilon: -1 (optimizer rowwise_adagrad)",
            ("training.rowwise_adagrad.epsilon",),
            params={
                "training": {"optimizer": "rowwise_adagrad", "rowwise_adagrad": {"epsilon": -1}}
            },
        ),
        _p("training", "training.rowwise_adagrad.initial_accumulator_value", -1),
        # evaluation
        _p("evaluation", "evaluation.popularity_blocks", 0),
        _p("evaluation", "evaluation.popularity_blocks", "three"),
        _p("evaluation", "evaluation.popularity_blocks", 2.5),
        _p("evaluation", "evaluation.blocks", 3),
        # baseline model
        _p("model", f"{bl}.embedding_dim", -1),
        _p("model", f"{bl}.embedding_dim", 0),
        _p("model", f"{bl}.embedding_dim", "big"),
        _p("model", f"{bl}.embedding_dim", 2.5),
        _p("model", f"{bl}.use_biases", 1),
        _p("model", f"{bl}.bias_layout", "inside"),
        _p("model", f"{bl}.embedding_l2", -0.1),
        _p("model", f"{bl}.bias_l2", "lots"),
        _p("model", f"{bl}.seed", "x"),
        _p("model", f"{bl}.name", 123),
        _p("model", f"{bl}.output.activation", "relu"),
        Case(
            "model",
            f"{bl}.output: min_rating 5, max_rating 1",
            (f"{bl}.output",),
            params=_nested(f"{bl}.output", {"min_rating": 5.0, "max_rating": 1.0}),
        ),
        _p("model", f"{bl}.output.max_rating", 3.0, expect=("max_rating", "3")),
        _p("model", f"{bl}.user_embeding", {"type": "full"}),
        _p("model", f"{bl}.movie_embedding", "full"),
        _p("model", f"{bl}.user_embedding.type", "dense"),
    ]
    # embedding types and their sizes, one side of the baseline
    side = f"{bl}.user_embedding"
    specs = [
        {"type": "hashed"},
        {"type": "hashed", "num_buckets": 0},
        {"type": "hashed", "ids_per_bucket": 0},
        {"type": "hashed", "num_buckets": 10, "ids_per_bucket": 2},
        {"type": "hashed", "num_buckets": "ten"},
        {"type": "quotient_remainder", "combiner": "mul"},
        {"type": "quotient_remainder", "num_bukets": 10},
        {"type": "cce"},
        {"type": "cce", "num_chunks": 0, "budget_dim": 4},
        {"type": "tt_rec"},
        {"type": "tt_rec", "tt_rank": 0, "budget_dim": 4},
        {"type": "robe"},
        {"type": "robe", "block_size": 0, "budget_dim": 4},
        {"type": "robe", "array_size": 0},
        {"type": "hash_embedding"},
        {"type": "hash_embedding", "num_hashes": 0, "budget_dim": 4},
        {"type": "dhe"},
        {"type": "dhe", "num_hidden_layers": -1, "budget_dim": 4},
        {"type": "mixed_dimension"},
        {"type": "projected"},
        {"type": "full", "seed": True},
    ]
    cases += [
        Case("embedding", f"{side}: {spec}", (side,), params=_nested(side, spec)) for spec in specs
    ]
    for value in (4.5, "8", True, 0, -4, "four", 10**12):
        spec = {"type": "robe", "budget_dim": value}
        cases.append(
            Case(
                "embedding", f"{side}: {spec}", (f"{side}.budget_dim",), params=_nested(side, spec)
            )
        )
    # memory_efficient's blocks
    blocks = f"{me}.user_embedding.blocks"
    for key, value in [
        ("mean_dim", 128),
        ("mean_dim", -4),
        ("boundaries", []),
        ("boundaries", [10, 5]),
        ("alpha", -1),
        ("num_blocks", 0),
        ("power_of_two", "maybe"),
        ("min_dim", 65),
        ("dims", [-1, 2]),
        ("alphaa", 0.3),
        ("share_below_dim", 0.5),
        ("shared", [True]),
    ]:
        cases.append(_p("model", f"{blocks}.{key}", value, expect=(blocks,), **me_only))
    cases += [
        _p(
            "model",
            f"{blocks}.tail",
            {"share": "bogus", "ids_per_bucket": 8},
            expect=(blocks,),
            **me_only,
        ),
        _p("model", f"{me}.user_embedding.projection", "padd", **me_only),
        _p("model", f"{me}.embedding_dim", -2, **me_only),
        # reporting
        _p("reporting", "reporting.reference", "foo", **report),
        _p("reporting", "reporting.reference", 5, **report),
        _p("reporting", "reporting.referenc", "baseline", **report),
        # sweep
        _p("sweep", "sweep.seeds", [], **sweep),
        _p("sweep", "sweep.seeds", [1, 1], **sweep),
        _p("sweep", "sweep.seeds", "one", **sweep),
        _p("sweep", "sweep.seeds", [1.5], **sweep),
        _p("sweep", "sweep.reference", "nope", **sweep),
        _p("sweep", "sweep.reference", 3, **sweep),
        _p("sweep", "sweep.quantize", "int2", **sweep),
        _p("sweep", "sweep.quantize", ["int8", "int8"], **sweep),
        _p("sweep", "sweep.target.min_compression", 0, **sweep),
        _p("sweep", "sweep.target.max_rmse_gap", -1, **sweep),
        _p("sweep", "sweep.training.epochs", 0, **sweep),
        _p("sweep", "sweep.training.optimizer", "x", **sweep),
        _p("sweep", "sweep.training.adam.epsilon", -1, **sweep),
        _p("sweep", "sweep.budgets.floats_per_id", [], **sweep),
        _p("sweep", "sweep.budgets.floats_per_id", [0], **sweep),
        _p("sweep", "sweep.budgets.floats_per_id", [2, 2], **sweep),
        _p("sweep", "sweep.budgets.floats_per_id", ["a"], **sweep),
        _p("sweep", "sweep.executor.type", "threads", **sweep),
        _p("sweep", "sweep.executor.workers", 0, **sweep),
        _p("sweep", "sweep.executor.wrokers", 2, **sweep),
        _p("sweep", "sweep.executor.progress", "yes", **sweep),
        _p("sweep", "sweep.resume", "yes", **sweep),
        Case(
            "sweep",
            "sweep.checkpoint_dir: '' (resume on)",
            ("sweep.checkpoint_dir",),
            params={"sweep": {"resume": True, "checkpoint_dir": ""}},
            **sweep,
        ),
        Case(
            "sweep",
            "sweep.checkpoint_dir: a file (resume on)",
            ("sweep.checkpoint_dir",),
            params={"sweep": {"resume": True, "checkpoint_dir": "{file}"}},
            make_file=_write("not_a_folder", "x"),
            **sweep,
        ),
        _p("sweep", "sweep.techniques.full.grid.embedding_dim", [], **sweep),
        _p(
            "sweep",
            "sweep.techniques.full.grid.embedding_dimm",
            [64],
            expect=("embedding_dimm",),
            **sweep,
        ),
        _p(
            "sweep",
            "sweep.techniques.full.grid.embedding_dim",
            [0],
            expect=("sweep.techniques.full",),
            **sweep,
        ),
        _p(
            "sweep",
            "sweep.techniques.full.grid",
            {"embedding_l2": [-1.0]},
            expect=("sweep.techniques.full",),
            **sweep,
        ),
        Case(
            "sweep",
            "sweep.techniques.uniform.tune: 'embedding_l2' (a string)",
            ("sweep.techniques.uniform.tune",),
            params=_nested(
                "sweep.techniques.uniform",
                {
                    "embedding": {"type": "full"},
                    "budget_knob": "embedding_dim",
                    "tune": "embedding_l2",
                    "grid": {"embedding_l2": [0.04, 0.08]},
                },
            ),
            **sweep,
        ),
        Case(
            "sweep",
            "sweep.techniques.uniform.tune: [bogus]",
            ("sweep.techniques.uniform.tune",),
            params=_nested(
                "sweep.techniques.uniform",
                {
                    "embedding": {"type": "full"},
                    "budget_knob": "embedding_dim",
                    "tune": ["bogus"],
                    "grid": {"embedding_l2": [0.04]},
                },
            ),
            **sweep,
        ),
        Case(
            "sweep",
            "sweep.techniques.robe.budget_knob: 'embedding.size'",
            ("sweep.techniques.robe.budget_knob",),
            params=_nested(
                "sweep.techniques.robe",
                {"embedding": {"type": "robe", "block_size": 8}, "budget_knob": "embedding.size"},
            ),
            **sweep,
        ),
        Case(
            "sweep",
            "sweep.techniques.cce: {num_chunks: 0}",
            ("sweep.techniques.cce",),
            params=_nested(
                "sweep.techniques.cce",
                {
                    "embedding": {"type": "cce", "num_chunks": 0},
                    "budget_knob": "embedding.budget_dim",
                },
            ),
            **sweep,
        ),
        Case(
            "sweep",
            "sweep.techniques.bogus: {embedding: {type: bogus}}",
            ("sweep.techniques.bogus",),
            params=_nested(
                "sweep.techniques.bogus",
                {"embedding": {"type": "bogus"}, "grid": {"embedding_dim": [4]}},
            ),
            **sweep,
        ),
        Case(
            "sweep",
            "sweep.techniques.hashing: no budget_knob and no grid (no size)",
            ("sweep.techniques.hashing",),
            params=_nested(
                "sweep.techniques.hashing", {"embedding": {"type": "hashed"}, "budget_knob": None}
            ),
            **sweep,
        ),
        _p("sweep", "sweep.techniques.full", "full", **sweep),
        Case(
            "sweep",
            "sweep.peers.svd_factors: [0]",
            ("sweep.peers.svd_factors",),
            params={"sweep": {"peers": {"svd_factors": [0]}}},
            **sweep,
        ),
        Case(
            "sweep",
            "sweep.peers.svd.lr_all: -1",
            ("sweep.peers.svd.lr_all",),
            params={"sweep": {"peers": {"svd": {"lr_all": -1}}}},
            **sweep,
        ),
        Case(
            "sweep",
            "sweep.peers.baseline_only.n_epochs: 0",
            ("sweep.peers.baseline_only.n_epochs",),
            params={"sweep": {"peers": {"baseline_only": {"n_epochs": 0}}}},
            **sweep,
        ),
        _p(
            "sweep",
            "sweep.recipe.baseline",
            {"embedding": {"type": "bogus"}},
            expect=("sweep.recipe",),
            **sweep,
        ),
        _p("sweep", "sweep.recipe.baseline", "yes", expect=("sweep.recipe",), **sweep),
        _p("sweep", "sweep.seed", [1], **sweep),
    ]
    return cases


def data_file_cases() -> list[Case]:
    """Bad files: MovieLens archives and ratings files, Ciao .mat files, user tables."""
    table = {"data": {"source": "table", "path": "{file}"}}
    ciao = {"data": {"source": "ciao", "path": "{file}"}}
    udata = {"data": {"source": "movielens", "dataset": "ml-100k", "path": "{file}"}}
    unchecked = {"data": {**udata["data"], "verify_checksum": False}}
    ml = "movielens"
    good_zip_member = {"ml-100k/u.data": _udata(), "ml-100k/u.item": "1|Toy Story (1995)|x\n"}
    cases = [
        # MovieLens: lines, ranges, ids, archives, checksums, missing files, no network
        _file_case(
            ml,
            "u.data with a malformed line",
            udata,
            _write("u.data", _udata("1\t2\tfive\t881250949")),
        ),
        _file_case(ml, "u.data with a line of 2 fields", udata, _write("u.data", _udata("1\t2"))),
        _file_case(
            ml, "u.data with rating 6", udata, _write("u.data", _udata("1\t2\t6\t881250949"))
        ),
        _file_case(
            ml, "u.data with rating -1", udata, _write("u.data", _udata("1\t2\t-1\t881250949"))
        ),
        _file_case(
            ml, "u.data with rating NaN", udata, _write("u.data", _udata("1\t2\tnan\t881250949"))
        ),
        _file_case(
            ml, "u.data with user id 0", udata, _write("u.data", _udata("0\t2\t3\t881250949"))
        ),
        _file_case(
            ml,
            "u.data with a negative movie id",
            udata,
            _write("u.data", _udata("1\t-2\t3\t881250949")),
        ),
        _file_case(
            ml,
            "u.data with a text user id",
            udata,
            _write("u.data", _udata("bob\t2\t3\t881250949")),
        ),
        _file_case(ml, "an empty u.data", udata, _write("u.data", "")),
        _file_case(
            ml,
            "u.data of 2 ratings",
            udata,
            _write("u.data", "1\t1\t3\t881250949\n2\t2\t4\t881250950\n"),
        ),
        _file_case(
            ml,
            "a truncated zip",
            udata,
            _write("ml-100k.zip", _zip_bytes(good_zip_member)[:300]),
        ),
        _file_case(ml, "a zip of random bytes", udata, _write("ml-100k.zip", os.urandom(4096))),
        _file_case(
            ml,
            "a zip with the wrong checksum (verify_checksum on)",
            {"data": {"source": "movielens", "dataset": "ml-100k", "raw_dir": "{file}"}},
            lambda f: (
                (f / "raw").mkdir()
                or _write("raw/ml-100k.zip", _zip_bytes(good_zip_member))(f).parent
            ),
            expect=("checksum", "ml-100k.zip"),
        ),
        _file_case(
            ml,
            "a zip without u.data",
            udata,
            _write("ml-100k.zip", _zip_bytes({"ml-100k/README": "x"})),
        ),
        _file_case(
            ml,
            "a truncated zip (verify_checksum off)",
            unchecked,
            _write("ml-100k.zip", _zip_bytes(good_zip_member)[:300]),
        ),
        _file_case(
            ml,
            "a zip of random bytes (verify_checksum off)",
            unchecked,
            _write("ml-100k.zip", os.urandom(4096)),
        ),
        _file_case(
            ml,
            "a zip without u.data (verify_checksum off)",
            unchecked,
            _write("ml-100k.zip", _zip_bytes({"ml-100k/README": "x"})),
        ),
        _file_case(
            ml,
            "a zip with a malformed u.data line (verify_checksum off)",
            unchecked,
            _write(
                "ml-100k.zip",
                _zip_bytes({**good_zip_member, "ml-100k/u.data": _udata("1\t2\tfive\t0")}),
            ),
        ),
        _file_case(ml, "a .tar.gz", udata, _tar_gz),
        _file_case(ml, "a missing data.path", udata, _missing("nowhere.zip")),
        _file_case(
            ml,
            "data.path is a .csv for source movielens",
            udata,
            _write("ratings.csv", _good_rows()),
            expect=("data.path", "data.source", "{file}"),
        ),
        Case(
            ml,
            "no network (source movielens, empty raw_dir)",
            ("GroupLens", "grouplens", "download", "data.path"),
            params={
                "data": {
                    "source": "movielens",
                    "dataset": "ml-100k",
                    "raw_dir": "{file}",
                    "download_timeout_s": 5,
                }
            },
            make_file=lambda f: (f / "empty_raw").mkdir() or f / "empty_raw",
            env={
                "https_proxy": "http://127.0.0.1:9",
                "http_proxy": "http://127.0.0.1:9",
                "HTTPS_PROXY": "http://127.0.0.1:9",
                "HTTP_PROXY": "http://127.0.0.1:9",
            },
        ),
        # table: columns, ratings, empty files
        _file_case(
            "table",
            "a CSV without the rating column",
            table,
            _write("r.csv", "user_id,item_id\n" + "\n".join(f"{i},{i}" for i in range(1, 50))),
        ),
        _file_case(
            "table",
            "a CSV with misnamed columns (userId, movieId)",
            table,
            _write("r.csv", "userId,movieId,rating\n" + _good_rows()),
        ),
        _file_case(
            "table",
            "a CSV with a non-numeric rating",
            table,
            _write("r.csv", "user_id,item_id,rating\n" + _good_rows() + "\n3,4,good"),
        ),
        _file_case(
            "table",
            "a CSV with a NaN rating",
            table,
            _write("r.csv", "user_id,item_id,rating\n" + _good_rows() + "\n3,4,"),
        ),
        _file_case(
            "table",
            "a CSV with a missing user id",
            table,
            _write("r.csv", "user_id,item_id,rating\n" + _good_rows() + "\n,4,3"),
        ),
        _file_case("table", "an empty CSV (0 bytes)", table, _write("r.csv", "")),
        _file_case(
            "table", "a CSV with only a header", table, _write("r.csv", "user_id,item_id,rating\n")
        ),
        _file_case(
            "table",
            "a CSV of 2 columns, no header",
            table,
            _write("r.csv", "\n".join(f"{i},{i}" for i in range(1, 50))),
        ),
        _file_case("table", "a .csv of binary bytes", table, _write("r.csv", os.urandom(2048))),
        _file_case("table", "a missing .csv", table, _missing("absent.csv")),
        _file_case("table", "data.path is a folder", table, _directory),
        _file_case(
            "table", "a .txt table", table, _write("r.txt", _good_rows()), expect=("data.path",)
        ),
        _file_case(
            "table",
            "a .parquet that is not Parquet",
            table,
            _write("r.parquet", "user_id,item_id,rating\n1,2,3\n"),
        ),
        _file_case(
            "table",
            "a CSV with ratings all 0 (drop_zero_ratings)",
            table,
            _write(
                "r.csv", "user_id,item_id,rating\n" + "\n".join(f"{i},{i},0" for i in range(1, 300))
            ),
        ),
        _file_case(
            "table",
            "a CSV with an infinite rating",
            table,
            _write("r.csv", "user_id,item_id,rating\n" + _good_rows() + "\n3,4,inf"),
        ),
        # ciao
        _file_case("ciao", "a .mat without `rating`", ciao, _mat("r.mat", {"trust": _ciao_rows()})),
        _file_case(
            "ciao",
            "a .mat whose rating has 2 columns",
            ciao,
            _mat("r.mat", {"rating": _ciao_rows(columns=2)}),
        ),
        _file_case(
            "ciao",
            "a .mat whose rating is empty",
            ciao,
            _mat("r.mat", {"rating": _ciao_rows()[:0]}),
        ),
        _file_case(
            "ciao", "a .mat with rating 7", ciao, _mat("r.mat", {"rating": _ciao_rows(rating=7)})
        ),
        _file_case(
            "ciao",
            "a .mat with a NaN rating",
            ciao,
            _mat("r.mat", {"rating": _ciao_rows(rating=float("nan"))}),
        ),
        _file_case(
            "ciao", "a .mat with user id 0", ciao, _mat("r.mat", {"rating": _ciao_rows(user=0)})
        ),
        _file_case(
            "ciao", "a .mat with user id 1.5", ciao, _mat("r.mat", {"rating": _ciao_rows(user=1.5)})
        ),
        _file_case("ciao", "a .mat of text", ciao, _write("r.mat", "user,item,rating\n1,2,3\n")),
        _file_case("ciao", "a missing .mat", ciao, _missing("absent.mat")),
        _file_case(
            "ciao",
            "a .csv for source ciao",
            ciao,
            _write("r.csv", _good_rows()),
            expect=("data.path",),
        ),
        Case(
            "ciao",
            "source ciao without data.path",
            ("data.path",),
            params={"data": {"source": "ciao"}},
        ),
    ]
    return cases


def prediction_cases() -> list[Case]:
    """Bad inputs to a saved model's predict, predict_on_batch, __call__ and recommend."""
    import numpy as np  # noqa: PLC0415
    import pandas as pd  # noqa: PLC0415

    good_users, good_movies = ["user_1", "user_2", "user_3"], ["movie_10", "movie_11", "movie_12"]

    def predict(x: Any) -> Callable[[Any], Any]:
        return lambda model: model.predict(x, verbose=0)

    def on_batch(x: Any) -> Callable[[Any], Any]:
        return lambda model: model.predict_on_batch(x)

    def call(x: Any) -> Callable[[Any], Any]:
        return lambda model: model(x)

    def recommend_for(user: Any) -> Callable[[Any], Any]:
        def run(model: Any) -> Any:
            from memory_efficient_embeddings.modeling.recommend import recommend  # noqa: PLC0415

            return recommend(model, user, pd.Series(MOVIES))

        return run

    frame = pd.DataFrame({"user_id": good_users, "movie_id": good_movies})
    inputs: list[tuple[str, Callable[[Any], Any], tuple[str, ...]]] = [
        (
            "predict: DataFrame with columns userId, movieId",
            predict(frame.set_axis(["userId", "movieId"], axis=1)),
            ("user_id",),
        ),
        (
            "predict: DataFrame with a NaN movie id",
            predict(frame.assign(movie_id=["movie_10", np.nan, "movie_12"])),
            ("movie_id",),
        ),
        (
            "predict: DataFrame with a None user id",
            predict(frame.assign(user_id=["user_1", None, "user_3"])),
            ("user_id",),
        ),
        (
            "predict: a tuple (users, movies)",
            predict((np.array(good_users), np.array(good_movies))),
            ("tuple",),
        ),
        (
            "predict: a 2-D array of pairs",
            predict(np.array([good_users, good_movies]).T),
            ("user_id", "array"),
        ),
        (
            "predict: a list of pairs",
            predict([["user_1", "movie_10"], ["user_2", "movie_11"]]),
            ("user_id", "list"),
        ),
        (
            "predict: swapped columns",
            predict({"user_id": good_movies, "movie_id": good_users}),
            ("swapped",),
        ),
        (
            "predict: integer ids on a string-id model",
            predict({"user_id": [1, 2, 3], "movie_id": [10, 11, 12]}),
            ("user_id", "movie_id"),
        ),
        (
            "predict: float ids",
            predict({"user_id": [1.0, 2.0], "movie_id": [10.0, 11.0]}),
            ("user_id", "movie_id"),
        ),
        (
            "predict: ids of another format (u1, m10)",
            predict({"user_id": ["u1", "u2"], "movie_id": ["m10", "m11"]}),
            ("user_id", "movie_id"),
        ),
        (
            "predict: unequal lengths",
            predict({"user_id": good_users, "movie_id": good_movies[:2]}),
            ("user_id", "movie_id"),
        ),
        (
            "predict: empty columns",
            predict({"user_id": [], "movie_id": []}),
            ("user_id", "movie_id"),
        ),
        ("predict: a missing key", predict({"user_id": good_users}), ("movie_id",)),
        (
            "predict: a misspelt key",
            predict({"user_id": good_users, "movie": good_movies}),
            ("movie_id",),
        ),
        ("predict: None", predict(None), ("user_id", "predict")),
        (
            "predict: a column of None",
            predict({"user_id": None, "movie_id": good_movies}),
            ("user_id",),
        ),
        (
            "predict: (n, 2) column shape",
            predict(
                {
                    "user_id": np.array([good_users, good_users]).T,
                    "movie_id": np.array([good_movies, good_movies]).T,
                }
            ),
            ("user_id",),
        ),
        ("predict_on_batch: a tuple", on_batch((good_users, good_movies)), ("tuple",)),
        (
            "predict_on_batch: NaN",
            on_batch({"user_id": ["user_1", np.nan], "movie_id": ["movie_10", "movie_11"]}),
            ("user_id",),
        ),
        (
            "model(x): swapped columns",
            call({"user_id": np.array(good_movies), "movie_id": np.array(good_users)}),
            ("swapped",),
        ),
        (
            "model(x): integer ids",
            call({"user_id": np.array([1, 2]), "movie_id": np.array([10, 11])}),
            ("user_id", "movie_id"),
        ),
        (
            "model(x): a DataFrame with a NaN",
            call(frame.assign(user_id=["user_1", np.nan, "user_3"])),
            ("user_id",),
        ),
        ("recommend: an int user id", recommend_for(42), ("recommend", "user")),
        ("recommend: a list of users", recommend_for(["user_1", "user_2"]), ("recommend", "user")),
    ]
    return [Case("prediction", name, expect, predict=run) for name, run, expect in inputs]


def cli_cases() -> list[Case]:
    """What only the command line parses: --params syntax, environments, pipeline names."""
    return [
        Case(
            "cli",
            "--params training.epoch=1 (typo)",
            ("training.epoch",),
            cli=["--params", "training.epoch=1"],
        ),
        Case(
            "cli",
            "--params training.epochs (no value)",
            ("training.epochs", "--params"),
            cli=["--params", "training.epochs"],
        ),
        Case("cli", "--env=nope (no such environment)", ("nope",), cli=["--env=nope"]),
        Case("cli", "--pipelines=nope", ("nope",), cli=["--pipelines=nope"]),
        Case("cli", "--runner=FooRunner", ("FooRunner",), cli=["--runner=FooRunner"]),
        Case(
            "cli",
            "conf/hostile/parameters.yml: training.early_stopping: [] (a list for a mapping)",
            ("early_stopping",),
            cli=["--env=hostile"],
        ),
        Case(
            "cli",
            "--load-versions=nope:2020-01-01T00.00.00.000Z",
            ("nope",),
            cli=["--load-versions=nope:2020-01-01T00.00.00.000Z"],
        ),
    ]


USERS = [f"user_{i}" for i in range(1, 6)]
MOVIES = [f"movie_{i}" for i in range(10, 17)]


def all_cases() -> list[Case]:
    return parameter_cases() + data_file_cases() + prediction_cases() + cli_cases()


# ---------------------------------------------------------------------------------------------
# Running them


def make_project(folder: Path, source: Path = REPO_ROOT) -> Path:
    """A copy of the project at `source` (conf, src, pyproject), tiny parameters in conf/local."""
    import yaml  # noqa: PLC0415

    project = folder / "project"
    for name in ("conf", "src"):
        shutil.copytree(
            source / name, project / name, ignore=shutil.ignore_patterns("local", "__pycache__")
        )
    for name in ("pyproject.toml", ".telemetry"):
        if (source / name).exists():
            shutil.copy(source / name, project / name)
    (project / "conf" / "local").mkdir()
    local = copy.deepcopy(TINY_PARAMETERS)
    local["sweep"]["checkpoint_dir"] = str(project / "data" / "checkpoints")
    (project / "conf" / "local" / "parameters.yml").write_text(yaml.safe_dump(local))
    (project / "conf" / "hostile").mkdir()
    (project / "conf" / "hostile" / "parameters.yml").write_text(
        yaml.safe_dump({"training": {"early_stopping": []}})
    )
    (project / "data").mkdir()
    # Quiet logs: warnings and above, to stderr; the harness reads what the run raised.
    (project / "logging.yml").write_text(
        yaml.safe_dump(
            {
                "version": 1,
                "disable_existing_loggers": False,
                "handlers": {"null": {"class": "logging.NullHandler"}},
                "root": {"level": "WARNING", "handlers": ["null"]},
            }
        )
    )
    return project


class _NodeRecorder:
    """A hook that notes which nodes started, to tell "before work" from "after training"."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.fits = 0

    @hook_impl
    def before_node_run(self, node: Any) -> None:
        self.started.append(node.name)


def _trained(started: list[str], fits: int = 0) -> bool:
    return fits > 0 or any(name.split(".")[-1] in TRAINING_NODES for name in started)


@contextlib.contextmanager
def _counting_fits(recorder: _NodeRecorder):
    """Count Keras fits in this process (every model class's fit goes through keras.Model's)."""
    import keras  # noqa: PLC0415

    original = keras.Model.fit

    def fit(self: Any, *args: Any, **kwargs: Any) -> Any:
        recorder.fits += 1
        return original(self, *args, **kwargs)

    keras.Model.fit = fit
    try:
        yield
    finally:
        keras.Model.fit = original


def run_kedro_case(project: Path, case: Case, scratch: Path) -> Outcome:
    """One in-process `kedro run` with the case's parameters, classified by what it raised."""
    from kedro.framework.session import KedroSession  # noqa: PLC0415

    from memory_efficient_embeddings.hooks import config_merge_error, user_error  # noqa: PLC0415

    params, file = copy.deepcopy(case.params or {}), ""
    if case.make_file is not None:
        folder = Path(tempfile.mkdtemp(dir=scratch))
        file = str(case.make_file(folder))
        params = _substitute(params, file)
    recorder = _NodeRecorder()
    saved_env = {key: os.environ.get(key) for key in case.env}
    os.environ.update(case.env)
    try:
        with (
            _counting_fits(recorder),
            KedroSession.create(project_path=project, runtime_params=params) as session,
        ):
            session._hook_manager.register(recorder)
            session.run(pipeline_names=list(case.pipelines))
    except BaseException as error:  # noqa: BLE001 - every failure is an outcome to classify
        if isinstance(error, KeyboardInterrupt):
            raise
        found = user_error(error) or config_merge_error(error)
        if found is not None:  # what the project's excepthook prints instead of a traceback
            message = f"Error ({type(found).__name__}): {found}"
            return Outcome(True, message, False, _trained(recorder.started, recorder.fits), file)
        message = f"Traceback ... {type(error).__name__}: {error}"
        return Outcome(True, message, True, _trained(recorder.started, recorder.fits), file)
    finally:
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return Outcome(False, "", False, _trained(recorder.started, recorder.fits), file)


def run_cli_case(project: Path, case: Case) -> Outcome:
    """One `kedro run` command line in a subprocess, classified by its exit status and stderr."""
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "1", "PYTHONPATH": str(project / "src")}
    env.pop("KEDRO_LOGGING_CONFIG", None)  # the project's own logging: "Running node" lines
    command = [
        sys.executable,
        "-m",
        "kedro",
        "run",
        "--pipelines=data_processing,baseline",
        *case.cli,
    ]
    if any(arg.startswith("--pipelines") for arg in case.cli):
        command.remove("--pipelines=data_processing,baseline")
    result = subprocess.run(
        command, cwd=project, env=env, capture_output=True, text=True, timeout=900, check=False
    )
    output = result.stdout + result.stderr
    trained = bool(re.search(r"Running node: \S*(" + "|".join(TRAINING_NODES) + ")", output))
    if result.returncode == 0:
        return Outcome(False, "", False, trained)
    traceback_shown = "Traceback (most recent call last)" in output
    errors = [
        line for line in output.splitlines() if line.startswith(("Error", "Usage:", "Error:"))
    ]
    if traceback_shown:
        tail = [line for line in output.strip().splitlines() if line.strip()][-1:]
        message = "Traceback ... " + (tail[0] if tail else "")
    else:
        start = output.find(errors[0]) if errors else max(0, len(output.strip()) - 400)
        message = output[start:].strip()
    return Outcome(True, message, traceback_shown, trained)


def saved_model(folder: Path) -> Any:
    """A small string-id model, saved and reloaded with safe mode on (no training needed)."""
    import keras  # noqa: PLC0415

    from memory_efficient_embeddings.embeddings import build_rating_model, with_string_ids  # noqa: PLC0415

    keras.utils.set_random_seed(3)
    inner = build_rating_model(
        len(USERS), len(MOVIES), {"type": "full"}, {"type": "full"}, 4, use_biases=True
    )
    path = folder / "model.keras"
    with_string_ids(inner, USERS, MOVIES).save(path)
    return keras.saving.load_model(path, safe_mode=True)


def run_prediction_case(model: Any, case: Case) -> Outcome:
    """A prediction input: refused by the project's own error (clear), by Keras/TF (late), or not."""
    assert case.predict is not None
    try:
        case.predict(model)
    except Exception as error:  # noqa: BLE001 - every failure is an outcome to classify
        ours = type(error).__module__.startswith("memory_efficient_embeddings")
        message = f"{type(error).__name__}: {error}"
        return Outcome(True, message if ours else "Traceback ... " + message, not ours, False)
    return Outcome(False)


def run_case(case: Case, project: Path, scratch: Path, model: Any) -> Outcome:
    if case.predict is not None:
        return run_prediction_case(model, case)
    if case.cli is not None:
        return run_cli_case(project, case)
    return run_kedro_case(project, case, scratch)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help="run only the inputs whose category or name contains this")
    parser.add_argument("--skip-cli", action="store_true", help="leave out the subprocess cases")
    parser.add_argument("--json-out", type=Path, help="write every row and the counts as JSON")
    parser.add_argument(
        "--source",
        type=Path,
        default=REPO_ROOT,
        help="the project checkout to try (its conf and src are copied; default: this one), "
        "e.g. another worktree to count before a fix",
    )
    args = parser.parse_args(argv)
    os.environ["KEDRO_DISABLE_TELEMETRY"] = "1"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    cases = all_cases()
    if args.only:
        cases = [c for c in cases if args.only in c.category or args.only in c.name]
    if args.skip_cli:
        cases = [c for c in cases if c.cli is None]
    scratch = Path(tempfile.mkdtemp(prefix="hostile_inputs_"))
    rows = []
    try:
        project = make_project(scratch, args.source.resolve())
        os.environ["KEDRO_LOGGING_CONFIG"] = str(project / "logging.yml")
        from kedro.framework.startup import bootstrap_project  # noqa: PLC0415

        bootstrap_project(project)
        logging.getLogger().setLevel(logging.ERROR)
        # The legal control: if the tiny run itself fails, no row below would mean anything.
        control = run_kedro_case(project, Case("control", "tiny legal run", ()), scratch)
        if control.refused:
            print(f"The legal control run failed: {control.message}", file=sys.stderr)
            return 2
        model = saved_model(scratch) if any(c.predict for c in cases) else None
        for case in cases:
            started = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()):
                outcome = run_case(case, project, scratch, model)
            kind, why = classify(outcome, case.expect)
            row = {
                "category": case.category,
                "input": case.name,
                "class": kind,
                "why": why,
                "message": first_line(outcome.message)[:300],
                "seconds": round(time.perf_counter() - started, 1),
            }
            rows.append(row)
            print(
                f"{row['category']:<11} | {row['input'][:70]:<70} | {kind:<6} | {row['message'][:160]}",
                flush=True,
            )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    counts = {
        "tried": len(rows),
        **{k: sum(r["class"] == k for r in rows) for k in (CLEAR, LATE, SILENT)},
    }
    print(
        f"\n{counts['tried']} bad inputs tried: {counts[CLEAR]} refused clearly before work, "
        f"{counts[LATE]} late or unclear, {counts[SILENT]} accepted silently."
    )
    for row in rows:
        if row["class"] != CLEAR:
            print(
                f"  {row['class']:<6} {row['category']}: {row['input']} ({row['why']}): {row['message'][:200]}"
            )
    if args.json_out:
        args.json_out.write_text(json.dumps({"counts": counts, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
