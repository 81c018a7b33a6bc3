"""MovieLens inputs that used to pass silently or fail obscurely: repeated pairs, ids below 1, a bare
u.data path, a .tar.gz or other binary file at data.path."""

from __future__ import annotations

import io
import logging
import tarfile

import pytest

from memory_efficient_embeddings.ingest import (
    RELEASES,
    MalformedRatingsError,
    UnsupportedArchiveError,
    load_ratings,
)
from memory_efficient_embeddings.pipelines.data_processing.nodes import ingest_movies

ML100K = RELEASES["ml-100k"]


def _u_data(tmp_path, lines: list[str]):
    path = tmp_path / "u.data"
    path.write_text("".join(f"{line}\n" for line in lines))
    return path


def _params(path, **extra):
    return {"dataset": "ml-100k", "source": "movielens", "path": str(path), **extra}


def test_a_repeated_pair_keeps_its_last_row_and_is_counted(tmp_path) -> None:
    path = _u_data(tmp_path, ["1\t10\t5\t100", "2\t10\t4\t101", "1\t10\t2\t102", "1\t20\t3\t103"])
    ratings, provenance = load_ratings(_params(path))
    assert ratings[["user_id", "movie_id", "rating", "timestamp"]].values.tolist() == [
        [2, 10, 4, 101],
        [1, 10, 2, 102],
        [1, 20, 3, 103],
    ]
    assert (provenance["duplicates_dropped"], provenance["rows_kept"]) == (1, 3)
    assert provenance["num_ratings"] == 3


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("0\t10\t5\t100", "user_id is not a positive integer (MovieLens ids start at 1)"),
        ("3\t-7\t5\t100", "movie_id is not a positive integer (MovieLens ids start at 1)"),
    ],
)
def test_ids_below_one_are_malformed_lines(tmp_path, line, reason) -> None:
    path = _u_data(tmp_path, ["1\t10\t5\t100", line])
    with pytest.raises(MalformedRatingsError) as info:
        load_ratings(_params(path))
    assert f"line 2: {reason}" in str(info.value)
    _, provenance = load_ratings(_params(path, on_bad_lines="skip"))
    assert (provenance["bad_rows_skipped"], provenance["rows_kept"]) == (1, 1)


def test_a_bare_u_data_gets_ids_as_titles_with_an_info_line(tmp_path, caplog) -> None:
    path = _u_data(tmp_path, ["1\t10\t5\t100", "2\t3\t4\t101"])
    data = _params(path)
    ratings, provenance = load_ratings(data)
    with caplog.at_level(logging.INFO):
        items = ingest_movies(data, provenance, ratings)
    assert items.to_dict("list") == {
        "movie_id": ["movie_3", "movie_10"],
        "title": ["item 3", "item 10"],
        "genres": ["", ""],
    }
    assert "No u.item beside the ratings" in caplog.text
    # With its u.item beside it, the titles are read as before.
    (tmp_path / "u.item").write_bytes(
        b"10|Ten (1995)|01-Jan-1995||http://x|0|0|0|0|0|0|0|0|1|0|0|0|0|0|0|0|0|0|0\n"
    )
    assert ingest_movies(data, provenance, ratings)["title"].tolist() == ["Ten (1995)"]


def _tar_gz(path, member: str, text: str):
    payload = text.encode()
    with tarfile.open(path, "w:gz") as archive:
        info = tarfile.TarInfo(member)
        info.size = len(payload)
        archive.addfile(info, io.BytesIO(payload))
    return path


def test_a_tar_gz_is_named_as_such_without_binary_noise(tmp_path) -> None:
    path = _tar_gz(tmp_path / "ml-100k.tar.gz", "ml-100k/u.data", "1\t10\t5\t100\n")
    with pytest.raises(UnsupportedArchiveError) as info:
        load_ratings(_params(path, verify_checksum=False))
    message = str(info.value)
    assert message.startswith(f"data.path {path} is a .tar.gz, not a zip: ")
    assert "Extract it and point data.path at the extracted folder (or its u.data)" in message
    assert message.isprintable()


def test_a_plain_tar_and_a_binary_file_are_named_too(tmp_path) -> None:
    plain = tmp_path / "ml-100k.tar"
    with tarfile.open(plain, "w") as archive:
        archive.add(_u_data(tmp_path, ["1\t10\t5\t100"]), arcname="ml-100k/u.data")
    with pytest.raises(UnsupportedArchiveError, match=r"is a .tar, not a zip"):
        load_ratings(_params(plain))
    binary = tmp_path / "ratings.bin"
    binary.write_bytes(b"1\t10\t5\t100\n\x00\x01\x02garbage\n")
    with pytest.raises(MalformedRatingsError) as info:
        load_ratings(_params(binary))
    assert str(info.value).startswith(f"{binary} is a binary file, not a text ratings file")
    assert str(info.value).isprintable()
