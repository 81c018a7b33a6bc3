"""The parameter schema: every run's parameters are checked against it before any node runs, and
the nodes read them with its defaults filled in (`with_defaults`). Shared code that also runs
without the schema (tests, benchmarks) falls back to the same defaults.

Unknown keys are refused with a did-you-mean, types (strictly) and ranges are checked, and every
message names the full dotted key and what it accepts. An embedding spec is checked against its
layer's constructor (its arguments, their annotations and which have no default), optimizer
options against the optimizer's arguments and their ranges, and the sweep's grid keys against the
technique's model, then every grid point as a model. `data.synthetic` stays open (the generator checks its own
keys). A new parameter section is one field of `ProjectParameters`.
"""

from __future__ import annotations

import copy
import difflib
import functools
import inspect
import types
import typing
from collections.abc import Mapping
from pathlib import PurePath
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from memory_efficient_embeddings.ingest.table import DEFAULT_COLUMNS
from memory_efficient_embeddings.ingest.table import SUFFIXES as TABLE_SUFFIXES
from memory_efficient_embeddings.modeling.grid import (
    BUDGET_KNOBS,
    EMBEDDING_SIDES,
    RECIPE,
    plan_sweep,
)
from memory_efficient_embeddings.modeling.layouts import MODEL_ONLY_KEYS, layout_candidates

PositiveInt = Annotated[int, Field(ge=1)]
NonNegativeFloat = Annotated[float, Field(ge=0)]


def _open_fraction(value: float) -> float:
    # 0 or 1 puts every row on one side: nothing to train on, or nothing to evaluate.
    if not 0 < value < 1:
        raise ValueError(f"is {value!r}; allowed values: a fraction strictly between 0 and 1")
    return value


OpenFraction = Annotated[float, AfterValidator(_open_fraction)]


def _held_out_fraction(value: float) -> float:
    # 1 would leave nothing to train on; 0 means no validation split (the recipe's behaviour).
    if not 0 <= value < 1:
        raise ValueError(f"is {value!r}; allowed values: 0 (none) up to, not including, 1")
    return value


HeldOutFraction = Annotated[float, AfterValidator(_held_out_fraction)]

VOCABULARY_SOURCES = ("train", "all")
DATA_SOURCES = ("auto", "movielens", "synthetic", "ciao", "table")


class ParameterError(ValueError):
    """The run's parameters do not fit the schema; the message lists every problem."""


def embedding_types() -> tuple[str, ...]:
    """The layer types an embedding spec may name (the one registry: `EMBEDDING_TYPES`)."""
    from memory_efficient_embeddings.embeddings.models import EMBEDDING_TYPES  # noqa: PLC0415

    return tuple(EMBEDDING_TYPES)


def bias_layouts() -> tuple[str, ...]:
    """Where `model.bias_layout` may put the per-id biases (the one list: `BIAS_LAYOUTS`)."""
    from memory_efficient_embeddings.embeddings.models import BIAS_LAYOUTS  # noqa: PLC0415

    return tuple(BIAS_LAYOUTS)


def optimizer_names() -> tuple[str, ...]:
    """The optimizers `training.optimizer` may name (the one registry: `OPTIMIZERS`)."""
    from memory_efficient_embeddings.embeddings.optimizers import OPTIMIZERS  # noqa: PLC0415

    return tuple(OPTIMIZERS)


def release_names() -> tuple[str, ...]:
    """The MovieLens releases `data.dataset` may name."""
    from memory_efficient_embeddings.ingest import RELEASES  # noqa: PLC0415

    return tuple(RELEASES)


def _one_of(value: Any, allowed: tuple[str, ...]) -> Any:
    if value not in allowed:
        raise ValueError(f"is {value!r}; allowed values: {', '.join(allowed)}")
    return value


def _no_bool(value: Any) -> Any:
    # A Literal of ints takes `true` as 1 even in strict mode.
    if isinstance(value, bool):
        raise ValueError(f"is {value!r}; allowed values: 0, 1, 2 or 'auto'")
    return value


class Strict(BaseModel):
    """A section whose unknown keys are errors; types are strict (`true` is no batch size)."""

    model_config = ConfigDict(extra="forbid", validate_default=False, strict=True)
    # False for a section of overrides: a key it leaves out overrides nothing (see with_defaults).
    fills_defaults: ClassVar[bool] = True


class Open(BaseModel):
    """A section whose extra keys are checked apart (embedding specs: by their layer type)."""

    model_config = ConfigDict(extra="allow", validate_default=False, strict=True)
    fills_defaults: ClassVar[bool] = True


class SyntheticParameters(Open):
    seed: int = 42
    num_ratings: PositiveInt | None = None
    num_users: PositiveInt | None = None
    num_movies: PositiveInt | None = None
    min_ratings_per_user: PositiveInt | None = None


def _column_name(value: str) -> str:
    if not value.strip():
        raise ValueError(f"is {value!r}; allowed values: a column name of the table")
    return value


ColumnName = Annotated[str, AfterValidator(_column_name)]


class ColumnParameters(Strict):
    """`data.columns`: the table's user, item and rating columns (`data.source: table`)."""

    user: ColumnName = DEFAULT_COLUMNS["user"]
    item: ColumnName = DEFAULT_COLUMNS["item"]
    rating: ColumnName = DEFAULT_COLUMNS["rating"]


class DataParameters(Strict):
    dataset: str = "ml-1m"
    source: Literal["auto", "movielens", "synthetic", "ciao", "table"] = "auto"
    path: str | None = None
    columns: ColumnParameters = ColumnParameters()
    drop_zero_ratings: bool = True
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
    validation_fraction: HeldOutFraction
    seed: int


class VocabularyParameters(Strict):
    source: Literal["train", "all"] = "train"


