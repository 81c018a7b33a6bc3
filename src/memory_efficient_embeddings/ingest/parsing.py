"""Fast, validating parser for MovieLens ratings files (pyarrow's multithreaded CSV reader)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from .archive import RatingsLocation, read_member_bytes
from .errors import MalformedRatingsError
from .releases import Release

logger = logging.getLogger(__name__)

COLUMNS = ("user_id", "movie_id", "rating", "timestamp")
_INT_COLUMNS = ("user_id", "movie_id", "timestamp")
# A byte that never occurs in MovieLens files: `::` becomes it so the C reader sees one delimiter.
_SUBSTITUTE = b"\x1f"
_INT_PATTERN = r"^[+-]?\d{1,18}$"
_FLOAT_PATTERN = r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$"

OnBadLines = Literal["error", "skip"]
_SNIFF_BYTES = 1 << 16  # how far to look for a NUL byte (binary, not text)


@dataclass(frozen=True)
class ParsedRatings:
    """Ratings in the canonical dtypes, plus how many bad lines were skipped.

    ``skipped_lines`` counts every bad line dropped (`data.on_bad_lines: skip`); of them,
    ``out_of_scale_lines`` held a valid row whose rating is off the release's scale.
    """

    ratings: pd.DataFrame
    skipped_lines: int
    out_of_scale_lines: int = 0


def _read_table(data: bytes, delimiter: str, has_header: bool, typed: bool) -> tuple[pa.Table, int]:
    """Parse with pyarrow, skipping rows with the wrong field count; return table and their count."""
    invalid = 0

    def _skip(_row: object) -> str:
        nonlocal invalid
        invalid += 1
        return "skip"

    types = (
        {
            "user_id": pa.int64(),
            "movie_id": pa.int64(),
            "rating": pa.float64(),
            "timestamp": pa.int64(),
        }
        if typed
        else dict.fromkeys(COLUMNS, pa.string())
    )
    table = pcsv.read_csv(
        pa.py_buffer(data),
        read_options=pcsv.ReadOptions(column_names=list(COLUMNS), skip_rows=int(has_header)),
        parse_options=pcsv.ParseOptions(
            delimiter=delimiter, quote_char=False, double_quote=False, invalid_row_handler=_skip
        ),
        convert_options=pcsv.ConvertOptions(
            column_types=types, strings_can_be_null=False, quoted_strings_can_be_null=False
        ),
    )
    return table, invalid


def _line_index(data: bytes, delimiter: bytes, has_header: bool) -> tuple[np.ndarray, np.ndarray]:
    """Physical (1-based) line numbers of the rows pyarrow keeps, and of lines with a bad field count."""
    buf = np.frombuffer(data, dtype=np.uint8)
    ends = np.flatnonzero(buf == ord("\n"))
    if len(buf) and buf[-1] != ord("\n"):
        ends = np.append(ends, len(buf))
    starts = np.concatenate(([0], ends[:-1] + 1)).astype(np.int64)
    lengths = ends - starts
    # A trailing '\r' belongs to the line ending, as for pyarrow.
    has_cr = (lengths > 0) & (buf[np.maximum(ends - 1, 0)] == ord("\r"))
    blank = (lengths - has_cr) == 0
    delim_pos = np.flatnonzero(buf == delimiter[0])
    fields = np.bincount(np.searchsorted(ends, delim_pos), minlength=len(ends))[: len(ends)] + 1
    numbers = np.arange(1, len(ends) + 1)
    first = 1 if has_header else 0
    body = slice(first, None)
    kept = ~blank[body] & (fields[body] == len(COLUMNS))
    bad = ~blank[body] & (fields[body] != len(COLUMNS))
    return numbers[body][kept], numbers[body][bad]


def _line_text(data: bytes, line: int, separator: str) -> str:
    """The text of one physical line, as it appears in the original file."""
    start = 0
    for _ in range(line - 1):
        start = data.index(b"\n", start) + 1
    end = data.find(b"\n", start)
    raw = data[start : end if end >= 0 else None].rstrip(b"\r")
    text = raw.replace(_SUBSTITUTE, separator.encode()).decode("utf-8", errors="replace")
    return text if len(text) <= 120 else text[:117] + "..."


def _rating_problem(rating: np.ndarray, release: Release) -> np.ndarray:
    """Mask of ratings outside the release's scale or off its step (whole or half stars)."""
    steps = (rating - release.rating_min) / release.rating_step
    return (
        ~np.isfinite(rating)
        | (rating < release.rating_min)
        | (rating > release.rating_max)
        | (np.abs(steps - np.round(steps)) > 1e-6)
    )


def _to_frame(table: pa.Table) -> pd.DataFrame:
    """Canonical dtypes: int64 ids and timestamp, float32 rating."""
    return pd.DataFrame(
        {
            "user_id": table["user_id"].to_numpy().astype(np.int64, copy=False),
            "movie_id": table["movie_id"].to_numpy().astype(np.int64, copy=False),
            "rating": table["rating"].to_numpy().astype(np.float32),
            "timestamp": table["timestamp"].to_numpy().astype(np.int64, copy=False),
        }
    )


def _fast_parse(data: bytes, delimiter: str, release: Release) -> pd.DataFrame | None:
    """Typed parse; None when anything looks wrong so the diagnosing parse takes over."""
    try:
        table, invalid = _read_table(data, delimiter, release.has_header, typed=True)
    except pa.ArrowInvalid:
        return None
    if invalid or any(table[c].null_count for c in COLUMNS):
        return None
    frame = _to_frame(table)
    if _rating_problem(frame["rating"].to_numpy(np.float64), release).any():
        return None
    if (frame["user_id"].to_numpy() < 1).any() or (frame["movie_id"].to_numpy() < 1).any():
        return None
    return frame


