"""The layer library on TensorFlow and on JAX: same weights in, same outputs out; saved on one
backend, loaded on the other.

Keras picks its backend once per process, so each backend runs in its own subprocess
(``backend_worker.py``): TensorFlow builds one model holding every layer kind with fixed numpy
weights and saves it (float, MLET-folded, int8, int4, and a string-id rating model); JAX builds
the same and loads TensorFlow's files; TensorFlow then loads JAX's files. The tests compare
outputs across backends (float32 tolerance), reloaded outputs with the saving backend's, and the
simplest layers with a numpy oracle written from their definitions. Each layer's own oracle
tests (``test_against_reference.py``, ``test_layers_oracle.py``, ...) run on both backends in CI
(``make test`` runs ``tests/embeddings`` again with ``KERAS_BACKEND=jax``).

The subprocesses start both backends whatever the pass: the module runs in the default
(TensorFlow) pass only.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from memory_efficient_embeddings.embeddings.hashing import HASH_PRIME, draw_coefficients
from tests.embeddings import backend_worker as worker
from tests.embeddings.backend_ops import BACKEND

REPO_ROOT = Path(__file__).resolve().parents[2]
KINDS = tuple(worker.layer_factories())
OUTPUTS = [f"{model}/{kind}" for model in worker.MODELS[:-1] for kind in KINDS]
OUTPUTS.append("string_ids/rating")
TOLERANCE = {"rtol": 1e-5, "atol": 2e-6}

pytestmark = [
    pytest.mark.slow,  # three backend processes build and save every layer kind
    pytest.mark.skipif(
        BACKEND != "tensorflow", reason="starts both backends itself: runs in the default pass"
    ),
    pytest.mark.skipif(
        importlib.util.find_spec("jax") is None,
        reason="JAX is not installed (pip install -e '.[jax]'; `make test` installs it)",
    ),
]


def _run(backend: str, *args: object) -> None:
    env = {
        **os.environ,
        "KERAS_BACKEND": backend,
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "KEDRO_DISABLE_TELEMETRY": "1",
        "PYTHONPATH": os.pathsep.join(
            [str(REPO_ROOT / "src"), str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]
        ),
    }
    command = [sys.executable, worker.__file__, *map(str, args)]
    completed = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        pytest.fail(f"{backend} worker {args[0]} failed:\n{completed.stderr[-4000:]}")


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, np.ndarray]]:
    tf_dir = tmp_path_factory.mktemp("tensorflow")
    jax_dir = tmp_path_factory.mktemp("jax")
    _run("tensorflow", "build", tf_dir)
    _run("jax", "build", jax_dir, tf_dir)  # then loads TensorFlow's files
    _run("tensorflow", "load", tf_dir, jax_dir)
    return {
        "tensorflow": dict(np.load(tf_dir / "outputs.npz")),
        "jax": dict(np.load(jax_dir / "outputs.npz")),
        "jax_loads_tensorflow": dict(np.load(jax_dir / "loaded.npz")),
        "tensorflow_loads_jax": dict(np.load(tf_dir / "loaded.npz")),
    }


def test_each_worker_ran_on_its_backend_with_the_same_weights(runs) -> None:
    assert str(runs["tensorflow"]["backend"]) == "tensorflow"
    assert str(runs["jax"]["backend"]) == "jax"
    assert str(runs["jax_loads_tensorflow"]["backend"]) == "jax"
    assert str(runs["tensorflow_loads_jax"]["backend"]) == "tensorflow"
    weights = {key for key in runs["tensorflow"] if key.startswith("weight:")}
    assert weights == {key for key in runs["jax"] if key.startswith("weight:")}
    assert len(weights) >= 30
    for key in weights:  # integer ones too: CCE's assignments and hash coefficients
        np.testing.assert_array_equal(runs["jax"][key], runs["tensorflow"][key], err_msg=key)


@pytest.mark.parametrize("output", OUTPUTS)
def test_outputs_agree_across_backends(runs, output: str) -> None:
    tensorflow, jax = runs["tensorflow"][output], runs["jax"][output]
    assert np.abs(tensorflow).max() > 0.1  # something to compare
    if not output.startswith("string_ids"):
        np.testing.assert_array_equal(tensorflow[-2:], 0)  # ids 50 and -1: out of vocabulary
    np.testing.assert_allclose(jax, tensorflow, **TOLERANCE)


@pytest.mark.parametrize("output", OUTPUTS)
@pytest.mark.parametrize(
    ("saved_on", "loaded_as"),
    [("tensorflow", "jax_loads_tensorflow"), ("jax", "tensorflow_loads_jax")],
    ids=["tensorflow_to_jax", "jax_to_tensorflow"],
)
def test_saved_on_one_backend_loads_on_the_other(runs, saved_on, loaded_as, output) -> None:
    np.testing.assert_allclose(runs[loaded_as][output], runs[saved_on][output], **TOLERANCE)


def _oracle(kind: str, weights: dict[str, np.ndarray], ids: np.ndarray) -> np.ndarray:
    """The layer's rows from its definition, in float64; zero outside ``[0, 50)``."""

    def w(path: str) -> np.ndarray:
        return weights[f"weight:{kind}/{path}"].astype(np.float64)

    rows = []
    for i in ids.tolist():
        if not 0 <= i < 50:
            rows.append(np.zeros(8))
        elif kind == "full":
            rows.append(w("table/embeddings")[i])
        elif kind == "projected":
            rows.append(w("table/embeddings")[i] @ w("projection/kernel") + w("projection/bias"))
        elif kind == "qr_multiply":  # 8 buckets: i -> (i // 8, i % 8), rows multiplied
            rows.append(
                w("quotient_table/embeddings")[i // 8] * w("remainder_table/embeddings")[i % 8]
            )
        elif kind == "qr_concat":  # 7 buckets, halves side by side
            quotient, remainder = w("quotient_table/embeddings"), w("remainder_table/embeddings")
            rows.append(np.concatenate([quotient[i // 7], remainder[i % 7]]))
        elif kind == "hashed":  # seed 3's coefficients, 13 buckets
            a, b = (int(c) for c in draw_coefficients(np.random.default_rng(3)))
            rows.append(w("table/embeddings")[((a * i + b) % HASH_PRIME) % 13])
        elif kind in ("mixed_dimension", "mixed_dimension_pad"):  # blocks 10 / 15 / 25 ids
            block = 0 if i < 10 else 1 if i < 25 else 2
            local = i - (0, 10, 25)[block]
            row = w(f"block_{block}_table/embeddings")[local]
            if block and kind == "mixed_dimension":
                row = row @ w(f"block_{block}_projection/kernel") + w(
                    f"block_{block}_projection/bias"
                )
            rows.append(np.pad(row, (0, 8 - len(row))))
    return np.array(rows)


@pytest.mark.parametrize(
    "kind",
    [
        "full",
        "projected",
        "qr_multiply",
        "qr_concat",
        "hashed",
        "mixed_dimension",
        "mixed_dimension_pad",
    ],
)
@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_float_outputs_match_a_numpy_oracle(runs, backend: str, kind: str) -> None:
    expected = _oracle(kind, runs[backend], worker.IDS)
    np.testing.assert_allclose(runs[backend][f"float/{kind}"], expected, **TOLERANCE)
    # Folding a projection (MLET) serves the same rows.
    np.testing.assert_allclose(runs[backend][f"folded/{kind}"], expected, **TOLERANCE)
