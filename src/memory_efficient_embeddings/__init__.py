"""Memory-efficient embeddings for recommendation systems, as a Kedro project."""

import warnings

from memory_efficient_embeddings.keras_backend import choose_keras_backend
from memory_efficient_embeddings.tensorflow_logs import quiet_tensorflow_startup

# Before anything imports Keras: the project's backend unless KERAS_BACKEND says otherwise.
choose_keras_backend()

# TensorFlow's C++ lines (oneDNN, CUDA probing, "E0000 ... cuInit") read as errors and drown the
# pipeline's own logs. TF_CPP_MIN_LOG_LEVEL=0 shows them again.
quiet_tensorflow_startup()

# Kedro 1.7 still runs `--pipeline` exactly like `--pipelines`; its deprecation notice is the one
# warning of a plain run and the project is pinned to 1.7, so it is not shown.
warnings.filterwarnings("ignore", message=r"Option '--pipeline' is deprecated")

__version__ = "0.1.0"
