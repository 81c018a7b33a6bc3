"""The sweep grid's merge of parameter dicts (OmegaConf): what merges, what replaces."""

from __future__ import annotations

import copy

from memory_efficient_embeddings.modeling.grid import deep_merge


def test_deep_merge_merges_dicts_and_replaces_every_other_value() -> None:
    base = {
        "name": "base",
        "seed": 42,
        "blocks": {"num_blocks": 3, "dims": [64, 16, 4], "rule": {"alpha": 0.4, "min_dim": 1}},
        "boundaries": [10, 100],
        "optimizer": {"lazy_adam": {"sparse_min_size": 16384}},
        "unset": None,
    }
    overrides = {
        "name": "point",
        "blocks": {"dims": [8], "rule": {"min_dim": None, "max_dim": 64}},
        "boundaries": [5],
        "optimizer": {"lazy_adam": None},
        "unset": {"now": "a dict"},
        "new": None,
    }
    before = copy.deepcopy(base)
    assert deep_merge(base, overrides) == {
        "name": "point",
        "seed": 42,
        "blocks": {
            "num_blocks": 3,
            "dims": [8],  # a list replaces the whole list
            "rule": {"alpha": 0.4, "min_dim": None, "max_dim": 64},  # None replaces, and stays
        },
        "boundaries": [5],
        "optimizer": {"lazy_adam": None},  # None replaces a dict
        "unset": {"now": "a dict"},  # a dict replaces None
        "new": None,
    }
    assert base == before  # the inputs are left as they were
    assert deep_merge(base, {}) == base and deep_merge({}, overrides) == overrides