class EarlyStoppingParameters(Strict):
    enabled: bool = False
    monitor: Literal["val_rmse", "val_loss", "val_mae", "rmse", "loss", "mae"] = "val_rmse"
    patience: Annotated[int, Field(ge=0)] = 1
    min_delta: NonNegativeFloat = 0.0
    restore_best_weights: bool = True


def _learning_rate(value: Any) -> Any:
    # Every optimizer here takes a step of about learning_rate per unit of (normalised) gradient:
    # above 1 a step outgrows the embeddings themselves (initialised within ±0.05) and training
    # diverges; the shipped rates are 1e-3 to 3e-3. A rate above 1 is a typo (say 3 for 3e-3).
    # Checked before the float conversion, so the message shows the value as written (3, not 3.0);
    # a value that is no number is left to the strict float check.
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if number and not 0 < value <= 1:
        raise ValueError(f"is {value!r}; allowed values: a rate above 0, at most 1.0")
    return value


LearningRate = Annotated[float, BeforeValidator(_learning_rate)]


class TrainingParameters(Strict):
    optimizer: str
    learning_rate: LearningRate
    batch_size: PositiveInt
    epochs: PositiveInt
    steps_per_execution: PositiveInt = 1
    validation_batch_size: PositiveInt = 8192
    early_stopping: EarlyStoppingParameters = EarlyStoppingParameters()
    cce_recluster_epochs: list[PositiveInt] = []
    seed: int = 42
    deterministic: bool = True
    verbose: Annotated[Literal[0, 1, 2, "auto"], BeforeValidator(_no_bool)] = "auto"
    # Options of one optimizer live under its own name, e.g. `lazy_adam: {sparse_min_size: ...}`.
    lazy_adam: dict[str, Any] | None = None
    adam: dict[str, Any] | None = None
    rowwise_adagrad: dict[str, Any] | None = None
    sgd: dict[str, Any] | None = None

    @field_validator("optimizer")
    @classmethod
    def _known_optimizer(cls, value: str) -> str:
        return _one_of(value, optimizer_names())


class TrainingOverrides(TrainingParameters):
    """`sweep.training`: any subset of `training`."""

    fills_defaults: ClassVar[bool] = False
    optimizer: str | None = None
    learning_rate: LearningRate | None = None
    batch_size: PositiveInt | None = None
    epochs: PositiveInt | None = None


def shared_storages() -> tuple[str, ...]:
    """How `blocks.tail.share` may share a block's rows (the layer's storages less `own`)."""
    from memory_efficient_embeddings.embeddings.layers import BLOCK_STORAGES  # noqa: PLC0415

    return tuple(kind for kind in BLOCK_STORAGES if kind != "own")


def shared_combiners() -> tuple[str, ...]:
    """How a quotient-remainder tail combines its two rows (the layer's one list)."""
    from memory_efficient_embeddings.embeddings.layers import SHARED_COMBINERS  # noqa: PLC0415

    return tuple(SHARED_COMBINERS)


class TailParameters(Strict):
    """How shared blocks store their rows: a hashed or quotient-remainder table per block."""

    share: str
    # hashed: k ids per row (n_b // k rows); quotient_remainder: n_b // k remainder rows and
    # about k quotient rows (null: sqrt(n_b) of each, the fewest rows with unique pairs)
    ids_per_bucket: PositiveInt | None = None
    combiner: str = "multiply"  # quotient_remainder only: multiply | add
    # zero: ids unseen in training get zeros (vector and in-embedding bias); tail: they read the
    # rarest shared block's row, a fallback trained on the rarest ids
    unknown_ids: Literal["zero", "tail"] = "zero"

    @field_validator("share")
    @classmethod
    def _known_share(cls, value: str) -> str:
        return _one_of(value, shared_storages())

    @field_validator("combiner")
    @classmethod
    def _known_combiner(cls, value: str) -> str:
        return _one_of(value, shared_combiners())

    @model_validator(mode="after")
    def _sized(self) -> TailParameters:
        if self.share == "hashed" and self.ids_per_bucket is None:
            raise ValueError(
                "is inconsistent: share: hashed needs ids_per_bucket (ids per shared row)"
            )
        return self


class BlockParameters(Strict):
    """A mixed-dimension side's popularity blocks and the rule for their dims."""

    num_blocks: PositiveInt | None = None
    boundaries: list[PositiveInt] | None = None
    dims: list[Annotated[int, Field(ge=0)]] | None = None
    alpha: NonNegativeFloat | None = None
    base_dim: PositiveInt | None = None
    budget: PositiveInt | None = None
    mean_dim: Annotated[float, Field(gt=0)] | None = None
    # 0: a rare block may get no vector dims (bias only, with bias_layout: in_embedding)
    min_dim: Annotated[int, Field(ge=0)] | None = None
    max_dim: PositiveInt | None = None
    power_of_two: bool | None = None
    # Shared blocks read a small hashed or quotient-remainder table (`tail`) instead of own rows:
    # those whose rule dim (the α rule's, before rounding, or the explicit dims) is below
    # share_below_dim, or those marked true in `shared` (one entry per block).
    share_below_dim: Annotated[float, Field(gt=0)] | None = None
    shared: list[bool] | None = None
    tail: TailParameters | None = None

    @model_validator(mode="after")
    def _consistent(self) -> BlockParameters:
        problems = []
        if self.boundaries is not None:
            if not self.boundaries:
                problems.append("boundaries is empty: give at least one block end, or num_blocks")
            elif any(b >= a for b, a in zip(self.boundaries, self.boundaries[1:], strict=False)):
                problems.append(f"boundaries {self.boundaries} must be strictly increasing")
        if self.boundaries is None and self.num_blocks is None:
            problems.append("set num_blocks (equal rating mass) or boundaries")
        if self.dims is None and self.alpha is None:
            problems.append(
                "set dims, or alpha (the α-power rule) with mean_dim, budget or base_dim"
            )
        if (
            self.alpha is not None
            and self.dims is None
            and (self.mean_dim is None and self.budget is None and self.base_dim is None)
        ):
            problems.append("alpha needs mean_dim, budget or base_dim to size the blocks")
        if self.max_dim is not None:
            for name in ("mean_dim", "min_dim", "base_dim"):
                value = getattr(self, name)
                if value is not None and value > self.max_dim:
                    problems.append(f"{name} ({value:g}) is above max_dim ({self.max_dim})")
        problems += self._sharing_problems()
        if problems:
            raise ValueError("is inconsistent: " + "; ".join(problems))
        return self

    def _sharing_problems(self) -> list[str]:
        chosen = [key for key in ("share_below_dim", "shared") if getattr(self, key) is not None]
        if len(chosen) == 2:
            return ["set share_below_dim or shared, not both"]
        if chosen and self.tail is None:
            return [f"{chosen[0]} needs tail ({{share: hashed | quotient_remainder, ...}})"]
        if self.tail is not None and not chosen:
            return ["tail applies to no block: set share_below_dim or shared"]
        if self.shared is not None and self.num_blocks is not None:
            if len(self.shared) != self.num_blocks:
                return [f"shared has {len(self.shared)} entries for {self.num_blocks} blocks"]
        return []


