"""Parsing of each release's ratings format, and its validation errors."""

from __future__ import annotations

import numpy as np
import pytest

from memory_efficient_embeddings.ingest import (
    RELEASES,
    MalformedRatingsError,
    RatingsLocation,
    parse_ratings_bytes,
    read_ratings,
)

from .helpers import ROWS, make_zip, ratings_text


@pytest.mark.parametrize("name", ["ml-100k", "ml-1m", "ml-10m", "ml-20m", "ml-25m"])
def test_each_format_parses_in_place_from_zip(tmp_path, name):
    release = RELEASES[name]
    path = make_zip(tmp_path, release, ratings_text(release))
    parsed = read_ratings(RatingsLocation(path, release.member, "zip"), release)
    frame = parsed.ratings
    assert list(frame.columns) == ["user_id", "movie_id", "rating", "timestamp"]
    assert [str(t) for t in frame.dtypes] == ["int64", "int64", "float32", "int64"]
    assert frame.to_numpy().tolist() == [list(map(float, r)) for r in ROWS]
    assert parsed.skipped_lines == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [release.archive_name]  # never extracted


def test_crlf_and_half_stars():
    release = RELEASES["ml-20m"]
    data = b"userId,movieId,rating,timestamp\r\n1,2,3.5,10\r\n4,5,0.5,11\r\n"
    frame = parse_ratings_bytes(data, release, "x.csv").ratings
    assert frame["rating"].tolist() == [3.5, 0.5]


def _error(data: bytes, name: str = "ml-1m") -> str:
    with pytest.raises(MalformedRatingsError) as info:
        parse_ratings_bytes(data, RELEASES[name], "archive.zip!ml-1m/ratings.dat")
    return str(info.value)


def test_malformed_line_names_file_and_line():
    message = _error(b"1::10::5::100\n1::20::3::101\n2::10::4\n3::30::1::103\n")
    assert "archive.zip!ml-1m/ratings.dat" in message
    assert "line 3" in message
    assert "2::10::4" in message
    assert "on_bad_lines: skip" in message


def test_non_integer_id():
    message = _error(b"1::10::5::100\n1::abc::3::101\n")
    assert "line 2" in message
    assert "movie_id is not an integer" in message


def test_rating_out_of_scale():
    message = _error(b"1::10::5::100\n1::20::3::101\n2::10::6::102\n")
    assert "line 3" in message
    assert "rating outside" in message


def test_half_star_invalid_for_whole_star_release():
    assert "line 1" in _error(b"1\t10\t3.5\t100\n", "ml-100k")


def test_header_counts_as_line_one():
    message = _error(b"userId,movieId,rating,timestamp\n1,2,3.0,4\n1,x,3.0,4\n", "ml-25m")
    assert "line 3" in message


def test_first_bad_line_is_reported():
    message = _error(b"1::10::5::100\n1::x::3::101\n2::10\n")
    assert "line 2" in message
    assert "2 bad line(s)" in message


def test_skip_mode_counts_skipped_lines(caplog):
    data = b"1::10::5::100\n1::x::3::101\n2::10\n\n3::30::9::103\n4::40::2::104\n"
    parsed = parse_ratings_bytes(data, RELEASES["ml-1m"], "f", on_bad_lines="skip")
    assert parsed.skipped_lines == 3
    assert parsed.ratings["user_id"].tolist() == [1, 4]
    assert "Skipped 3 bad line(s)" in caplog.text


def test_blank_lines_are_ignored():
    frame = parse_ratings_bytes(b"1\t2\t3\t4\n\n5\t6\t1\t8\n", RELEASES["ml-100k"], "f").ratings
    assert frame["user_id"].tolist() == [1, 5]


def test_invalid_on_bad_lines_option():
    with pytest.raises(MalformedRatingsError, match="on_bad_lines"):
        parse_ratings_bytes(b"1\t2\t3\t4\n", RELEASES["ml-100k"], "f", on_bad_lines="warn")


def test_empty_file():
    with pytest.raises(MalformedRatingsError, match="no ratings"):
        parse_ratings_bytes(b"", RELEASES["ml-100k"], "f")


def test_large_file_is_fast():
    rng = np.random.default_rng(0)
    n = 200_000
    cols = [
        rng.integers(1, 6000, n),
        rng.integers(1, 4000, n),
        rng.integers(1, 6, n),
        rng.integers(1, 10**9, n),
    ]
    data = "\n".join("::".join(map(str, row)) for row in zip(*cols, strict=True)).encode()
    frame = parse_ratings_bytes(data, RELEASES["ml-1m"], "f").ratings
    assert len(frame) == n
    assert frame["movie_id"].to_numpy().tolist() == cols[1].tolist()


def test_header_only_file():
    with pytest.raises(MalformedRatingsError, match="no ratings|cannot be parsed"):
        parse_ratings_bytes(b"userId,movieId,rating,timestamp\n", RELEASES["ml-25m"], "f")
