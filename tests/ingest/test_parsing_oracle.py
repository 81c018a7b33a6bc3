"""The fast parser against a naive line-by-line parser, on random files with planted bad lines."""

from __future__ import annotations

import ast
import re

import numpy as np
import pytest

from memory_efficient_embeddings.ingest import RELEASES, MalformedRatingsError, Release
from memory_efficient_embeddings.ingest.parsing import parse_ratings_bytes

COLUMNS = ("user_id", "movie_id", "rating", "timestamp")


def _reason(fields: list[str], release: Release) -> str | None:
    """Why a line of four fields is bad (checked in order: formats, ids, scale), or None."""
    for name, field in zip(COLUMNS, fields, strict=True):
        if name == "rating":
            ok = re.fullmatch(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?", field)
        else:
            ok = re.fullmatch(r"[+-]?\d{1,18}", field)
        if not ok:
            return f"{name} is not {'a number' if name == 'rating' else 'an integer'}"
    for name, field in zip(COLUMNS[:2], fields[:2], strict=True):
        if int(field) < 1:
            return f"{name} is not a positive integer (MovieLens ids start at 1)"
    rating = float(fields[2])
    steps = (rating - release.rating_min) / release.rating_step
    if not (release.rating_min <= rating <= release.rating_max) or steps != round(steps):
        return (
            f"rating outside the {release.name} scale {release.rating_min:g}.."
            f"{release.rating_max:g} in steps of {release.rating_step:g}"
        )
    return None


def _naive_parse(text: str, release: Release) -> tuple[list[tuple], list[tuple[int, str]]]:
    """Good rows, and (line number, reason) of each bad line, one line at a time."""
    rows, bad = [], []
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines = lines[:-1]
    for number, raw in enumerate(lines, start=1):
        line = raw.removesuffix("\r")
        if (number == 1 and release.has_header) or line == "":
            continue
        fields = [field.strip() for field in line.split(release.separator)]
        if len(fields) != 4:
            bad.append((number, f"expected 4 fields separated by {release.separator!r}"))
            continue
        reason = _reason(fields, release)
        if reason is None:
            rows.append((int(fields[0]), int(fields[1]), float(fields[2]), int(fields[3])))
        else:
            bad.append((number, reason))
    return rows, bad


def _good_fields(rng: np.random.Generator, release: Release) -> list[str]:
    steps = int((release.rating_max - release.rating_min) / release.rating_step)
    rating = release.rating_min + release.rating_step * int(rng.integers(0, steps + 1))
    return [
        str(rng.integers(1, 7000)),
        str(rng.integers(1, 70000)),
        f"{rating:g}",
        str(rng.integers(9 * 10**8, 2 * 10**9)),
    ]


# Each turns good fields into a bad line (or, for the last ones, an odd but valid one).
MUTATIONS = [
    lambda f, s: s.join(f[:3]),  # a field missing
    lambda f, s: s.join([*f, "7"]),  # one field too many
    lambda f, s: s.join(["abc", *f[1:]]),  # user id not an integer
    lambda f, s: s.join([f[0], "1.5", *f[2:]]),  # movie id not an integer
    lambda f, s: s.join(["0", *f[1:]]),  # user id 0: MovieLens ids start at 1
    lambda f, s: s.join([f[0], "-4", *f[2:]]),  # a negative movie id
    lambda f, s: s.join(["-0", "0", "9", f[3]]),  # both ids and the rating bad: the first named
    lambda f, s: s.join([*f[:2], "x", f[3]]),  # rating not a number
    lambda f, s: s.join([*f[:3], "12:30"]),  # timestamp not an integer
    lambda f, s: s.join([*f[:2], "6", f[3]]),  # above the scale
    lambda f, s: s.join([*f[:2], "0", f[3]]),  # below the scale
    lambda f, s: s.join([*f[:2], "-1", f[3]]),  # below the scale
    lambda f, s: s.join([*f[:2], "2.25", f[3]]),  # off every release's step
    lambda f, s: s.join([*f[:2], "3.5", f[3]]),  # a half star: bad for ml-100k and ml-1m only
    lambda f, s: "",  # a blank line
    lambda f, s: s.join([f" {f[0]}", *f[1:]]) + "\r",  # spaces and a CRLF ending
    lambda f, s: s.join([f"+{f[0]}", *f[1:]]),  # an explicit sign
]


def _random_file(seed: int, release: Release, bad_share: float) -> str:
    rng = np.random.default_rng(seed)
    lines = ["userId,movieId,rating,timestamp"] if release.has_header else []
    for _ in range(300):
        fields = _good_fields(rng, release)
        if rng.random() < bad_share:
            lines.append(MUTATIONS[int(rng.integers(len(MUTATIONS)))](fields, release.separator))
        else:
            lines.append(release.separator.join(fields))
    return "\n".join(lines) + ("\n" if seed % 2 else "")  # with and without a final newline


@pytest.mark.parametrize("name", sorted(RELEASES))
@pytest.mark.parametrize("seed", [1, 2])
def test_skip_mode_keeps_exactly_the_lines_a_naive_parser_keeps(name, seed) -> None:
    release = RELEASES[name]
    text = _random_file(seed, release, bad_share=0.3)
    rows, bad = _naive_parse(text, release)
    parsed = parse_ratings_bytes(text.encode(), release, "f", on_bad_lines="skip")
    assert parsed.skipped_lines == len(bad) > 0
    frame = parsed.ratings
    assert list(frame.itertuples(index=False, name=None)) == rows
    assert [str(dtype) for dtype in frame.dtypes] == ["int64", "int64", "float32", "int64"]


@pytest.mark.parametrize("name", sorted(RELEASES))
@pytest.mark.parametrize("seed", [3, 4, 5, 6])
def test_error_mode_reports_the_first_bad_line_and_its_reason(name, seed) -> None:
    release = RELEASES[name]
    text = _random_file(seed, release, bad_share=0.02)
    _, bad = _naive_parse(text, release)
    if not bad:
        assert parse_ratings_bytes(text.encode(), release, "f").skipped_lines == 0
        return
    line, reason = bad[0]
    shown = text.split("\n")[line - 1].removesuffix("\r")
    with pytest.raises(MalformedRatingsError) as info:
        parse_ratings_bytes(text.encode(), release, "data.zip!ratings")
    assert str(info.value) == (
        f"data.zip!ratings, line {line}: {reason}: {shown!r} ({len(bad)} bad line(s) in all). "
        "Fix or re-download the file, or set `data.on_bad_lines: skip` to drop bad lines."
    )


@pytest.mark.parametrize("name", sorted(RELEASES))
def test_clean_files_parse_fully(name) -> None:
    release = RELEASES[name]
    text = _random_file(8, release, bad_share=0.0)
    rows, bad = _naive_parse(text, release)
    parsed = parse_ratings_bytes(text.encode(), release, "f")
    assert (bad, parsed.skipped_lines) == ([], 0)
    assert list(parsed.ratings.itertuples(index=False, name=None)) == rows


def test_long_bad_lines_are_shortened_in_the_message() -> None:
    release = RELEASES["ml-1m"]
    line = "1::2::3::" + "9" * 200
    with pytest.raises(MalformedRatingsError) as info:
        parse_ratings_bytes(f"1::2::3::4\n{line}\n".encode(), release, "f")
    assert f"{line[:117]}...'" in str(info.value)
    assert "line 2: timestamp is not an integer" in str(info.value)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "^f holds no ratings. Is it the right file\\?$"),
        (b"\n\n  \n", "^f holds no ratings. Is it the right file\\?$"),
    ],
)
def test_empty_files_are_refused(data, message) -> None:
    with pytest.raises(MalformedRatingsError, match=message):
        parse_ratings_bytes(data, RELEASES["ml-1m"], "f")