# `budget_dim: k` sizes a side at the weights of a uniform dim-k table of it (k * num_ids). The cap
# is far above any width this project trains (its reference tables are 64 wide, so k > 64 already
# buys no compression): a larger k is a typo, and 10**12 would ask for ~10**18 weights and fail,
# or exhaust memory, only when the layer is built.
MAX_BUDGET_DIM = 4096


def _budget_dim(value: int) -> int:
    if not 1 <= value <= MAX_BUDGET_DIM:
        raise ValueError(
            f"is {value!r}; allowed values: an int from 1 to {MAX_BUDGET_DIM} (the width of the "
            "uniform table whose weights the side may use)"
        )
    return value


class EmbeddingSpec(Open):
    """One side's embedding: `type` is checked here, the other keys by the layer it builds."""

    type: str
    embedding_dim: PositiveInt | None = None
    num_buckets: PositiveInt | None = None
    ids_per_bucket: PositiveInt | None = None
    budget_dim: Annotated[int, AfterValidator(_budget_dim)] | None = None
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
    # null: the widest top-block dim of the mixed-dimension sides (see modeling/specs.py);
    # 0: no vectors, biases only (needs bias_layout: in_embedding)
    embedding_dim: Annotated[int, Field(ge=0)] | None
    use_biases: bool = True
    # separate: FullEmbedding(n, 1) bias tables; in_embedding: column 0 of each side's embedding
    # layer, built one column wider, so compact layers compress the biases too
    bias_layout: str = "separate"
    embedding_l2: NonNegativeFloat = 0.0
    bias_l2: NonNegativeFloat = 0.0
    output: OutputParameters = OutputParameters()
    user_embedding: EmbeddingSpec
    movie_embedding: EmbeddingSpec

    @field_validator("bias_layout")
    @classmethod
    def _known_layout(cls, value: str) -> str:
        return _one_of(value, bias_layouts())

    @model_validator(mode="after")
    def _vectors_or_biases(self) -> ModelSpec:
        if self.embedding_dim == 0 and not (self.use_biases and self.bias_layout == "in_embedding"):
            raise ValueError(
                "is inconsistent: embedding_dim 0 (no vectors) holds only biases, which needs "
                "use_biases: true and bias_layout: in_embedding"
            )
        return self


class ModelSection(Strict):
    model: ModelSpec


class SelectedModelSection(ModelSection):
    """A model whose layout is chosen on the validation split among named candidates, each a
    (partial) override deep-merged into `model` (checked one by one: `layout_problems`)."""

    layouts: dict[str, dict[str, Any] | None] | None = None


class EvaluationParameters(Strict):
    popularity_blocks: PositiveInt = 3


class ReportingParameters(Strict):
    reference: str = "baseline"


class SweepTarget(Strict):
    min_compression: Annotated[float, Field(gt=0)]
    max_rmse_gap: NonNegativeFloat


class ExecutorParameters(Strict):
    type: Literal["in_process", "processes", "dask"] = "in_process"
    workers: PositiveInt | None = None
    scheduler_address: str | None = None
    progress: bool = True


QUANTIZE_MODES = ("int8", "int4")
PositiveFloat = Annotated[float, Field(gt=0)]


class SweepBudgets(Strict):
    """`sweep.budgets`: the budget axis in float32 values per id (users + movies, biases in)."""

    floats_per_id: Annotated[list[PositiveFloat], Field(min_length=1)]

    @field_validator("floats_per_id", mode="before")
    @classmethod
    def _distinct(cls, value: Any) -> Any:
        # Checked as written (1, not 1.0); a value that is no number is left to the type check.
        numbers = [v for v in value or [] if isinstance(v, int | float) and not isinstance(v, bool)]
        if len(set(numbers)) != len(numbers):
            raise ValueError(
                f"is {value!r}, which repeats a budget; allowed values: distinct numbers above 0"
            )
        return value


class SvdPeerOptions(Strict):
    """Surprise's `SVD` options for the sweep's peers (its own defaults)."""

    n_epochs: PositiveInt = 20
    lr_all: PositiveFloat = 0.005
    reg_all: NonNegativeFloat = 0.02


class BaselineOnlyPeerOptions(Strict):
    """Surprise's `BaselineOnly` ALS options (`bsl_options`, its own defaults)."""

    n_epochs: PositiveInt = 10
    reg_u: NonNegativeFloat = 15
    reg_i: NonNegativeFloat = 10


