"""Post-training quantization of a trained model: a copy, sized and scored by bytes worked out by
hand, without Keras' full garbage collection per dropped table."""

from __future__ import annotations

import gc

import numpy as np
import pytest

from memory_efficient_embeddings.embeddings import build_rating_model, serving_bytes
from memory_efficient_embeddings.modeling.training import quantized

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.mark.both_backends
@pytest.mark.parametrize(("mode", "table_row_bytes"), [("int8", 8 + 4), ("int4", 4 + 4)])
def test_a_quantized_copy_by_hand_and_without_a_collection_per_table(
    monkeypatch: pytest.MonkeyPatch, mode: str, table_row_bytes: int
) -> None:
    model = build_rating_model(30, 20, {"type": "full"}, {"type": "full"}, 8, use_biases=True)
    before = [np.array(w) for w in model.get_weights()]
    collections = []
    monkeypatch.setattr(gc, "collect", lambda *args: collections.append(args) or 0)
    copy = quantized(model, mode)
    assert collections == []  # Keras would run one per dropped float table (seconds each)
    # 50 ids: a table row (8 values at 1 byte or half a byte, one float32 scale) and a float32 bias.
    assert serving_bytes(copy) == 50 * table_row_bytes + 50 * 4
    assert serving_bytes(model) == 50 * (8 + 1) * 4  # the original is left as it was
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights(), strict=True))
