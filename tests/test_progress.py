"""Training progress: a bar on a terminal, one named line per epoch elsewhere."""

from __future__ import annotations

import io
import logging

import keras
import numpy as np
import pytest

from memory_efficient_embeddings.modeling.progress import EpochLog, fit_progress


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_auto_gives_a_bar_on_a_terminal_and_named_lines_elsewhere() -> None:
    assert fit_progress("auto", "baseline", 3, stream=_Terminal()) == (1, [])
    verbose, callbacks = fit_progress("auto", "baseline", 3, stream=io.StringIO())
    assert verbose == 0 and isinstance(callbacks[0], EpochLog)
    assert fit_progress(2, "baseline", 3) == (2, [])
    with pytest.raises(ValueError, match="training.verbose is 'loud'"):
        fit_progress("loud", "baseline", 3)


def test_each_epoch_logs_one_line_with_the_model_name(caplog: pytest.LogCaptureFixture) -> None:
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    caplog.set_level(logging.INFO, logger="memory_efficient_embeddings.modeling.progress")
    x = np.ones((4, 1), dtype="float32")
    model.fit(x, x, epochs=2, verbose=0, callbacks=[EpochLog("memory_efficient", 2)])
    lines = [r.getMessage() for r in caplog.records]
    assert [line.split(":")[0] for line in lines] == [
        "memory_efficient epoch 1/2",
        "memory_efficient epoch 2/2",
    ]
    assert "loss " in lines[0]
