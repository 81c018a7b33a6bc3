"""Memory-efficient embeddings for recommendation systems, as a Kedro project."""

import os

# TensorFlow's C++ INFO lines (oneDNN, CUDA probing) drown the pipeline's own logs.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")

__version__ = "0.1.0"