def test_a_file_of_only_bad_lines_in_skip_mode_has_no_ratings() -> None:
    with pytest.raises(MalformedRatingsError, match="^f holds no ratings"):
        parse_ratings_bytes(b"1::2::9::4\n", RELEASES["ml-1m"], "f", on_bad_lines="skip")


def test_an_unknown_on_bad_lines_value_is_named() -> None:
    with pytest.raises(MalformedRatingsError) as info:
        parse_ratings_bytes(b"1::2::3::4\n", RELEASES["ml-1m"], "f", on_bad_lines="warn")
    assert str(info.value) == "data.on_bad_lines is 'warn'; it must be 'error' or 'skip'."


def _message(data: bytes, name: str = "ml-1m") -> str:
    with pytest.raises(MalformedRatingsError) as info:
        parse_ratings_bytes(data, RELEASES[name], "f")
    return str(info.value)


@pytest.mark.parametrize(
    ("data", "line", "shown"),
    [
        (b"1::2::9::4\n1::2::3::4\n", 1, "1::2::9::4"),  # the first line
        (b"1::2::3::4\n1::2::3", 2, "1::2::3"),  # the last line, without a final newline
        (b"1::2::3::4\n5", 2, "5"),  # a one-character last line
        (b"1::2::3::4\r\n\r\n1::2::9::4\r\n", 3, "1::2::9::4"),  # CRLF, with a blank CRLF line
        (b"\r\n1::2::3::4\r\n7\r\n", 3, "7"),
    ],
)
def test_the_bad_line_is_located_and_shown_as_written(data, line, shown) -> None:
    assert f"f, line {line}: " in _message(data)
    assert f": {shown!r} (1 bad line(s) in all)" in _message(data)


