"""What a string-id rating model takes at every entry point, checked before Keras sees it.

``predict``, ``predict_on_batch`` and ``model(x)`` of a string-id model all pass their input
through :func:`id_pairs`: a dict of id arrays or a pandas DataFrame (columns by name) becomes a
dict of 1-D object arrays of ``str``; anything it cannot score (a tuple or bare array whose
columns have no names, numbers, missing values, empty ids, bare numbers where ids look like
``movie_10``, unequal lengths, swapped columns) is refused with one ``PredictionInputError``
that says what is wrong and where (the entry point, the column and the first row). Every id is
checked, with vectorised operations. Tensors and datasets go to Keras unchanged.
"""

from __future__ import annotations

import numbers
import re
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

ID_KEYS = ("user_id", "movie_id")
# Python and pandas containers of ids that are checked here; anything else (tensors, KerasTensors,
# tf.data datasets, generators) is Keras' to take or refuse.
_ID_DATA = (
    list,
    tuple,
    set,
    frozenset,
    np.ndarray,
    np.generic,
    str,
    bytes,
    numbers.Number,
    pd.Series,
    pd.Index,
    pd.DataFrame,
    pd.api.extensions.ExtensionArray,
)
_TRAILING_NUMBER = re.compile(r"^(\D*?)\d+$")
_EXPECTED = (
    "{'user_id': [...], 'movie_id': [...]} (lists, numpy arrays or pandas Series of string ids) "
    "or a pandas DataFrame with columns user_id and movie_id"
)


class PredictionInputError(ValueError):
    """Input a string-id model cannot score; the message names the entry point, column and row."""


def _is_id_data(value: Any) -> bool:
    return value is None or isinstance(value, _ID_DATA)


def id_prefix(vocabulary: Sequence[str]) -> str | None:
    """The prefix before the number in ids like ``user_42`` (None when ids have no such form)."""
    match = _TRAILING_NUMBER.match(str(vocabulary[0])) if len(vocabulary) else None
    return match.group(1) if match and match.group(1) else None


@dataclass(frozen=True)
class IdVocabularies:
    """A model's user and movie vocabularies, indexed for vectorised membership tests."""

    users: pd.Index
    movies: pd.Index
    # True when no id is both a user and a movie: only then can swapped columns be told apart.
    disjoint: bool

    @classmethod
    def of(cls, users: Sequence[str], movies: Sequence[str]) -> IdVocabularies:
        """Index two vocabularies (kept in their order)."""
        user_index = pd.Index(np.asarray(users, dtype=object))
        movie_index = pd.Index(np.asarray(movies, dtype=object))
        return cls(user_index, movie_index, not user_index.isin(movie_index).any())

    def of_key(self, key: str) -> pd.Index:
        """The vocabulary of ``user_id`` or ``movie_id``."""
        return self.users if key == "user_id" else self.movies


# Each model's indexed vocabularies, built on first use (a weak key: nothing kept past the model).
_VOCABULARIES: weakref.WeakKeyDictionary[Any, IdVocabularies | None] = weakref.WeakKeyDictionary()


def cached_vocabularies(model: Any, users: Any, movies: Any) -> IdVocabularies | None:
    """``model``'s :class:`IdVocabularies`, indexed once; None when ``users`` or ``movies`` is."""
    if model not in _VOCABULARIES:
        known = users is not None and movies is not None
        _VOCABULARIES[model] = IdVocabularies.of(users, movies) if known else None
    return _VOCABULARIES[model]


