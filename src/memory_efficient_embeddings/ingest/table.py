"""Reader of a user's own interactions file, CSV, TSV or Parquet by extension (`data.source: table`).

One row per rating; `data.columns` names the user, item and rating columns (other columns, a
timestamp among them, are ignored: the split is a seeded uniform draw). Ids may be integers or
text: a column whose every value is a plain integer (no sign but `-`, no leading zero) becomes
int64, like the ids of the other sources, anything else stays text. Ratings are numbers.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from .archive import other_archive_kind
from .errors import DataFileError, MalformedRatingsError
from .parsing import OnBadLines
from .rules import ReadRatings

logger = logging.getLogger(__name__)

# The default names of `data.columns` (parameters.py's schema reads them from here).
DEFAULT_COLUMNS = {"user": "user_id", "item": "item_id", "rating": "rating"}
ROLES = tuple(DEFAULT_COLUMNS)
DELIMITERS = {".csv": ",", ".tsv": "\t"}
PARQUET_SUFFIXES = (".parquet", ".pq")
SUFFIXES = (*DELIMITERS, *PARQUET_SUFFIXES)
_PLAIN_INTEGER = r"^(?:0|-?[1-9][0-9]{0,17})$"


def _file(path: Path) -> str:
    """The reader for ``path`` by its extension; one clear error for anything unreadable."""
    if not path.is_file():
        what = "a folder" if path.is_dir() else "nothing"
        raise DataFileError(
            f"data.path is {str(path)!r}, but {what} is there: set it to your interactions file "
            f"({', '.join(SUFFIXES)}) for data.source: table."
        )
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise DataFileError(
            f"data.path {path} ends in {suffix or 'no extension'!r}: data.source: table reads "
            f"{', '.join(SUFFIXES)} files, chosen by extension. Save or rename it as one of those."
        )
    if suffix in DELIMITERS:
        kind = other_archive_kind(path)
        if kind is not None:
            raise DataFileError(
                f"data.path {path} is a {kind} archive, not a {suffix} text file: extract it "
                "and point data.path at the file inside."
            )
    return suffix


def _columns(path: Path, found: list[str], columns: Mapping[str, str]) -> dict[str, str]:
    """Role -> column name, checked against the file's header."""
    names = {role: str(columns.get(role) or DEFAULT_COLUMNS[role]) for role in ROLES}
    if len(set(names.values())) < len(names):
        raise DataFileError(f"data.columns names one column for two roles: {names}.")
    missing = [role for role in ROLES if names[role] not in found]
    if missing:
        wanted = ", ".join(f"data.columns.{role} = {names[role]!r}" for role in missing)
        raise DataFileError(
            f"{path} has no column {' nor '.join(repr(names[r]) for r in missing)} ({wanted}). "
            f"Its columns: {', '.join(map(repr, found)) or 'none'}. Set data.columns.user, "
            ".item and .rating to the names of its user, item and rating columns."
        )
    return names


