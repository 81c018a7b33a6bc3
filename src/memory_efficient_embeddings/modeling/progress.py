"""Training progress a reader can follow: a progress bar on a terminal, else one named log line
per epoch (two models trained by ThreadRunner do not interleave into an anonymous jumble)."""

from __future__ import annotations

import logging
import sys
from typing import Any

import keras

logger = logging.getLogger(__name__)

# `training.verbose`: "auto" picks by where the output goes; 0, 1 and 2 are Keras' own levels.
AUTO = "auto"


class EpochLog(keras.callbacks.Callback):
    """Log one line per epoch, prefixed with the model's name: `baseline epoch 3/10: loss 0.81 ...`."""

    def __init__(self, model_name: str, epochs: int) -> None:
        super().__init__()
        self.model_name = model_name
        self.epochs = epochs

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        metrics = ", ".join(f"{name} {value:.4f}" for name, value in sorted((logs or {}).items()))
        logger.info("%s epoch %d/%d: %s", self.model_name, epoch + 1, self.epochs, metrics)


def fit_progress(
    verbose: int | str, model_name: str, epochs: int, stream: Any = None
) -> tuple[int, list[keras.callbacks.Callback]]:
    """Keras `verbose` and callbacks for `training.verbose`.

    "auto": Keras' progress bar (1) when stdout is a terminal, else no Keras output (0) and one
    named log line per epoch. 0, 1, 2: Keras' own output, unchanged, no extra lines.
    """
    if verbose != AUTO:
        if verbose not in (0, 1, 2):
            raise ValueError(f"training.verbose is {verbose!r}; use auto, 0, 1 or 2.")
        return int(verbose), []
    terminal = (stream or sys.stdout).isatty()
    return (1, []) if terminal else (0, [EpochLog(model_name, epochs)])