def _first(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def _example(prefix: str | None) -> str:
    return f"'{prefix}42'" if prefix else "'user_42'"


def _numbers_error(key: str, value: Any, where: str, prefix: str | None) -> PredictionInputError:
    return PredictionInputError(
        f"`{key}` holds numbers (e.g. {value!r}{where}); this model takes string ids such as "
        f"{_example(prefix)}: pass e.g. [f'{prefix or 'user_'}{{i}}' for i in ids]."
    )


def _one_dimensional(values: Any, key: str) -> np.ndarray:
    """One column of ids as a 1-D numpy array (any dtype), or a PredictionInputError."""
    if values is None:
        raise PredictionInputError(f"`{key}` is None: pass its ids ({_EXPECTED}).")
    if isinstance(values, set | frozenset | Mapping | pd.DataFrame):
        raise PredictionInputError(
            f"`{key}` is a {type(values).__name__}: pass its ids in pair order, as a list, "
            "numpy array or pandas Series."
        )
    if isinstance(values, str | bytes | numbers.Number | np.generic):
        values = [values]  # one id
    if hasattr(values, "to_numpy"):
        array = np.asarray(values.to_numpy())
    elif isinstance(values, list | tuple):
        array = np.array(values, dtype=object)  # dtype=object: no silent number-to-str cast
    else:
        array = np.asarray(values)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array.reshape(-1)
    if array.ndim != 1:
        raise PredictionInputError(
            f"`{key}` has shape {array.shape}: pass one id per pair, as a 1-D list, numpy array "
            "or pandas Series."
        )
    return array


def _as_object_array(values: Any, key: str, prefix: str | None) -> np.ndarray:
    """One column of ids as a 1-D numpy object array of ``str``, or a PredictionInputError."""
    array = _one_dimensional(values, key)
    if not len(array):
        return array.astype(object)  # no ids: the caller says so for both columns at once
    kind = array.dtype.kind
    if kind in "biufc":
        raise _numbers_error(key, array[0].item(), "", prefix)
    if kind == "S":
        array = _decoded(array, key)
    elif kind == "U":
        array = array.astype(object)
    elif kind != "O":
        raise PredictionInputError(
            f"`{key}` has dtype {array.dtype}; this model takes string ids such as "
            f"{_example(prefix)}."
        )
    return _checked_objects(array, key, prefix)


def _decoded(array: np.ndarray, key: str) -> np.ndarray:
    try:
        return np.char.decode(array.astype(bytes), "utf-8").astype(object)
    except UnicodeDecodeError as error:
        raise PredictionInputError(
            f"`{key}` holds bytes that are not UTF-8 text ({error.reason}): pass the ids as str."
        ) from None


def _checked_objects(array: np.ndarray, key: str, prefix: str | None) -> np.ndarray:
    """An object array whose every element is a non-empty ``str`` (bytes decoded)."""
    missing = pd.isna(array)
    if missing.any():
        raise PredictionInputError(
            f"`{key}` has {int(missing.sum())} missing value(s) (None or NaN), the first at row "
            f"{_first(missing)}: every pair needs both ids; drop those rows first (e.g. "
            "frame.dropna(subset=['user_id', 'movie_id']))."
        )
    inferred = pd.api.types.infer_dtype(array, skipna=False)
    if inferred == "bytes":
        return _checked_objects(_decoded(array, key), key, prefix)
    if inferred not in ("string", "empty"):
        is_str = np.fromiter((isinstance(v, str) for v in array), bool, count=len(array))
        row = _first(~is_str)
        value = array[row]
        if isinstance(value, numbers.Number):
            raise _numbers_error(key, value, f" at row {row}", prefix)
        raise PredictionInputError(
            f"`{key}` holds a {type(value).__name__} at row {row} ({str(value)[:40]!r}); this "
            f"model takes string ids such as {_example(prefix)}."
        )
    empty = array == ""
    if empty.any():
        raise PredictionInputError(
            f"`{key}` has {int(empty.sum())} empty id(s), the first at row {_first(empty)}: an "
            "empty string is no id; drop those rows or fill in the ids."
        )
    return array


def _columns(x: Any, entry: str) -> Mapping[str, Any] | None:
    """The user and movie columns of ``x`` by name; None when ``x`` is Keras' to handle."""
    if isinstance(x, pd.DataFrame) or (isinstance(x, np.ndarray) and x.dtype.names):
        names = list(x.columns) if isinstance(x, pd.DataFrame) else list(x.dtype.names)
        missing = [key for key in ID_KEYS if key not in names]
        if missing:
            raise PredictionInputError(
                f"{entry} got a {type(x).__name__} without column(s) {missing} (its columns: "
                f"{names[:10]}); it needs columns user_id and movie_id, one pair per row."
            )
        return {key: x[key] for key in ID_KEYS}
    if isinstance(x, Mapping):
        if set(x) != set(ID_KEYS):
            missing, unknown = sorted(set(ID_KEYS) - set(x)), sorted(set(x) - set(ID_KEYS))
            raise PredictionInputError(
                f"{entry} takes {{'user_id': [...], 'movie_id': [...]}}"
                + (f"; missing: {missing}" if missing else "")
                + (f"; unknown keys: {unknown}" if unknown else "")
                + "."
            )
        return x if any(_is_id_data(value) for value in x.values()) else None
    if isinstance(x, list | tuple) and x and not any(_is_id_data(item) for item in x):
        return None  # tensors in a list: Keras' own structure
    if _is_id_data(x):
        what = type(x).__name__
        if isinstance(x, np.ndarray | list | tuple):
            what = f"{what} of shape {np.shape(x)}" if isinstance(x, np.ndarray) else what
            what += " (its columns have no names, so users and movies could be swapped)"
        raise PredictionInputError(f"{entry} got a {what}; it takes {_EXPECTED}.")
    return None


def _check_vocabularies(arrays: dict[str, np.ndarray], vocabularies: IdVocabularies) -> None:
    """Refuse bare numbers where ids carry a prefix, and columns that hold the other side's ids."""
    rows = len(arrays["user_id"])
    known = {key: vocabularies.of_key(key).get_indexer(arrays[key]) >= 0 for key in ID_KEYS}
    for key, other in zip(ID_KEYS, reversed(ID_KEYS), strict=True):
        unknown_rows = np.flatnonzero(~known[key])
        # Swapped columns: most of a column's ids are not of its side but are of the other's.
        if vocabularies.disjoint and 2 * len(unknown_rows) > rows:
            as_other = vocabularies.of_key(other).get_indexer(arrays[key][unknown_rows]) >= 0
            if 2 * int(as_other.sum()) > rows:
                row = int(unknown_rows[_first(as_other)])
                raise PredictionInputError(
                    f"`{key}` holds {other.split('_')[0]} ids: {int(as_other.sum())} of {rows} "
                    f"are not {key.split('_')[0]}s of this model but are its "
                    f"{other.split('_')[0]}s (e.g. {arrays[key][row]!r} at row {row}). Are "
                    f"user_id and movie_id swapped? Pass {{'user_id': <users>, 'movie_id': "
                    "<movies>}, or a DataFrame with those columns."
                )
        prefix = id_prefix(vocabularies.of_key(key))
        if prefix and len(unknown_rows):
            unknown = arrays[key][unknown_rows].astype(str)
            digits = np.strings.isdigit(unknown)
            if digits.any():
                value, row = str(unknown[_first(digits)]), int(unknown_rows[_first(digits)])
                raise PredictionInputError(
                    f"`{key}` holds {value!r} at row {row}, but this model's ids look like "
                    f"{_example(prefix)}: pass '{prefix}{value}' (a bare number is not an id and "
                    "would score as unknown)."
                )


def id_pairs(x: Any, vocabularies: IdVocabularies | None, entry: str) -> Any:
    """``x`` as ``{"user_id": str array, "movie_id": str array}``, checked; tensors unchanged.

    Args:
        x: what the caller passed to the model.
        vocabularies: the model's vocabularies (None: no membership checks).
        entry: the entry point, named in messages (``predict``, ``predict_on_batch``, ...).
    """
    columns = _columns(x, entry)
    if columns is None:
        return x
    if not all(_is_id_data(columns[key]) for key in ID_KEYS):
        return dict(columns)  # a tensor beside Python data: Keras checks the tensor
    prefixes = {
        key: id_prefix(vocabularies.of_key(key)) if vocabularies is not None else None
        for key in ID_KEYS
    }
    arrays = {key: _as_object_array(columns[key], key, prefixes[key]) for key in ID_KEYS}
    users, movies = len(arrays["user_id"]), len(arrays["movie_id"])
    if users != movies:
        raise PredictionInputError(
            f"user_id has {users} ids but movie_id has {movies}: {entry} takes aligned "
            "(user, movie) pairs, so both need the same length."
        )
    if users == 0:
        raise PredictionInputError(
            f"{entry} got no ids (user_id and movie_id are empty): nothing to score."
        )
    if vocabularies is not None:
        _check_vocabularies(arrays, vocabularies)
    return arrays
