"""The parameter schema: every run's parameters are checked against it before any node runs.

Unknown keys are refused with a did-you-mean, types and ranges are checked, and every message
names the key and what it accepts. Three places stay open to extension, because their keys belong
to the code they configure: the keys of an embedding spec beyond `type` (each layer type takes its
own arguments), `data.synthetic` (the generator checks its own keys) and the sweep's technique grid.
A new parameter section is one field of `ProjectParameters`.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

PositiveInt = Annotated[int, Field(ge=1)]
NonNegativeFloat = Annotated[float, Field(ge=0)]


def _open_fraction(value: float) -> float:
    # 0 or 1 puts every row on one side: nothing to train on, or nothing to evaluate.
    if not 0 < value < 1:
        raise ValueError(f"is {value!r}; allowed values: a fraction strictly between 0 and 1")
    return value


OpenFraction = Annotated[float, AfterValidator(_open_fraction)]

VOCABULARY_SOURCES = ("train", "all")
DATA_SOURCES = ("auto", "movielens", "synthetic")


class ParameterError(ValueError):
    """The run's parameters do not fit the schema; the message lists every problem."""


def embedding_types() -> tuple[str, ...]:
    """The layer types an embedding spec may name (the one registry: `EMBEDDING_TYPES`)."""
    from memory_efficient_embeddings.embeddings.models import EMBEDDING_TYPES  # noqa: PLC0415

    return tuple(EMBEDDING_TYPES)


def optimizer_names() -> tuple[str, ...]:
    """The optimizers `training.optimizer` may name (the one registry: modeling's `OPTIMIZERS`)."""
    from memory_efficient_embeddings.modeling.training import OPTIMIZERS  # noqa: PLC0415

    return tuple(OPTIMIZERS)


def release_names() -> tuple[str, ...]:
    """The MovieLens releases `data.dataset` may name."""
    from memory_efficient_embeddings.movielens import RELEASES  # noqa: PLC0415

    return tuple(RELEASES)


def _one_of(value: Any, allowed: tuple[str, ...]) -> Any:
    if value not in allowed:
        raise ValueError(f"is {value!r}; allowed values: {', '.join(allowed)}")
    return value


class Strict(BaseModel):
    """A section whose unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", validate_default=False)


class Open(BaseModel):
    """A section whose extra keys belong to the code it configures and are checked there."""

    model_config = ConfigDict(extra="allow", validate_default=False)


class SyntheticParameters(Open):
    seed: int = 42
    num_ratings: PositiveInt | None = None
    num_users: PositiveInt | None = None
    num_movies: PositiveInt | None = None
    min_ratings_per_user: PositiveInt | None = None


class DataParameters(Strict):
    dataset: str = "ml-1m"
    source: Literal["auto", "movielens", "synthetic"] = "auto"
    path: str | None = None
    raw_dir: str = "data/01_raw"
    verify_checksum: bool = True
    on_bad_lines: Literal["error", "skip"] = "error"
    download_timeout_s: Annotated[float, Field(gt=0)] = 60
    synthetic: SyntheticParameters = SyntheticParameters()

    @field_validator("dataset")
    @classmethod
    def _known_release(cls, value: str) -> str:
        return _one_of(value, release_names())


class SplitParameters(Strict):
    train_fraction: OpenFraction
    seed: int


class VocabularyParameters(Strict):
    source: Literal["train", "all"] = "train"


class EarlyStoppingParameters(Strict):
    enabled: bool = False
    monitor: Literal["val_loss", "val_mae", "loss", "mae"] = "val_loss"
    patience: Annotated[int, Field(ge=0)] = 1
    min_delta: NonNegativeFloat = 0.0
    restore_best_weights: bool = True


class TrainingParameters(Strict):
    optimizer: str
    learning_rate: Annotated[float, Field(gt=0)]
    batch_size: PositiveInt
    epochs: PositiveInt
    steps_per_execution: PositiveInt = 1
    validation_batch_size: PositiveInt = 8192
    early_stopping: EarlyStoppingParameters = EarlyStoppingParameters()
    cce_recluster_epochs: list[PositiveInt] = []
    seed: int = 42
    deterministic: bool = True
    verbose: Literal[0, 1, 2, "auto"] = "auto"
    # Options of one optimizer live under its own name, e.g. `lazy_adam: {sparse_min_size: ...}`.
    lazy_adam: dict[str, Any] | None = None
    adam: dict[str, Any] | None = None
    sgd: dict[str, Any] | None = None

    @field_validator("optimizer")
    @classmethod
    def _known_optimizer(cls, value: str) -> str:
        return _one_of(value, optimizer_names())


class TrainingOverrides(TrainingParameters):
    """`sweep.training`: any subset of `training`."""

    optimizer: str | None = None
    learning_rate: Annotated[float, Field(gt=0)] | None = None
    batch_size: PositiveInt | None = None
    epochs: PositiveInt | None = None


class BlockParameters(Open):
    num_blocks: PositiveInt | None = None
    boundaries: list[PositiveInt] | None = None
    dims: list[PositiveInt] | None = None
    alpha: NonNegativeFloat | None = None
    base_dim: PositiveInt | None = None
    min_dim: PositiveInt | None = None
    max_dim: PositiveInt | None = None


class EmbeddingSpec(Open):
    """One side's embedding: `type` is checked here, the other keys by the layer it builds."""

    type: str
    embedding_dim: PositiveInt | None = None
    num_buckets: PositiveInt | None = None
    ids_per_bucket: PositiveInt | None = None
    blocks: BlockParameters | None = None

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        return _one_of(value, embedding_types())