class SweepPeers(Strict):
    """`sweep.peers`: the global mean and Surprise's peers, on the sweep's split and seeds."""

    svd_factors: list[PositiveInt] = [1, 4, 16]
    svd: SvdPeerOptions = SvdPeerOptions()
    baseline_only: BaselineOnlyPeerOptions = BaselineOnlyPeerOptions()


class SweepParameters(Strict):
    """The sweep's own keys; every point of its grid is checked as a model (see below)."""

    seeds: Annotated[list[int], Field(min_length=1)]
    reference: str
    # Post-training quantization modes the sweep re-scores every model in: one, a list or null.
    quantize: str | list[str] | None = None
    target: SweepTarget
    training: TrainingOverrides = TrainingOverrides()
    # A technique or recipe model set to null is left out (an overlay can switch it off).
    # The budget axis: techniques with a `budget_knob` are placed at each budget; null: none.
    budgets: SweepBudgets | None = None
    techniques: dict[str, dict[str, Any] | None]
    recipe: dict[str, dict[str, Any] | None] | None = None
    # The global mean and Surprise's peers, scored on the same split; null: none.
    peers: SweepPeers | None = None
    executor: ExecutorParameters = ExecutorParameters()
    resume: bool = True
    checkpoint_dir: str | None = None

    @field_validator("seeds")
    @classmethod
    def _distinct_seeds(cls, value: list[int]) -> list[int]:
        # A repeated seed trains the same run twice and counts it twice in the mean ± std.
        repeated = sorted({seed for seed in value if value.count(seed) > 1})
        if repeated:
            raise ValueError(
                f"is {value!r}, which repeats seed {', '.join(map(str, repeated))}; allowed "
                "values: a non-empty list of distinct ints"
            )
        return value

    @field_validator("checkpoint_dir")
    @classmethod
    def _named_directory(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError(
                f"is {value!r}; allowed values: a directory path, or null (no checkpoints); "
                "to turn resuming off set `sweep.resume: false`"
            )
        return value

    @field_validator("quantize")
    @classmethod
    def _known_modes(cls, value: str | list[str] | None) -> str | list[str] | None:
        modes = [value] if isinstance(value, str) else value
        if modes is None:
            return value
        allowed = f"allowed values: {', '.join(QUANTIZE_MODES)}, a list of them, or null"
        if not modes or any(mode not in QUANTIZE_MODES for mode in modes):
            raise ValueError(f"is {value!r}; {allowed}")
        if len(set(modes)) != len(modes):
            raise ValueError(f"is {value!r}, which repeats a mode; {allowed}")
        return value


class ProjectParameters(Strict):
    """Every top-level parameter section of the project."""

    data: DataParameters | None = None
    split: SplitParameters | None = None
    vocabulary: VocabularyParameters | None = None
    training: TrainingParameters | None = None
    evaluation: EvaluationParameters | None = None
    baseline: ModelSection | None = None
    memory_efficient: SelectedModelSection | None = None
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


# Keys of an embedding spec that modeling/specs.py resolves into layer arguments before the layer
# sees the spec, each with the arguments it provides: it applies to the layer types whose
# constructor takes one of them, and stands in for them where they are required.
SPEC_KEY_ARGUMENTS = {
    "blocks": {
        "block_sizes",
        "block_dims",
        "block_storage",
        "block_buckets",
        "shared_combiner",
        "unknown_block",
    },
    "ids_per_bucket": {"num_buckets"},
    "quotient_rows_equal_buckets": {"quotient_rows"},
    "budget_dim": {"array_size", "parameter_budget"},
}
SPEC_KEYS = {"type", *SPEC_KEY_ARGUMENTS}
# Layer arguments set by the model or from `blocks`, never by the spec.
RESERVED_LAYER_KEYS = {
    "self",
    "num_ids",
    "output_dim",
    "name",
    "kwargs",
    "block_sizes",
    "block_dims",
    "block_storage",
    "block_buckets",
    "shared_combiner",
    "unknown_block",
}


def _arguments(constructor: Any) -> set[str]:
    return set(inspect.signature(constructor).parameters)


def _layer_class(kind: str) -> type:
    from memory_efficient_embeddings.embeddings.models import EMBEDDING_TYPES  # noqa: PLC0415

    return EMBEDDING_TYPES[kind]


def embedding_keys(kind: str) -> set[str]:
    """What an embedding spec of this type may set: its layer's arguments and the spec keys."""
    return (_arguments(_layer_class(kind).__init__) - RESERVED_LAYER_KEYS) | SPEC_KEYS | {"dtype"}


@functools.cache
def _argument_checkers(kind: str) -> dict[str, TypeAdapter]:
    """A strict validator per layer argument whose annotation says more than `Any`."""
    constructor = _layer_class(kind).__init__
    try:
        hints = typing.get_type_hints(constructor)
    except (NameError, TypeError):  # an annotation that does not resolve: the layer checks it
        return {}
    return {
        name: TypeAdapter(hint, config=ConfigDict(strict=True))
        for name, hint in hints.items()
        if name in _arguments(constructor) - RESERVED_LAYER_KEYS and hint is not Any
    }


def _required_arguments(kind: str) -> set[str]:
    """Layer arguments without a default that the spec (not the model) must provide."""
    parameters = inspect.signature(_layer_class(kind).__init__).parameters
    return {
        name
        for name, parameter in parameters.items()
        if parameter.default is inspect.Parameter.empty
        and parameter.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    } - RESERVED_LAYER_KEYS


def _types_taking(arguments: set[str]) -> list[str]:
    return [
        kind for kind in embedding_types() if arguments & _arguments(_layer_class(kind).__init__)
    ]


def _unknown_key(key: str, where: str, allowed: set[str], what: str) -> str:
    close = difflib.get_close_matches(key, sorted(allowed), n=1)
    hint = f" Did you mean `{where}.{close[0]}`?" if close else ""
    return (
        f"`{where}.{key}` is not a known key of {what}.{hint} "
        f"Allowed: {', '.join(sorted(allowed))}."
    )


@functools.cache
def _size_arguments(kind: str) -> frozenset[str]:
    """The layer's int arguments that are sizes (at least 1), read from its constructor.

    Every int argument of a layer counts something (chunks, hashes, ranks, rows, ...) and must be
    at least 1, except those whose default is 0 (a seed, `extra_rows_per_block`), which may be 0.
    """
    constructor = _layer_class(kind).__init__
    try:
        hints = typing.get_type_hints(constructor)
    except (NameError, TypeError):
        return frozenset()
    parameters = inspect.signature(constructor).parameters
    return frozenset(
        name
        for name, parameter in parameters.items()
        if name not in RESERVED_LAYER_KEYS
        and _takes_int(hints.get(name))
        and parameter.default != 0
    )


def _takes_int(hint: Any) -> bool:
    """`int` or an optional int (`int | None`), not bool and not a list of ints."""
    if hint is int:
        return True
    return typing.get_origin(hint) in (typing.Union, types.UnionType) and int in typing.get_args(
        hint
    )


def _argument_problems(kind: str, spec: Mapping[str, Any], where: str) -> list[str]:
    """Values of the layer's own arguments, against the types its constructor declares."""
    problems = []
    for key, checker in _argument_checkers(kind).items():
        # The schema's own fields (sizes) are checked with their ranges by EmbeddingSpec.
        if spec.get(key) is None or key in EmbeddingSpec.model_fields:
            continue
        try:
            checker.validate_python(spec[key])
        except ValidationError as exc:
            message = exc.errors()[0]["msg"]
            problems.append(f"`{where}.{key}` is {spec[key]!r}: {message}.")
            continue
        if key in _size_arguments(kind) and isinstance(spec[key], int) and spec[key] < 1:
            problems.append(
                f"`{where}.{key}` is {spec[key]!r}: Input should be greater than or equal to 1 "
                f"(a size of the {kind} layer)."
            )
    return problems


def _budget_size_problems(kind: str, spec: Mapping[str, Any], where: str) -> list[str]:
    """A layer sized by a `parameter_budget` or by its explicit sizes needs one of the two."""
    layer = _layer_class(kind)
    explicit = tuple(getattr(layer, "size_arguments", ()))
    if not explicit or "parameter_budget" not in _arguments(layer.__init__):
        return []

    def given(argument: str) -> bool:
        providers = [k for k, provided in SPEC_KEY_ARGUMENTS.items() if argument in provided]
        return any(spec.get(k) is not None for k in (argument, *providers))

    budget = given("parameter_budget")
    missing = [argument for argument in explicit if not given(argument)]
    if missing and not budget:
        have = [argument for argument in explicit if argument not in missing]
        sizes = " and ".join(missing) + (f" (besides {' and '.join(have)})" if have else "")
        return [
            f"`{where}` is a {kind} embedding without a size: set {sizes}, or budget_dim or "
            f"parameter_budget (its layer requires {' and '.join(explicit)} or "
            "parameter_budget)."
        ]
    if not missing and budget:
        return [
            f"`{where}` sets both {' and '.join(explicit)} and a budget (budget_dim or "
            "parameter_budget): keep one."
        ]
    return []


def embedding_spec_problems(spec: Any, where: str) -> list[str]:
    """Keys, values and requirements of one embedding spec, by its layer's constructor."""
    if not isinstance(spec, Mapping) or spec.get("type") not in embedding_types():
        return []  # the schema already says so
    kind = spec["type"]
    allowed = embedding_keys(kind)
    layer_arguments = _arguments(_layer_class(kind).__init__)
    problems = [
        _unknown_key(key, where, allowed, f"a `{kind}` embedding")
        for key, value in spec.items()
        if key not in allowed and value is not None
    ]
    problems += _argument_problems(kind, spec, where)
    for key, provided in SPEC_KEY_ARGUMENTS.items():
        if spec.get(key) is not None and not provided & layer_arguments:
            takers = _types_taking(provided)
            problems.append(
                f"`{where}.{key}` applies only to {' and '.join(takers)} embeddings, not {kind}."
            )
    if "block_sizes" in layer_arguments and not spec.get("blocks"):
        problems.append(f"`{where}` is a {kind} embedding without `blocks`.")
    for argument in sorted(_required_arguments(kind)):
        providers = [k for k, provided in SPEC_KEY_ARGUMENTS.items() if argument in provided]
        if spec.get(argument) is None and all(spec.get(k) is None for k in providers):
            problems.append(
                f"`{where}` is a {kind} embedding without a size: set "
                f"{' or '.join([argument, *providers])} (its layer requires {argument})."
            )
    if spec.get("num_buckets") is not None and spec.get("ids_per_bucket") is not None:
        problems.append(f"`{where}` sets both num_buckets and ids_per_bucket: keep one.")
    problems += _budget_size_problems(kind, spec, where)
    return problems


def _between(low: float, high: float, *, low_open: bool = False, high_open: bool = False):
    def check(value: float) -> bool:
        above = value > low if low_open else value >= low
        below = value < high if high_open else value <= high
        return above and below

    return check


# Ranges of optimizer options, by argument name: each applies to every optimizer of `OPTIMIZERS`
# whose constructor (or Keras' base optimizer's) takes it. From Keras' own docs and checks:
# `epsilon` divides by the root of a second moment (0 divides by zero at the first step), Adam's
# betas are decay rates in [0, 1) (1 never forgets, and its bias correction 1 - beta**t is 0),
# SGD's and EMA's momentum in [0, 1], a clip bound or loss scale above 0, weight decay and
# Adagrad's initial accumulator at least 0, and Keras refuses gradient accumulation below 2 steps.
OPTIMIZER_OPTION_RANGES: dict[str, tuple[Any, str]] = {
    "epsilon": (_between(0, float("inf"), low_open=True), "a number above 0"),
    "beta_1": (_between(0, 1, high_open=True), "a number from 0 up to, not including, 1"),
    "beta_2": (_between(0, 1, high_open=True), "a number from 0 up to, not including, 1"),
    "momentum": (_between(0, 1), "a number from 0 to 1"),
    "ema_momentum": (_between(0, 1), "a number from 0 to 1"),
    "weight_decay": (_between(0, float("inf")), "a number at least 0, or null"),
    "initial_accumulator_value": (_between(0, float("inf")), "a number at least 0"),
    "clipnorm": (_between(0, float("inf"), low_open=True), "a number above 0, or null"),
    "clipvalue": (_between(0, float("inf"), low_open=True), "a number above 0, or null"),
    "global_clipnorm": (_between(0, float("inf"), low_open=True), "a number above 0, or null"),
    "loss_scale_factor": (_between(0, float("inf"), low_open=True), "a number above 0, or null"),
}
# Options that count something: ints with a least value.
OPTIMIZER_COUNT_OPTIONS = {
    "gradient_accumulation_steps": (2, "an int of at least 2, or null"),
    "ema_overwrite_frequency": (1, "an int of at least 1, or null"),
    "sparse_min_size": (0, "an int of at least 0"),
}


def _option_value_problem(key: str, value: Any, where: str) -> str | None:
    if value is None:
        return None
    if key in OPTIMIZER_COUNT_OPTIONS:
        least, allowed = OPTIMIZER_COUNT_OPTIONS[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            return f"`{where}.{key}` is {value!r}; allowed values: {allowed}."
    elif key in OPTIMIZER_OPTION_RANGES:
        check, allowed = OPTIMIZER_OPTION_RANGES[key]
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if not number or not check(value):
            return f"`{where}.{key}` is {value!r}; allowed values: {allowed}."
    return None


def optimizer_option_problems(training: Mapping[str, Any], where: str) -> list[str]:
    """Keys of `training.<optimizer>` must be arguments of that optimizer, values in range."""
    from keras.src.optimizers.base_optimizer import BaseOptimizer  # noqa: PLC0415

    from memory_efficient_embeddings.embeddings.optimizers import OPTIMIZERS  # noqa: PLC0415

    problems = []
    for name, optimizer in OPTIMIZERS.items():
        options = training.get(name)
        if not isinstance(options, Mapping):
            continue
        allowed = (_arguments(optimizer.__init__) | _arguments(BaseOptimizer.__init__)) - {
            "self",
            "kwargs",
            "name",
            "learning_rate",
        }
        for key in options:
            if key == "learning_rate":
                problems.append(f"`{where}.{name}.learning_rate`: set `{where}.learning_rate`.")
            elif key not in allowed:
                problems.append(
                    _unknown_key(key, f"{where}.{name}", allowed, f"the {name} optimizer")
                )
            else:
                problem = _option_value_problem(key, options[key], f"{where}.{name}")
                if problem is not None:
                    problems.append(problem)
    return problems


def _model_problems(model: Any, where: str) -> list[str]:
    if not isinstance(model, Mapping):
        return []
    return [
        problem
        for side in EMBEDDING_SIDES
        for problem in embedding_spec_problems(model.get(side), f"{where}.{side}")
    ]


def _spec_type(spec: Any) -> Any:
    return spec.get("type") if isinstance(spec, Mapping) else None


def _grid_key_problem(
    key: str, entry: Mapping[str, Any], base_model: Mapping[str, Any], where: str
) -> str | None:
    """Whether a grid key is a dotted path a technique's model may set; a message if not."""
    head, *rest = key.split(".")
    model_keys = {*ModelSpec.model_fields, "embedding"} - {"name"}
    if head not in model_keys:
        return _unknown_key(key, where, model_keys, "a sweep point's model")
    if head == "output":
        allowed, what = set(OutputParameters.model_fields), "`output`"
    elif head in ("embedding", *EMBEDDING_SIDES):
        sides = EMBEDDING_SIDES if head == "embedding" else (head,)
        kinds = {
            _spec_type(entry.get(side))
            or _spec_type(entry.get("embedding"))
            or _spec_type(base_model.get(side))
            for side in sides
        } & set(embedding_types())
        if rest[:2] == ["blocks", "tail"] and len(rest) > 2:
            rest = rest[2:]
            head, allowed, what = f"{head}.blocks.tail", set(TailParameters.model_fields), "`tail`"
        elif rest[:1] == ["blocks"]:
            rest = rest[1:]
            head, allowed, what = f"{head}.blocks", set(BlockParameters.model_fields), "`blocks`"
        else:
            if not kinds:
                return None  # the points' own check says what the type lacks
            allowed = set.intersection(*(embedding_keys(kind) for kind in kinds))
            what = f"a `{'`/`'.join(sorted(kinds))}` embedding"
    else:
        allowed, what = set(), f"`{head}` (a single value)"
    if not rest:
        return None
    if len(rest) > 1 or rest[0] not in allowed:
        return _unknown_key(".".join(rest), f"{where}.{head}", allowed, what)
    return None


def grid_problems(sweep: Mapping[str, Any], base_model: Mapping[str, Any]) -> list[str]:
    """Every grid key must name something the technique's model has, with a list of values."""
    problems = []
    for technique, entry in (sweep.get("techniques") or {}).items():
        grid = entry.get("grid") if isinstance(entry, Mapping) else None
        problems += _tune_problems(technique, entry, grid)
        problems += _budget_knob_problems(technique, entry, base_model, sweep)
        if not isinstance(grid, Mapping):
            continue
        for key, values in grid.items():
            where = f"sweep.techniques.{technique}.grid"
            problem = _grid_key_problem(str(key), entry, base_model, where)
            if problem is not None:
                problems.append(problem)
            elif not isinstance(values, list) or not values:
                problems.append(f"`{where}.{key}` is {values!r}: give a non-empty list of values.")
    return problems


def _budget_knob_problems(
    technique: str, entry: Any, base_model: Mapping[str, Any], sweep: Mapping[str, Any]
) -> list[str]:
    """A technique's `budget_knob` is a size key of its model that placement knows how to search,
    outside its grid, with budgets to place it at."""
    knob = entry.get("budget_knob") if isinstance(entry, Mapping) else None
    if knob is None:
        return []
    where = f"sweep.techniques.{technique}.budget_knob"
    allowed = (
        "allowed values: a size key of the technique's model ending in "
        f"{', '.join(BUDGET_KNOBS)} (e.g. embedding_dim, embedding.ids_per_bucket), or null"
    )
    if not isinstance(knob, str) or knob.split(".")[-1] not in BUDGET_KNOBS:
        return [f"`{where}` is {knob!r}; {allowed}."]
    problem = _grid_key_problem(knob, entry, base_model, where)
    if problem is not None:
        return [problem]
    if knob in (entry.get("grid") or {}):
        return [
            f"`{where}` is {knob!r}, which is also a grid key: placement sets the knob at each "
            "budget; remove it from the grid, or set budget_knob: null to train the grid's values."
        ]
    budgets = sweep.get("budgets")
    if not isinstance(budgets, Mapping) or not budgets.get("floats_per_id"):
        return [
            f"`{where}` is {knob!r}, but `sweep.budgets.floats_per_id` gives no budget to place "
            "it at: set the budgets, or budget_knob: null with the sizes in the grid."
        ]
    return []


def _tune_problems(technique: str, entry: Any, grid: Any) -> list[str]:
    """A technique's `tune` is a list of its grid keys (the summary keeps each one's best value)."""
    tune = entry.get("tune") if isinstance(entry, Mapping) else None
    if tune is None:
        return []
    where = f"sweep.techniques.{technique}.tune"
    keys = sorted(map(str, grid)) if isinstance(grid, Mapping) else []
    allowed = f"allowed values: a list of this technique's grid keys ({', '.join(keys) or 'none'})"
    if not isinstance(tune, list) or not all(isinstance(key, str) for key in tune):
        hint = f" (write [{tune}])" if isinstance(tune, str) else ""
        return [f"`{where}` is {tune!r}{hint}; {allowed}."]
    unknown = [key for key in tune if key not in keys]
    if unknown:
        return [f"`{where}` is {tune!r}, which names no grid key {', '.join(unknown)}; {allowed}."]
    return []


# What `data.path` may be for each source that reads only that file, by extension.
DATA_FILE_SUFFIXES = {"ciao": (".mat",), "table": TABLE_SUFFIXES}
# Files that another source reads, for a hint when `data.source` is auto or movielens.
OTHER_SOURCE_SUFFIXES = {".mat": "ciao", ".parquet": "table", ".pq": "table", ".tsv": "table"}


def data_problems(parameters: Mapping[str, Any]) -> list[str]:
    """`data.path` fits `data.source`; `data.columns` names three different columns."""
    data = parameters.get("data")
    if not isinstance(data, Mapping):
        return []
    source, path = data.get("source", "auto"), data.get("path")
    problems = []
    suffix = PurePath(path).suffix.lower() if isinstance(path, str) else ""
    if source in DATA_FILE_SUFFIXES:
        allowed = DATA_FILE_SUFFIXES[source]
        if not path:
            problems.append(
                f"`data.path` is missing: data.source {source!r} reads the {'/'.join(allowed)} "
                f"file at data.path; set it (e.g. --params data.path=data/01_raw/"
                f"{'rating.mat' if source == 'ciao' else 'ratings.csv'})."
            )
        elif suffix not in allowed:
            problems.append(
                f"`data.path` is {path!r}; allowed values: a {', '.join(allowed)} file for "
                f"data.source {source!r}."
            )
    elif suffix in OTHER_SOURCE_SUFFIXES:
        problems.append(
            f"`data.path` is {path!r}, a {suffix} file, which data.source {source!r} (MovieLens) "
            f"does not read: set data.source: {OTHER_SOURCE_SUFFIXES[suffix]}."
        )
    columns = data.get("columns")
    if isinstance(columns, Mapping):
        names = [columns.get(role, DEFAULT_COLUMNS[role]) for role in DEFAULT_COLUMNS]
        if len(set(names)) < len(names):
            problems.append(
                f"`data.columns` is {dict(columns)!r}; allowed values: three different column "
                "names for user, item and rating."
            )
    return problems


def reference_problems(parameters: Mapping[str, Any]) -> list[str]:
    """`reporting.reference` names a model of the run: a section with a `model`."""
    reporting = parameters.get("reporting")
    reference = reporting.get("reference") if isinstance(reporting, Mapping) else None
    if not isinstance(reference, str):  # the schema already says so
        return []
    models = sorted(
        str(name)
        for name, section in parameters.items()
        if isinstance(section, Mapping) and isinstance(section.get("model"), Mapping)
    )
    if reference in models:
        return []
    return [
        f"`reporting.reference` is {reference!r}; allowed values: a model of the run "
        f"({', '.join(models) or 'none'})."
    ]


def layout_problems(parameters: Mapping[str, Any], section: str = "memory_efficient") -> list[str]:
    """Every candidate of `<section>.layouts`, merged into `<section>.model`, is a valid model;
    more than one needs a validation split to choose on."""
    entry = parameters.get(section)
    layouts = entry.get("layouts") if isinstance(entry, Mapping) else None
    model = entry.get("model") if isinstance(entry, Mapping) else None
    if layouts is None or not isinstance(model, Mapping):
        return []
    where = f"{section}.layouts"
    if not isinstance(layouts, Mapping) or not any(v is not None for v in layouts.values()):
        return [
            f"`{where}` is {layouts!r}; allowed values: named layouts, each a (partial) override "
            f"of {section}.model ({{}} for the model as written), or null for {section}.model alone."
        ]
    problems = []
    for name, override in layouts.items():
        if override is None:
            continue
        if not isinstance(override, Mapping):
            problems.append(
                f"`{where}.{name}` is {override!r}; allowed values: keys of {section}.model to "
                "override ({} for the model as written), or null to leave it out."
            )
            continue
        for key in MODEL_ONLY_KEYS:
            if key in override:
                problems.append(
                    f"`{where}.{name}.{key}` cannot be set by a layout: it is the model's own; "
                    f"set {section}.model.{key} instead."
                )
    if problems:
        return problems
    for name, spec in layout_candidates(model, layouts).items():
        # Messages name the candidate's own keys: memory_efficient.layouts.<name>.<key>.
        rename = (f"{section}.model", f"{where}.{name}")
        found = []
        try:
            ModelSpec.model_validate(spec)
        except ValidationError as exc:
            found += [
                _describe(error | {"loc": (section, "model", *error["loc"])}).replace(*rename)
                for error in exc.errors()
            ]
        found += _model_problems(spec, f"{where}.{name}")
        # A layout is merged into the model: one written for another model may not fit it.
        hint = f" (merged into {section}.model; `{where}: null` trains {section}.model alone)"
        problems += [problem.removesuffix(".") + hint + "." for problem in found]
    split = parameters.get("split")
    if len(layout_candidates(model, layouts)) > 1 and (
        isinstance(split, Mapping) and split.get("validation_fraction") == 0
    ):
        problems.append(
            f"`{where}` names {len(layout_candidates(model, layouts))} layouts to choose among "
            "on the validation split, but split.validation_fraction is 0 (validation is the eval "
            f"split): set a validation fraction, or leave one layout ({where}: null)."
        )
    return problems


def sweep_point_problems(parameters: Mapping[str, Any]) -> list[str]:
    """Every point of the sweep's grid must be a valid model: checked before any training."""
    sweep, base = parameters.get("sweep"), (parameters.get("baseline") or {}).get("model")
    if not isinstance(sweep, Mapping) or not isinstance(base, Mapping):
        return []
    problems = grid_problems(sweep, base)
    if problems:  # each point would repeat them
        return problems
    try:
        plan = plan_sweep(dict(sweep), dict(base))
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        return [f"`sweep.techniques`: {exc}"]
    for point in plan:
        where = (
            f"sweep.recipe.{point['settings']}"  # the recipe's models are named, not gridded
            if point["technique"] == RECIPE
            else f"sweep.techniques.{point['technique']} (point {point['point']})"
        )
        try:
            ModelSpec.model_validate(point["model"])
        except ValidationError as exc:
            problems += [f"{where}: {_describe(error)}" for error in exc.errors()]
        problems += [f"{where}: {problem}" for problem in _model_problems(point["model"], "model")]
    return problems


def validate_parameters(parameters: Mapping[str, Any]) -> ProjectParameters:
    """Check all parameters against the schema; raise ParameterError listing every problem.

    The schema checks types (strictly: `true` is no batch size), ranges and keys; then each
    embedding spec is checked against its layer type, each optimizer's options against its
    arguments, and every sweep point as a model. All before any node runs.
    """
    problems: list[str] = []
    validated = None
    try:
        validated = ProjectParameters.model_validate(dict(parameters))
    except ValidationError as exc:
        problems += [_describe(error) for error in exc.errors()]
    for section in ("baseline", "memory_efficient"):
        model = (
            (parameters.get(section) or {}).get("model")
            if isinstance(parameters.get(section), Mapping)
            else None
        )
        problems += _model_problems(model, f"{section}.model")
    if not problems:  # each candidate layout would repeat the model's own problems
        problems += layout_problems(parameters)
    problems += reference_problems(parameters)
    problems += data_problems(parameters)
    if isinstance(parameters.get("training"), Mapping):
        problems += optimizer_option_problems(parameters["training"], "training")
    sweep = parameters.get("sweep")
    if isinstance(sweep, Mapping) and isinstance(sweep.get("training"), Mapping):
        problems += optimizer_option_problems(sweep["training"], "sweep.training")
    if not problems:
        problems += sweep_point_problems(parameters)
    if problems:
        raise ParameterError(
            "Invalid parameters (conf/base/parameters*.yml, conf/<env>/, or --params):\n  - "
            + "\n  - ".join(dict.fromkeys(problems))
        )
    return validated


def with_defaults(section: BaseModel, given: Mapping[str, Any]) -> dict[str, Any]:
    """`given` (a validated section as written) with the schema's defaults for what it leaves out.

    What is given stays exactly as written (an int stays an int, extra keys stay); a default of
    None is not added (absent and null read the same); a section of overrides gets no defaults.
    """
    filled = copy.deepcopy(dict(given))
    if not section.fills_defaults:
        return filled
    for name, field in type(section).model_fields.items():
        value = getattr(section, name)
        if name not in given:
            if field.default is not None and not field.is_required():
                filled[name] = _default(value)
        elif isinstance(value, BaseModel) and isinstance(given[name], Mapping):
            filled[name] = with_defaults(value, given[name])
    return filled


def _default(value: Any) -> Any:
    return with_defaults(value, {}) if isinstance(value, BaseModel) else copy.deepcopy(value)
