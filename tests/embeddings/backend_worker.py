"""One backend's side of the cross-backend tests (``test_backends.py``), run as a subprocess.

Keras picks its backend once per process (``KERAS_BACKEND``), so each backend runs here in its
own interpreter::

    KERAS_BACKEND=tensorflow python tests/embeddings/backend_worker.py build DIR
    KERAS_BACKEND=jax python tests/embeddings/backend_worker.py build DIR OTHER_DIR
    KERAS_BACKEND=tensorflow python tests/embeddings/backend_worker.py load DIR OTHER_DIR

``build`` makes one model holding every layer kind side by side, gives it fixed weights drawn
with numpy (float weights from a seeded generator, the integer ones as the layers derive them
from their seeds), and writes to ``DIR``: the weights, the outputs of the float model, of its
MLET-folded copy, of int8 and int4 copies, and of a string-id model, plus each model as a
``.keras`` file. ``load`` (or ``build`` given ``OTHER_DIR``, which then loads after building, in
the same process: JAX compiles each op once per process, so that halves its time) reloads the
``.keras`` files another backend wrote in ``OTHER_DIR`` (safe mode on) and writes their outputs
to ``DIR``.
"""

from __future__ import annotations

import gc
import sys
from pathlib import Path
from typing import Any

import numpy as np

import memory_efficient_embeddings  # noqa: F401 - chooses the Keras backend before Keras loads

IDS = np.array([0, 3, 9, 10, 24, 25, 37, 49, 50, -1], dtype="int32")  # every block, and OOV
USERS = [f"user_{i}" for i in range(12)]
MOVIES = [f"movie_{i}" for i in range(9)]
STRING_IDS = {
    "user_id": np.array(["user_0", "user_11", "user_99", "user_4"], dtype=object),
    "movie_id": np.array(["movie_8", "movie_0", "movie_3", "nope"], dtype=object),
}
MODELS = ("float", "folded", "int8", "int4", "string_ids")


def layer_factories() -> dict[str, Any]:
    """Every layer kind of the library, small, with a fixed seed where it hashes."""
    from memory_efficient_embeddings.embeddings import (  # noqa: PLC0415
        CCEEmbedding,
        DHEEmbedding,
        FullEmbedding,
        HashedEmbedding,
        HashEmbedding,
        MixedDimensionEmbedding,
        ProjectedEmbedding,
        QuotientRemainderEmbedding,
        ROBEEmbedding,
        TTEmbedding,
    )

    return {
        "full": lambda: FullEmbedding(50, 8, name="full"),
        "projected": lambda: ProjectedEmbedding(50, 12, 8, use_bias=True, name="projected"),
        "hashed": lambda: HashedEmbedding(50, 13, 8, seed=3, name="hashed"),
        "qr_multiply": lambda: QuotientRemainderEmbedding(50, 8, num_buckets=8, name="qr_multiply"),
        "qr_concat": lambda: QuotientRemainderEmbedding(
            50, 8, num_buckets=7, combiner="concat", name="qr_concat"
        ),
        "mixed_dimension": lambda: MixedDimensionEmbedding(
            [10, 15, 25], [8, 4, 2], 8, name="mixed_dimension"
        ),
        "mixed_dimension_pad": lambda: MixedDimensionEmbedding(
            [10, 15, 25], [8, 4, 2], 8, projection="pad", name="mixed_dimension_pad"
        ),
        "hash_embedding": lambda: HashEmbedding(
            50, 8, num_buckets=9, importance_rows=20, seed=2, name="hash_embedding"
        ),
        "dhe": lambda: DHEEmbedding(
            50, 8, num_hashes=6, hidden_dim=5, distribution="gaussian", batch_norm=True, name="dhe"
        ),
        "cce": lambda: CCEEmbedding(50, 8, num_chunks=2, num_clusters=5, seed=4, name="cce"),
        "robe": lambda: ROBEEmbedding(50, 8, array_size=37, block_size=3, seed=6, name="robe"),
        "tt_rec": lambda: TTEmbedding(50, 8, tt_rank=3, name="tt_rec"),
    }


def every_layer_model() -> Any:
    import keras  # noqa: PLC0415

    ids = keras.Input(shape=(), dtype="int32", name="ids")
    outputs = {kind: factory()(ids) for kind, factory in layer_factories().items()}
    return keras.Model(ids, outputs, name="every_layer")