def _diagnosing_parse(
    data: bytes, delimiter: str, release: Release, where: str, on_bad_lines: OnBadLines
) -> ParsedRatings:
    """String parse that locates every bad line; raises on the first, or drops them all."""
    kept_lines, bad_field_lines = _line_index(data, delimiter.encode(), release.has_header)
    try:
        table, invalid = _read_table(data, delimiter, release.has_header, typed=False)
    except pa.ArrowInvalid as exc:
        raise MalformedRatingsError(
            f"{where}: cannot be parsed ({exc}). Is it the ratings file of {release.name}?"
        ) from exc
    if table.num_rows != len(kept_lines) or invalid != len(bad_field_lines):
        raise MalformedRatingsError(
            f"{where}: cannot be parsed as {len(COLUMNS)} fields separated by "
            f"{release.separator!r}. Is it the ratings file of {release.name}?"
        )
    reasons: dict[int, str] = dict.fromkeys(
        bad_field_lines.tolist(),
        f"expected {len(COLUMNS)} fields separated by {release.separator!r}",
    )
    valid = np.ones(table.num_rows, dtype=bool)
    for name in COLUMNS:
        column = pc.utf8_trim_whitespace(table[name])
        # The patterns accept an explicit `+`, which pyarrow's cast to numbers does not.
        column = pc.replace_substring_regex(column, pattern=r"^\+", replacement="")
        pattern = _INT_PATTERN if name in _INT_COLUMNS else _FLOAT_PATTERN
        ok = pc.match_substring_regex(column, pattern).to_numpy(zero_copy_only=False)
        for line in kept_lines[~ok & valid][:1].tolist():
            what = "an integer" if name in _INT_COLUMNS else "a number"
            reasons.setdefault(line, f"{name} is not {what}")
        valid &= ok
        table = table.set_column(table.schema.get_field_index(name), name, column)
    good = table.filter(pa.array(valid))
    numbers = {
        "user_id": pc.cast(good["user_id"], pa.int64()),
        "movie_id": pc.cast(good["movie_id"], pa.int64()),
        "rating": pc.cast(good["rating"], pa.float64()),
        "timestamp": pc.cast(good["timestamp"], pa.int64()),
    }
    frame = _to_frame(pa.table(numbers))
    good_lines = kept_lines[valid]
    # MovieLens ids start at 1 (its READMEs): 0 or a negative id is a malformed line.
    bad_id = np.zeros(len(frame), dtype=bool)
    for name in ("user_id", "movie_id"):
        not_positive = ~bad_id & (frame[name].to_numpy() < 1)
        for line in good_lines[not_positive][:1].tolist():
            reasons.setdefault(line, f"{name} is not a positive integer (MovieLens ids start at 1)")
        bad_id |= not_positive
    out_of_scale = ~bad_id & _rating_problem(numbers["rating"].to_numpy(), release)
    for line in good_lines[out_of_scale][:1].tolist():
        reasons.setdefault(
            line,
            f"rating outside the {release.name} scale {release.rating_min:g}..{release.rating_max:g} "
            f"in steps of {release.rating_step:g}",
        )
    skipped = (
        len(bad_field_lines) + int((~valid).sum()) + int(bad_id.sum()) + int(out_of_scale.sum())
    )
    if skipped and on_bad_lines == "error":
        line = min(reasons)
        raise MalformedRatingsError(
            f"{where}, line {line}: {reasons[line]}: {_line_text(data, line, release.separator)!r} "
            f"({skipped} bad line(s) in all). Fix or re-download the file, or set "
            f"`data.on_bad_lines: skip` to drop bad lines."
        )
    if skipped:
        logger.warning("Skipped %d bad line(s) of %s (data.on_bad_lines: skip)", skipped, where)
    frame = frame[~(bad_id | out_of_scale)].reset_index(drop=True)
    return ParsedRatings(frame, skipped, int(out_of_scale.sum()))


def parse_ratings_bytes(
    data: bytes, release: Release, where: str, on_bad_lines: OnBadLines = "error"
) -> ParsedRatings:
    """Parse a ratings file's bytes in the release's format into canonical columns and dtypes."""
    if on_bad_lines not in ("error", "skip"):
        raise MalformedRatingsError(
            f"data.on_bad_lines is {on_bad_lines!r}; it must be 'error' or 'skip'."
        )
    if not data.strip():
        raise MalformedRatingsError(f"{where} holds no ratings. Is it the right file?")
    if b"\x00" in data[:_SNIFF_BYTES]:
        # Text never holds a NUL byte: printing such "lines" would only show binary noise.
        raise MalformedRatingsError(
            f"{where} is a binary file, not a text ratings file of {release.name}. Point "
            f"data.path at the official {release.archive_name}, the folder extracted from it, or "
            f"its {release.member_name}."
        )
    delimiter = release.separator
    if len(delimiter) > 1:
        # pyarrow's C reader takes one-byte delimiters: `::` becomes a byte absent from the data.
        data = data.replace(delimiter.encode(), _SUBSTITUTE)
        delimiter = _SUBSTITUTE.decode()
    fast = _fast_parse(data, delimiter, release)
    result = (
        ParsedRatings(fast, 0)
        if fast is not None
        else _diagnosing_parse(data, delimiter, release, where, on_bad_lines)
    )
    if result.ratings.empty:
        raise MalformedRatingsError(f"{where} holds no ratings. Is it the right file?")
    return result


def read_ratings(
    location: RatingsLocation, release: Release, on_bad_lines: OnBadLines = "error"
) -> ParsedRatings:
    """Read and validate a release's ratings from a zip member, an extracted folder or a file."""
    data = read_member_bytes(location)
    return parse_ratings_bytes(data, release, location.display, on_bad_lines)