class OutputParameters(Strict):
    activation: Literal["sigmoid", "linear"] = "sigmoid"
    min_rating: float = 0.0
    max_rating: float = 5.0

    @model_validator(mode="after")
    def _ordered(self) -> OutputParameters:
        if self.max_rating <= self.min_rating:
            raise ValueError(
                f"max_rating ({self.max_rating}) must be above min_rating ({self.min_rating})"
            )
        return self


class ModelSpec(Strict):
    name: str
    seed: int = 42
    # null: the widest top-block dim of the mixed-dimension sides (see modeling/specs.py)
    embedding_dim: PositiveInt | None
    use_biases: bool = True
    embedding_l2: NonNegativeFloat = 0.0
    output: OutputParameters = OutputParameters()
    user_embedding: EmbeddingSpec
    movie_embedding: EmbeddingSpec


class ModelSection(Strict):
    model: ModelSpec


class EvaluationParameters(Strict):
    popularity_blocks: PositiveInt = 3


class ReportingParameters(Strict):
    reference: str = "baseline"


class SweepTarget(Strict):
    min_compression: Annotated[float, Field(gt=0)]
    max_rmse_gap: NonNegativeFloat


class SweepParameters(Open):
    """The sweep's own keys; its techniques and grids are checked when the plan is made."""

    seeds: Annotated[list[int], Field(min_length=1)]
    reference: str
    quantize: Literal["int8"] | None = None
    target: SweepTarget
    training: TrainingOverrides = TrainingOverrides()
    techniques: dict[str, dict[str, Any]]
    recipe: dict[str, dict[str, Any]] | None = None


class ProjectParameters(Strict):
    """Every top-level parameter section of the project."""

    data: DataParameters | None = None
    split: SplitParameters | None = None
    vocabulary: VocabularyParameters | None = None
    training: TrainingParameters | None = None
    evaluation: EvaluationParameters | None = None
    baseline: ModelSection | None = None
    memory_efficient: ModelSection | None = None
    reporting: ReportingParameters | None = None
    sweep: SweepParameters | None = None


def _model_at(path: tuple[Any, ...]) -> type[BaseModel] | None:
    """The schema class of the section at `path` (for listing its allowed keys)."""
    model: Any = ProjectParameters
    for key in path:
        field = model.model_fields.get(key) if isinstance(key, str) else None
        if field is None:
            return None
        candidates = [field.annotation, *getattr(field.annotation, "__args__", ())]
        model = next(
            (c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None
        )
        if model is None:
            return None
    return model


def _describe(error: Mapping[str, Any]) -> str:
    location = tuple(error["loc"])
    key = ".".join(str(part) for part in location)
    if error["type"] == "extra_forbidden":
        section = _model_at(location[:-1])
        allowed = sorted(section.model_fields) if section else []
        close = difflib.get_close_matches(str(location[-1]), allowed, n=1)
        hint = f" Did you mean `{'.'.join([*map(str, location[:-1]), close[0]])}`?" if close else ""
        where = ".".join(map(str, location[:-1])) or "the top level"
        return (
            f"`{key}` is not a known parameter.{hint} Allowed under {where}: {', '.join(allowed)}."
        )
    if error["type"] == "missing":
        return f"`{key}` is missing."
    message = str(error["msg"]).removeprefix("Value error, ")
    if message.startswith("is "):  # our own validators already say what the value is
        return f"`{key}` {message}."
    return f"`{key}` is {error.get('input')!r}: {message}."


def validate_parameters(parameters: Mapping[str, Any]) -> ProjectParameters:
    """Check all parameters against the schema; raise ParameterError listing every problem."""
    try:
        return ProjectParameters.model_validate(dict(parameters))
    except ValidationError as exc:
        problems = [_describe(error) for error in exc.errors()]
        raise ParameterError(
            "Invalid parameters (conf/base/parameters*.yml, conf/<env>/, or --params):\n  - "
            + "\n  - ".join(problems)
        ) from None
