"""The nodes read the validated parameters with the schema's defaults filled in."""

from __future__ import annotations

import ast
import copy
import typing
from pathlib import Path

import pytest
from kedro.io import DataCatalog
from pydantic import BaseModel

from memory_efficient_embeddings.hooks import ParameterValidationHooks
from memory_efficient_embeddings.parameters import (
    ProjectParameters,
    validate_parameters,
    with_defaults,
)
from tests.test_parameters import _parameters


def _filled(parameters: dict) -> dict:
    return with_defaults(validate_parameters(parameters), parameters)


@pytest.mark.parametrize("env", ["local", "recipe", "frontier_1m"])
def test_the_shipped_parameters_already_set_every_default(env):
    parameters = _parameters(env)
    assert _filled(parameters) == parameters


def _partial() -> dict:
    parameters = copy.deepcopy(_parameters("local"))
    model = parameters["baseline"]["model"]
    for key in ("use_biases", "output", "embedding_l2"):
        del model[key]
    model["user_embedding"]["embeddings_initializer"] = "uniform"  # an extra key of a spec
    model["seed"] = 7
    training = parameters["training"]
    for key in ("early_stopping", "verbose", "validation_batch_size", "deterministic"):
        del training[key]
    del parameters["vocabulary"]["source"]
    del parameters["sweep"]["training"]
    parameters["sweep"]["executor"] = {"workers": 3}
    parameters["data"]["download_timeout_s"] = 30  # an int in a float field stays an int
    parameters["data"]["path"] = None
    return parameters


def test_defaults_fill_what_is_left_out_and_keep_what_is_given():
    parameters = _partial()
    filled = _filled(parameters)
    model = filled["baseline"]["model"]
    assert model["use_biases"] is True and model["embedding_l2"] == 0.0
    assert model["output"] == {"activation": "sigmoid", "min_rating": 0.0, "max_rating": 5.0}
    assert model["seed"] == 7 and model["user_embedding"]["embeddings_initializer"] == "uniform"
    assert "num_buckets" not in model["user_embedding"]  # a default of None is not added
    training = filled["training"]
    assert training["early_stopping"] == {
        "enabled": False,
        "monitor": "val_rmse",
        "patience": 1,
        "min_delta": 0.0,
        "restore_best_weights": True,
    }
    assert (training["verbose"], training["validation_batch_size"]) == ("auto", 8192)
    assert training["deterministic"] is True and "adam" not in training
    assert training["lazy_adam"] == {"sparse_min_size": 16384}
    assert filled["vocabulary"] == {"source": "train"}
    assert filled["sweep"]["training"] == {}  # overrides: nothing filled
    assert filled["sweep"]["executor"] == {"workers": 3, "type": "in_process", "progress": True}
    assert filled["data"]["download_timeout_s"] == 30
    assert type(filled["data"]["download_timeout_s"]) is int
    assert filled["data"]["path"] is None
    assert filled["data"]["synthetic"] == parameters["data"]["synthetic"]


def test_sweep_training_overrides_get_no_defaults():
    parameters = _partial()
    parameters["sweep"]["training"] = {"epochs": 2, "early_stopping": {"patience": 5}}
    assert _filled(parameters)["sweep"]["training"] == {
        "epochs": 2,
        "early_stopping": {"patience": 5},
    }


def _catalog(parameters: dict) -> DataCatalog:
    """The parameter entries Kedro's context adds to the catalog."""
    catalog = DataCatalog()
    catalog["parameters"] = parameters

    def add(name: str, value) -> None:
        catalog[f"params:{name}"] = value
        if isinstance(value, dict):
            for key, item in value.items():
                add(f"{name}.{key}", item)

    for key, value in parameters.items():
        add(key, value)
    return catalog


def test_the_hook_hands_the_nodes_the_filled_parameters():
    parameters = _partial()
    catalog = _catalog(parameters)
    ParameterValidationHooks().before_pipeline_run(catalog=catalog)
    filled = _filled(parameters)
    assert catalog.load("parameters") == filled
    assert catalog.load("params:baseline.model") == filled["baseline"]["model"]
    assert catalog.load("params:baseline.model.use_biases") is True  # a key added by a default
    assert catalog.load("params:baseline.model.output.activation") == "sigmoid"
    assert catalog.load("params:baseline.model.seed") == 7  # a given value wins
    assert catalog.load("params:sweep.training") == {}
    curve = parameters["data"]["synthetic"]["popularity_curve"]
    assert catalog.load("params:data.synthetic.popularity_curve") == curve


def _schema_defaults(model: type[BaseModel], found: dict[str, list]) -> dict[str, list]:
    """Every key's non-None defaults in the schema (a name may have several: `source`)."""
    for name, field in model.model_fields.items():
        if not field.is_required() and field.default is not None:
            known = found.setdefault(name, [])
            known += [] if field.default in known else [field.default]
        for candidate in (field.annotation, *typing.get_args(field.annotation)):
            if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                _schema_defaults(candidate, found)
    return found


def test_every_fallback_left_in_the_code_equals_the_schemas_default():
    """`.get("key", default)` stays only in functions also called without the schema (library
    code, tests, benchmarks): its default must be the schema's."""
    defaults = _schema_defaults(ProjectParameters, {})
    source = Path(__file__).resolve().parents[1] / "src" / "memory_efficient_embeddings"
    drift = []
    for path in sorted(source.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "get"
                and len(node.args) == 2
                and all(isinstance(arg, ast.Constant) for arg in node.args)
            ):
                continue
            key, value = (arg.value for arg in node.args)
            if key in defaults and value not in defaults[key]:
                where = f"{path.relative_to(source)}:{node.lineno}"
                drift.append(
                    f"{where}: {key} falls back to {value!r}, the schema to {defaults[key]}"
                )
    assert not drift, "\n".join(drift)