def fixed_weights(model: Any) -> list[np.ndarray]:
    """Seeded numpy draws for the float weights; integer weights (hash state) as built."""
    rng = np.random.default_rng(2024)
    weights = []
    for value in model.get_weights():
        if np.issubdtype(value.dtype, np.floating):
            # Positive variances for batch norm; any values elsewhere.
            draw = (
                rng.uniform(0.5, 1.5, value.shape)
                if value.ndim == 1
                else rng.normal(0, 0.5, value.shape)
            )
            weights.append(draw.astype(value.dtype))
        else:
            weights.append(value)
    return weights


def outputs_of(model: Any, inputs: Any) -> dict[str, np.ndarray]:
    import keras  # noqa: PLC0415

    result = model(inputs)
    if not isinstance(result, dict):
        result = {"rating": result}
    return {
        kind: keras.ops.convert_to_numpy(value).astype("float64") for kind, value in result.items()
    }


def string_id_model() -> Any:
    import keras  # noqa: PLC0415

    from memory_efficient_embeddings.embeddings import (  # noqa: PLC0415
        build_rating_model,
        with_string_ids,
    )

    keras.utils.set_random_seed(0)
    inner = build_rating_model(
        len(USERS),
        len(MOVIES),
        {"type": "quotient_remainder", "num_buckets": 4},
        {"type": "mixed_dimension", "block_sizes": [3, 6], "block_dims": [4, 2]},
        4,
        use_biases=True,
    )
    inner.set_weights(fixed_weights(inner))
    return with_string_ids(inner, USERS, MOVIES)


def quantized(model: Any, mode: str) -> Any:
    import keras  # noqa: PLC0415

    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    config = keras.quantizers.Int4QuantizationConfig(block_size=-1) if mode == "int4" else None
    copy.quantize(mode, config=config)
    return copy


def build(directory: Path) -> None:
    import keras  # noqa: PLC0415

    from memory_efficient_embeddings.embeddings import fold_projected  # noqa: PLC0415

    model = every_layer_model()
    weights = fixed_weights(model)
    model.set_weights(weights)
    models = {
        "float": model,
        "folded": fold_projected(model),
        "int8": quantized(model, "int8"),
        "int4": quantized(model, "int4"),
        "string_ids": string_id_model(),
    }
    arrays = {f"weight:{v.path}": keras.ops.convert_to_numpy(v.value) for v in model.weights}
    for name, built in models.items():
        inputs = STRING_IDS if name == "string_ids" else IDS
        for kind, value in outputs_of(built, inputs).items():
            arrays[f"{name}/{kind}"] = value
        built.save(directory / f"{name}.keras")
    arrays["backend"] = np.array(keras.backend.backend())
    np.savez(directory / "outputs.npz", **arrays)


def load(directory: Path, other: Path) -> None:
    import keras  # noqa: PLC0415

    import memory_efficient_embeddings.embeddings  # noqa: F401, PLC0415 - registers the layers

    arrays: dict[str, np.ndarray] = {}
    for name in MODELS:
        reloaded = keras.saving.load_model(other / f"{name}.keras", safe_mode=True)
        inputs = STRING_IDS if name == "string_ids" else IDS
        for kind, value in outputs_of(reloaded, inputs).items():
            arrays[f"{name}/{kind}"] = value
    arrays["backend"] = np.array(keras.backend.backend())
    np.savez(directory / "loaded.npz", **arrays)


def main(argv: list[str]) -> None:
    # Keras' Layer.__delattr__ runs gc.collect() for every float table quantize() drops: seconds
    # each in a process holding TensorFlow, and nothing to collect in this short-lived one.
    gc.collect = lambda *args: 0
    import warnings  # noqa: PLC0415

    warnings.filterwarnings("ignore")  # layers that cannot be quantized say so
    if argv[0] == "build":
        build(Path(argv[1]))
        if len(argv) > 2:
            load(Path(argv[1]), Path(argv[2]))
    elif argv[0] == "load":
        load(Path(argv[1]), Path(argv[2]))
    else:
        raise SystemExit(f"unknown mode {argv[0]!r}: build DIR | load DIR OTHER_DIR")


if __name__ == "__main__":
    main(sys.argv[1:])
