"""The lock around work on per-process global state (kept free of heavy imports)."""

import threading

# TensorFlow's seeds and op determinism, Keras' global state and pyplot's figures are per process:
# threads that build, train, save models or draw take this lock one at a time (see hooks.py).
PROCESS_STATE_LOCK = threading.RLock()
