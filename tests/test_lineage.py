"""Lineage records: compatible artifacts combine, artifacts of different data are refused by name."""

from __future__ import annotations

import pytest
from kedro.pipeline import node

from memory_efficient_embeddings.hooks import ClearErrorHooks, NodeError
from memory_efficient_embeddings.lineage import (
    Lineage,
    LineageMismatchError,
    combine,
    data_component,
    fingerprint,
    read_record,
    sidecar_path,
    write_json_atomically,
)

ML100K = {"source": "movielens", "dataset": "ml-100k", "md5": "0e33842e", "num_ratings": 100000}
SYNTHETIC = {"source": "synthetic", "shaped_like": "ml-1m", "seed": 7, "num_ratings": 12000}
SPLIT = {"train_fraction": 0.85, "seed": 42}


def test_artifacts_of_one_data_combine_into_the_union_of_their_components():
    ratings = Lineage({"data": ML100K, "split": SPLIT})
    vocabulary = Lineage({"data": ML100K, "split": SPLIT, "vocabulary": {"source": "train"}})
    combined = combine({"train_ratings": ratings, "user_vocabulary": vocabulary}, "node", "")
    assert combined == {"data": ML100K, "split": SPLIT, "vocabulary": {"source": "train"}}


def test_artifacts_of_different_data_are_refused_naming_each_and_its_data():
    model = Lineage({"data": ML100K, "split": SPLIT}, "version 2026-01-01T00.00.00.000Z")
    ratings = Lineage({"data": SYNTHETIC, "split": SPLIT}, "version 2026-01-02T00.00.00.000Z")
    with pytest.raises(LineageMismatchError) as caught:
        combine({"baseline.model": model, "eval_ratings": ratings}, "Node `evaluate`", "Re-run X.")
    message = str(caught.value)
    assert message.startswith("Node `evaluate` would combine artifacts derived from different data")
    assert "baseline.model (version 2026-01-01T00.00.00.000Z): data: MovieLens ml-100k" in message
    assert "eval_ratings (version 2026-01-02T00.00.00.000Z): data: synthetic" in message
    assert message.endswith("Re-run X.")


def test_a_different_split_of_the_same_data_is_refused_too():
    other_split = {"train_fraction": 0.5, "seed": 42}
    with pytest.raises(LineageMismatchError, match="different split"):
        combine(
            {
                "a": Lineage({"data": ML100K, "split": SPLIT}),
                "b": Lineage({"data": ML100K, "split": other_split}),
            },
            "Node `n`",
            "",
        )


def test_fingerprints_ignore_key_order_and_prose():
    assert fingerprint({"a": 1, "b": [1, 2]}) == fingerprint({"b": [1, 2], "a": 1})
    assert fingerprint({"a": 1}) != fingerprint({"a": 2})
    described = {**SYNTHETIC, "description": "synthetic, 12,000 ratings"}
    assert data_component(described) == SYNTHETIC


def test_a_record_sits_beside_its_artifact_and_round_trips(tmp_path):
    artifact = tmp_path / "eval_ratings.csv" / "2026-01-01T00.00.00.000Z" / "eval_ratings.csv"
    lineage = Lineage({"data": SYNTHETIC, "split": SPLIT})
    write_json_atomically(sidecar_path(artifact), lineage.as_record())
    assert sidecar_path(artifact).name == "eval_ratings.csv.lineage.json"
    record = read_record(sidecar_path(artifact))
    assert record["data"] == "synthetic, shaped like ml-1m, seed 7, 12,000 ratings"
    assert Lineage.from_record(record).fingerprint == lineage.fingerprint
    assert [p.name for p in artifact.parent.iterdir()] == ["eval_ratings.csv.lineage.json"]


def _needs_key(metrics: dict) -> float:
    return metrics["val_loss"]


def test_a_bare_key_error_from_a_node_becomes_an_error_naming_the_node_and_line():
    failing = node(_needs_key, "metrics", "loss", name="evaluate")
    try:
        failing.run({"metrics": {}})
    except KeyError as error:
        with pytest.raises(NodeError) as caught:
            ClearErrorHooks().on_node_error(error, failing, {"metrics": {}})
    message = str(caught.value)
    assert message.startswith("Node `evaluate` failed with KeyError: 'val_loss' at ")
    assert "test_lineage.py" in message and "Its inputs: metrics" in message
    assert isinstance(caught.value.__cause__, KeyError)


def test_other_node_errors_pass_through_unchanged():
    assert ClearErrorHooks().on_node_error(ValueError("clear"), None, {}) is None