def _read_csv(path: Path, delimiter: str, columns: Mapping[str, str]) -> tuple[pa.Table, list]:
    """The three columns as text, and the (row number, text) of rows with a wrong field count."""
    try:
        header = pd.read_csv(path, sep=delimiter, nrows=0, encoding="utf-8-sig")
    except pd.errors.EmptyDataError as exc:
        raise DataFileError(f"{path} is empty: no header, no ratings.") from exc
    except (UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise DataFileError(f"{path}: its header line cannot be read ({exc}).") from exc
    names = _columns(path, [str(c) for c in header.columns], columns)
    ragged: list[tuple[int | None, str]] = []

    def keep_count(row: pcsv.InvalidRow) -> str:
        ragged.append((row.number, row.text))
        return "skip"

    wanted = list(dict.fromkeys(names.values()))
    try:
        table = pcsv.read_csv(
            path,
            # One thread: pyarrow then numbers the rows it hands to keep_count.
            read_options=pcsv.ReadOptions(use_threads=False, encoding="utf8"),
            parse_options=pcsv.ParseOptions(delimiter=delimiter, invalid_row_handler=keep_count),
            convert_options=pcsv.ConvertOptions(
                include_columns=wanted,
                column_types=dict.fromkeys(wanted, pa.string()),
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowKeyError) as exc:
        raise DataFileError(
            f"{path} cannot be read as {'tab' if delimiter == chr(9) else 'comma'}-separated "
            f"text ({exc}). Is it UTF-8 text with one header line?"
        ) from exc
    return table.rename_columns([role_of(names, c) for c in table.column_names]), ragged


def role_of(names: Mapping[str, str], column: str) -> str:
    """The role (user, item, rating) whose column is ``column``."""
    return next(role for role, name in names.items() if name == column)


def _read_parquet(path: Path, columns: Mapping[str, str]) -> pa.Table:
    try:
        schema = pq.read_schema(path)
        names = _columns(path, list(schema.names), columns)
        table = pq.read_table(path, columns=list(names.values()))
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataFileError(f"{path} is not a readable Parquet file ({exc}).") from exc
    return table.rename_columns([role_of(names, c) for c in table.column_names])


def _ids(values: pa.ChunkedArray, role: str, where: str) -> tuple[pd.Series, np.ndarray, str]:
    """Canonical ids (int64 when every valid one is a plain integer, else text) and bad rows."""
    kind = values.type
    if pa.types.is_dictionary(kind):
        values, kind = values.cast(kind.value_type), kind.value_type
    if pa.types.is_integer(kind):
        bad = values.is_null().to_numpy(zero_copy_only=False)
        ids = pd.Series(values.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64))
        return ids, bad, f"the {role} id is missing"
    if pa.types.is_floating(kind):
        numbers = values.to_numpy(zero_copy_only=False).astype(np.float64)
        bad = ~(np.isfinite(numbers) & (numbers == np.round(numbers)))
        ids = pd.Series(np.where(bad, 0, numbers).astype(np.int64))
        return ids, bad, f"the {role} id is missing or not a whole number"
    if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
        raise DataFileError(
            f"{where}: the {role} column (data.columns.{role}) holds {kind} values; ids must be "
            "integers or text."
        )
    text = pd.Series(values.to_numpy(zero_copy_only=False), dtype="str").str.strip()
    bad = (text.isna() | (text == "")).to_numpy()
    if text[~bad].str.fullmatch(_PLAIN_INTEGER).all():
        numbers = pd.to_numeric(text.where(~bad, "0")).astype(np.int64)
        return numbers, bad, f"the {role} id is empty"
    return text, bad, f"the {role} id is empty"


def _ratings(values: pa.ChunkedArray, where: str) -> tuple[np.ndarray, np.ndarray, str]:
    """Ratings as float64 and the rows whose rating is missing or not a finite number."""
    kind = values.type
    if pa.types.is_dictionary(kind):
        values, kind = values.cast(kind.value_type), kind.value_type
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        numbers = values.cast(pa.float64()).to_numpy(zero_copy_only=False).astype(np.float64)
    elif pa.types.is_string(kind) or pa.types.is_large_string(kind):
        text = pd.Series(values.to_numpy(zero_copy_only=False), dtype="str").str.strip()
        numbers = pd.to_numeric(text, errors="coerce").to_numpy(np.float64)
    else:
        raise DataFileError(
            f"{where}: the rating column (data.columns.rating) holds {kind} values; ratings "
            "must be numbers."
        )
    return numbers, ~np.isfinite(numbers), "the rating is missing or not a number"


def read_table(
    path: str | Path, columns: Mapping[str, str] | None = None, on_bad_lines: OnBadLines = "error"
) -> ReadRatings:
    """Read an interactions table into canonical columns (user_id, movie_id, rating); rule 1 applied."""
    path = Path(path).expanduser()
    suffix = _file(path)
    columns = columns or DEFAULT_COLUMNS
    ragged: list[tuple[int | None, str]] = []
    if suffix in PARQUET_SUFFIXES:
        table = _read_parquet(path, columns)
    else:
        table, ragged = _read_csv(path, DELIMITERS[suffix], columns)
    where = str(path)
    users, bad_user, user_reason = _ids(table["user"], "user", where)
    items, bad_item, item_reason = _ids(table["item"], "item", where)
    ratings, bad_rating, rating_reason = _ratings(table["rating"], where)
    bad = bad_user | bad_item | bad_rating
    rows_read = table.num_rows + len(ragged)
    if rows_read == 0:
        raise DataFileError(f"{path} has a header but no ratings. Is it the right file?")
    skipped = int(bad.sum()) + len(ragged)
    if skipped and on_bad_lines == "error":
        reasons = np.where(bad_user, user_reason, np.where(bad_item, item_reason, rating_reason))
        raise MalformedRatingsError(
            f"{path}, {_first_bad_row(table, bad, reasons, ragged)} ({skipped} bad row(s) in "
            "all). Fix the file, or set `data.on_bad_lines: skip` to drop bad rows."
        )
    if skipped:
        logger.warning("Skipped %d bad row(s) of %s (data.on_bad_lines: skip)", skipped, path)
    frame = pd.DataFrame(
        {
            "user_id": users[~bad].reset_index(drop=True),
            "movie_id": items[~bad].reset_index(drop=True),
            "rating": ratings[~bad].astype(np.float32),
        }
    )
    if frame.empty:
        raise MalformedRatingsError(f"{path} holds no valid ratings ({skipped} bad row(s)).")
    return ReadRatings(frame, rows_read, skipped)


def _first_bad_row(
    table: pa.Table, bad: np.ndarray, reasons: np.ndarray, ragged: list[tuple[int | None, str]]
) -> str:
    """'data row N: why: what it holds' for the first bad row (rows counted after the header)."""
    # pyarrow numbers CSV rows from the header (row 1), blank lines left out: data row = number - 1.
    ragged_rows = [number - 1 for number, _ in ragged if number is not None]
    rows = np.setdiff1d(np.arange(1, table.num_rows + len(ragged) + 1), ragged_rows)
    first = int(np.flatnonzero(bad)[0]) if bad.any() else None
    if ragged and (first is None or min(ragged_rows, default=0) < rows[first]):
        number, text = min(ragged, key=lambda entry: entry[0] or 0)
        where = f"data row {number - 1}" if number is not None else "a row"
        return f"{where} has another number of fields than the header: {text[:120]!r}"
    shown = {role: table[role][first].as_py() for role in ROLES}
    return f"data row {rows[first]}: {reasons[first]}: {shown}"