def test_crlf_files_with_blank_lines_parse_like_lf_files() -> None:
    lf = b"1::2::3::4\n\n5::6::1::8\n"
    crlf = lf.replace(b"\n", b"\r\n")
    for data in (lf, crlf, b"\r\n" + crlf):
        parsed = parse_ratings_bytes(data, RELEASES["ml-1m"], "f")
        assert parsed.ratings["user_id"].tolist() == [1, 5]


@pytest.mark.parametrize(("length", "shown_length"), [(120, 120), (121, 120)])
def test_lines_longer_than_120_characters_are_shortened(length, shown_length) -> None:
    line = "1::2::3::" + "9" * (length - 9)
    message = _message(f"1::2::3::4\n{line}\n".encode())
    shown = message.split(": ", 2)[2].split(" (1 bad")[0]
    assert len(ast.literal_eval(shown)) == shown_length
    assert ast.literal_eval(shown).endswith("...") == (length > 120)


def test_quotes_and_empty_fields_are_bad_lines() -> None:
    release = RELEASES["ml-25m"]
    header = b"userId,movieId,rating,timestamp\n"
    assert "line 2: movie_id is not an integer" in _message(header + b'1,"2",3,4\n', "ml-25m")
    assert "line 2: movie_id is not an integer" in _message(header + b"1,,3,4\n", "ml-25m")
    assert "line 3: rating is not a number" in _message(header + b"1,2,3,4\n1,2,,4\n", "ml-25m")
    parsed = parse_ratings_bytes(
        header + b'1,2,3,4\n1,"2",3,4\n', release, "f", on_bad_lines="skip"
    )
    assert (len(parsed.ratings), parsed.skipped_lines) == (1, 1)


def test_bare_carriage_returns_are_refused_as_a_whole() -> None:
    # Old Mac line endings: the reader and the line count disagree, so no line can be named.
    assert _message(b"1::2::3::4\r5::6::7\r") == (
        "f: cannot be parsed as 4 fields separated by '::'. Is it the ratings file of ml-1m?"
    )


def test_undecodable_text_is_refused_as_a_whole() -> None:
    message = _message(b"1::2::9::4\n\xff\xfe::2::3::4\n")
    assert message.startswith("f: cannot be parsed (")
    assert message.endswith("). Is it the ratings file of ml-1m?")
