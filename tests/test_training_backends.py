"""Training on the backend Keras runs on: the project's choice of backend, and one fit on it.

Run on TensorFlow by the default pass and on JAX by ``make test``'s second pass.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from memory_efficient_embeddings import keras_backend
from memory_efficient_embeddings.embeddings import build_rating_model
from memory_efficient_embeddings.modeling.training import Split, fit_rating_model


def test_the_project_default_applies_unless_keras_backend_is_set(monkeypatch) -> None:
    monkeypatch.setattr(os, "environ", dict(os.environ))  # what it sets stays in this test
    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    assert keras_backend.choose_keras_backend() == keras_backend.DEFAULT_KERAS_BACKEND
    # Set in the environment, where Keras reads it at import and child processes inherit it.
    assert os.environ["KERAS_BACKEND"] == keras_backend.DEFAULT_KERAS_BACKEND
    assert keras_backend.DEFAULT_KERAS_BACKEND in keras_backend.SUPPORTED_KERAS_BACKENDS
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    assert keras_backend.choose_keras_backend() == "jax"


def test_an_unsupported_backend_is_named(monkeypatch) -> None:
    monkeypatch.setenv("KERAS_BACKEND", "torch")
    with pytest.raises(ImportError, match=r"KERAS_BACKEND='torch'.*'tensorflow' or 'jax'"):
        keras_backend.choose_keras_backend()


def _compile_on_jax(env: dict[str, str]) -> None:
    """A fresh process on the project's JAX set-up that compiles one program (an initializer)."""
    script = (
        "import memory_efficient_embeddings, keras\n"
        "keras.initializers.RandomNormal(seed=1)((7, 3))\n"
    )
    subprocess.run([sys.executable, "-c", script], env=env, check=True, capture_output=True)


@pytest.mark.slow
def test_jax_keeps_compiled_programs_where_the_environment_says(tmp_path: Path) -> None:
    cache_settings = ("JAX_COMPILATION_CACHE_DIR", *keras_backend.JAX_CACHE_SETTINGS)
    env = {k: v for k, v in os.environ.items() if k not in cache_settings}
    env.update(KERAS_BACKEND="jax", XDG_CACHE_HOME=str(tmp_path / "xdg"))
    _compile_on_jax(env)
    default = tmp_path / "xdg" / "memory-efficient-embeddings" / "jax"
    assert any(default.glob("*-cache")), "no compiled program kept in the user's cache folder"
    # A folder the user names wins, and nothing new lands in the default one.
    before = sorted(default.iterdir())
    _compile_on_jax({**env, "JAX_COMPILATION_CACHE_DIR": str(tmp_path / "own")})
    assert any((tmp_path / "own").glob("*-cache"))
    assert sorted(default.iterdir()) == before


def _split(rows: int, seed: int) -> Split:
    rng = np.random.default_rng(seed)
    users, movies = rng.integers(0, 40, rows), rng.integers(0, 30, rows)
    # A learnable target: user and movie effects.
    ratings = 3.0 + np.sin(users) + 0.5 * np.cos(movies)
    inputs = {"user_id": users.astype("int32"), "movie_id": movies.astype("int32")}
    return Split(inputs, ratings.astype("float32"))


TRAINING = {
    "seed": 3,
    "learning_rate": 0.05,
    "batch_size": 64,
    "epochs": 3,
    "steps_per_execution": 4,
    "verbose": 0,
    "lazy_adam": {"sparse_min_size": 100},
}


def _fit(optimizer: str) -> tuple[keras.Model, dict]:
    keras.utils.set_random_seed(3)
    model = build_rating_model(
        40, 30, {"type": "full"}, {"type": "quotient_remainder"}, 8, use_biases=True
    )
    report = fit_rating_model(
        model, _split(600, 0), _split(200, 1), {**TRAINING, "optimizer": optimizer}
    )
    return model, report


# On JAX too (`make test`); RowWiseAdagrad's JAX path has its oracle in test_rowwise_adagrad.py.
@pytest.mark.parametrize(
    "optimizer", [pytest.param("lazy_adam", marks=pytest.mark.both_backends), "rowwise_adagrad"]
)
def test_a_fit_learns_records_its_backend_and_repeats_exactly(optimizer: str) -> None:
    model, report = _fit(optimizer)
    backend = keras.backend.backend()
    assert report["keras_backend"] == backend
    # One XLA program a step on JAX; TensorFlow graphs without XLA (tf.unique in the optimizers).
    assert model.jit_compile == (backend == "jax")
    history = report["history"]
    assert history["val_rmse"][-1] < history["val_rmse"][0]
    _, again = _fit(optimizer)  # same seed: the same batches and the same numbers
    assert again["history"] == history
