"""The checksum paths, answer by answer: which files are checked, what a match and a mismatch
give under `verify_checksum` true and false, the messages, and the download's verification.

MD5s are computed here with hashlib over the bytes written (the oracle), never with file_md5.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import urllib.error
import urllib.request
from dataclasses import replace
from pathlib import Path

import pytest

from memory_efficient_embeddings.ingest import RELEASES, load_ratings
from memory_efficient_embeddings.ingest import archive as archive_module
from memory_efficient_embeddings.ingest.archive import (
    RatingsLocation,
    checksum_message,
    download,
    file_md5,
    find_local,
    resolve_user_path,
)
from memory_efficient_embeddings.ingest.errors import (
    ChecksumMismatchError,
    DownloadError,
    NetworkUnavailableError,
)
from memory_efficient_embeddings.ingest.sources import _archive_md5

from .helpers import make_zip, ratings_text

ML_1M = RELEASES["ml-1m"]


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def _params(tmp_path: Path, **extra) -> dict:
    return {"dataset": "ml-1m", "source": "movielens", "raw_dir": str(tmp_path / "raw"), **extra}


def test_file_md5_is_the_md5_of_every_byte_across_chunks(tmp_path) -> None:
    # 2.5 chunks of 1 MiB: a digest of the first chunk only, or of a fixed-size prefix, differs.
    data = os.urandom(5 * (1 << 19))
    path = tmp_path / "blob"
    path.write_bytes(data)
    assert file_md5(path) == _md5(data)
    assert file_md5(str(path)) == _md5(data)
    (tmp_path / "empty").write_bytes(b"")
    assert file_md5(tmp_path / "empty") == "d41d8cd98f00b204e9800998ecf8427e"


def test_the_mismatch_message_gives_both_sums_and_the_remedy_for_whose_file_it_is(
    tmp_path,
) -> None:
    path = tmp_path / "ml-1m.zip"
    facts = (
        f"has MD5 {'0' * 32}, but the published MD5 of ml-1m.zip is {ML_1M.md5}: the file is "
        "incomplete, corrupt or not the official release."
    )
    # A file the project found in raw_dir (the default) may be deleted and downloaded again.
    assert checksum_message(path, ML_1M, "0" * 32) == (
        f"{path} {facts} Delete it to download a fresh copy, or, to use your own copy "
        "deliberately, set `data.verify_checksum: false` (e.g. in conf/local/parameters.yml)."
    )
    # A file the user pointed at is theirs: check it, never delete it.
    assert checksum_message(path, ML_1M, "0" * 32, user_path=True) == (
        f"{path} (parameter data.path) {facts} If it is your own copy and you mean to use it, "
        "set `data.verify_checksum: false` (e.g. in conf/local/parameters.yml); otherwise point "
        "data.path at the official ml-1m.zip, or set data.path to null to download it into "
        "data/01_raw/."
    )


@pytest.mark.parametrize("verify", [True, False])
@pytest.mark.parametrize("kind", ["folder", "file"])
def test_extracted_copies_have_no_checksum_and_are_never_hashed(
    tmp_path, monkeypatch, caplog, kind, verify
) -> None:
    def no_hashing(path):
        raise AssertionError("an extracted copy has no archive to hash")

    monkeypatch.setattr("memory_efficient_embeddings.ingest.sources.file_md5", no_hashing)
    location = RatingsLocation(tmp_path, "ratings.dat", kind)
    with caplog.at_level(logging.INFO, logger="memory_efficient_embeddings.ingest.sources"):
        assert _archive_md5(location, ML_1M, verify) == (None, False)
    assert f"{location.display} is an extracted copy" in caplog.text


@pytest.mark.parametrize("verify", [True, False])
@pytest.mark.parametrize("user_path", [True, False])
def test_a_zip_with_the_published_md5_is_verified_whatever_the_flags(
    tmp_path, monkeypatch, verify, user_path
) -> None:
    path = make_zip(tmp_path, ML_1M, ratings_text(ML_1M))
    published = _md5(path.read_bytes())
    release = replace(ML_1M, md5=published)
    location = RatingsLocation(path, release.member, "zip")
    assert _archive_md5(location, release, verify, user_path) == (published, True)


@pytest.mark.parametrize("user_path", [True, False])
def test_a_mismatch_is_refused_when_verifying_with_the_message_for_whose_file_it_is(
    tmp_path, user_path
) -> None:
    path = make_zip(tmp_path, ML_1M, ratings_text(ML_1M))
    location = RatingsLocation(path, ML_1M.member, "zip")
    with pytest.raises(ChecksumMismatchError) as caught:
        _archive_md5(location, ML_1M, True, user_path)
    assert str(caught.value) == checksum_message(path, ML_1M, _md5(path.read_bytes()), user_path)


def test_a_mismatch_is_used_with_a_warning_when_not_verifying(tmp_path, caplog) -> None:
    path = make_zip(tmp_path, ML_1M, ratings_text(ML_1M))
    actual = _md5(path.read_bytes())
    location = RatingsLocation(path, ML_1M.member, "zip")
    with caplog.at_level(logging.WARNING):
        assert _archive_md5(location, ML_1M, False) == (actual, False)
    assert (
        f"{path} has MD5 {actual}, not the published {ML_1M.md5}; using it anyway "
        "(data.verify_checksum: false)." in caplog.text
    )


def test_load_ratings_verifies_by_default_and_says_whose_file_it_is(tmp_path) -> None:
    (tmp_path / "raw").mkdir()
    own = make_zip(tmp_path, ML_1M, ratings_text(ML_1M))
    in_raw = make_zip(tmp_path / "raw", ML_1M, ratings_text(ML_1M))
    # No verify_checksum key at all: verification is on.
    with pytest.raises(ChecksumMismatchError, match=r"\(parameter data\.path\)"):
        load_ratings(_params(tmp_path, path=str(own)))
    with pytest.raises(ChecksumMismatchError, match="Delete it to download") as caught:
        load_ratings(_params(tmp_path))
    assert str(caught.value).startswith(f"{in_raw} has MD5")
    ratings, provenance = load_ratings(_params(tmp_path, verify_checksum=False))
    assert (provenance["md5"], provenance["checksum_verified"]) == (
        _md5(in_raw.read_bytes()),
        False,
    )
    assert provenance["description"] == (
        f"MovieLens ml-1m (md5 {_md5(in_raw.read_bytes())}), {len(ratings)} ratings"
    )


def test_a_bare_ratings_file_loads_without_a_checksum_even_when_verifying(tmp_path) -> None:
    path = tmp_path / "my_ratings.dat"
    path.write_text(ratings_text(ML_1M))
    ratings, provenance = load_ratings(_params(tmp_path, path=str(path), verify_checksum=True))
    assert len(ratings) == 4
    assert (provenance["md5"], provenance["checksum_verified"]) == (None, False)
    assert provenance["archive"] == "my_ratings.dat"
    assert provenance["description"] == (
        "MovieLens ml-1m (extracted folder, no checksum), 4 ratings"
    )


def test_user_paths_resolve_to_zip_folder_or_file(tmp_path) -> None:
    release = RELEASES["ml-10m"]  # its folder (ml-10M100K) is not named like the release
    real_zip = make_zip(tmp_path, release, ratings_text(release))
    renamed = tmp_path / "download.bin"  # a zip, whatever its name says
    renamed.write_bytes(real_zip.read_bytes())
    named_zip = tmp_path / "broken.zip"  # named .zip, not a zip: opened as one, to say so
    named_zip.write_bytes(b"<html>")
    folder = tmp_path / "ml-10M100K"
    folder.mkdir()
    (folder / "ratings.dat").write_text("x")
    assert resolve_user_path(real_zip, release) == RatingsLocation(real_zip, release.member, "zip")
    assert resolve_user_path(renamed, release).kind == "zip"
    assert resolve_user_path(named_zip, release) == RatingsLocation(
        named_zip, release.member, "zip"
    )
    # The extracted top folder holds ratings.dat; its parent holds ml-10M100K/ratings.dat.
    assert resolve_user_path(folder, release) == RatingsLocation(folder, "ratings.dat", "folder")
    assert resolve_user_path(str(tmp_path), release) == RatingsLocation(
        tmp_path, release.member, "folder"
    )
    plain = folder / "ratings.dat"
    assert resolve_user_path(plain, release) == RatingsLocation(plain, "ratings.dat", "file")


def test_raw_dir_prefers_the_zip_then_each_folder_name_with_the_ratings(tmp_path) -> None:
    release = RELEASES["ml-10m"]
    raw = tmp_path / "raw"
    assert find_local(release, raw) is None  # no raw_dir at all
    (raw / "ml-10m").mkdir(parents=True)  # named like the release, but without the ratings
    assert find_local(release, raw) is None
    (raw / "ml-10M100K").mkdir()
    (raw / "ml-10M100K" / "ratings.dat").write_text("x")
    assert find_local(release, str(raw)) == RatingsLocation(
        raw / "ml-10M100K", "ratings.dat", "folder"
    )
    (raw / "ml-10m" / "ratings.dat").write_text("x")  # the first name in folder_names wins
    assert find_local(release, raw) == RatingsLocation(raw / "ml-10m", "ratings.dat", "folder")
    archive = make_zip(raw, release, ratings_text(release))
    assert find_local(release, raw) == RatingsLocation(archive, release.member, "zip")


class _ChunkedResponse(io.BytesIO):
    """A response that hands over at most 1,000 bytes per read, noting what `raw` holds."""

    def __init__(self, payload: bytes, watched: Path | None = None) -> None:
        super().__init__(payload)
        self.headers = {"Content-Length": str(len(payload))}
        self.watched = watched
        self.seen_in_watched: set[str] = set()

    def read1(self, size: int = -1) -> bytes:
        if self.watched is not None and self.watched.is_dir():
            self.seen_in_watched |= set(os.listdir(self.watched))
        return super().read1(min(size, 1000) if size and size > 0 else 1000)


def _serve(monkeypatch, payload: bytes, seen: list, watched: Path | None = None) -> list:
    responses: list[_ChunkedResponse] = []

    def urlopen(url, timeout):
        seen.append((url, timeout))
        responses.append(_ChunkedResponse(payload, watched))
        return responses[-1]

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    return responses


def test_a_verified_download_is_the_payload_byte_for_byte(tmp_path, monkeypatch) -> None:
    payload = os.urandom(4321)  # five reads of at most 1,000 bytes
    release = replace(ML_1M, md5=_md5(payload))
    seen: list = []
    raw = tmp_path / "fresh" / "raw"  # made on the way, parents included
    responses = _serve(monkeypatch, payload, seen, watched=raw)
    target = download(release, raw, timeout_s=9, progress=False)
    assert target == raw / "ml-1m.zip"
    assert target.read_bytes() == payload
    assert os.listdir(raw) == ["ml-1m.zip"]  # no temporary file left beside it
    assert seen == [(release.url, 9)]
    (response,) = responses
    # While it downloads, the partial file sits beside the target (the final rename is atomic),
    # hidden and marked as partial; the target itself appears only when verified.
    (partial,) = response.seen_in_watched
    assert partial.startswith(".ml-1m.zip.") and partial.endswith(".part")


def test_the_download_shows_a_progress_bar_unless_told(tmp_path, monkeypatch) -> None:
    bars = []

    class Bar:
        def __init__(self, **kwargs):
            bars.append(kwargs)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def update(self, n):
            pass

    payload = os.urandom(2000)
    monkeypatch.setattr(archive_module, "tqdm", Bar)
    _serve(monkeypatch, payload, [])
    release = replace(ML_1M, md5=_md5(payload))
    download(release, tmp_path / "a", timeout_s=5)
    download(release, tmp_path / "b", timeout_s=5, progress=False)
    assert [(bar["disable"], bar["total"], bar["desc"]) for bar in bars] == [
        (False, 2000, "ml-1m.zip"),
        (True, 2000, "ml-1m.zip"),
    ]


def test_no_network_names_the_reason_and_where_to_put_the_archive(tmp_path, monkeypatch) -> None:
    def offline(url, timeout):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(NetworkUnavailableError) as caught:
        download(ML_1M, tmp_path / "raw", timeout_s=5, progress=False)
    assert str(caught.value) == (
        f"Could not download {ML_1M.url} (Name or service not known). Download it by other "
        f"means and put it at {tmp_path / 'raw' / 'ml-1m.zip'}, or set data.path to your copy."
    )


def test_a_download_with_another_md5_is_discarded_or_kept_as_verify_says(
    tmp_path, monkeypatch
) -> None:
    payload = b"a mirror's re-packed archive" * 100
    _serve(monkeypatch, payload, [])
    raw = tmp_path / "raw"
    with pytest.raises(ChecksumMismatchError) as caught:
        download(ML_1M, raw, timeout_s=5, progress=False)
    assert str(caught.value) == (
        f"The download of {ML_1M.url} has MD5 {_md5(payload)}, not the published {ML_1M.md5}; "
        f"it was discarded. Try again later, or fetch the archive yourself and put it at "
        f"{raw / 'ml-1m.zip'}."
    )
    assert os.listdir(raw) == []
    target = download(ML_1M, raw, timeout_s=5, verify_checksum=False, progress=False)
    assert target.read_bytes() == payload
    assert os.listdir(raw) == ["ml-1m.zip"]


def test_a_download_that_cannot_be_written_is_a_download_error(tmp_path, monkeypatch) -> None:
    _serve(monkeypatch, b"x" * 5000, [])

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(archive_module, "_transfer_with_deadline", full_disk)
    with pytest.raises(DownloadError, match=r"check that the folder is writable") as caught:
        download(ML_1M, tmp_path / "raw", timeout_s=5, progress=False)
    assert f"into {tmp_path / 'raw'} (" in str(caught.value)
    assert os.listdir(tmp_path / "raw") == []


def test_load_ratings_downloads_with_its_parameters_and_verifies(tmp_path, monkeypatch) -> None:
    payload = make_zip(tmp_path, ML_1M, ratings_text(ML_1M)).read_bytes()
    monkeypatch.setitem(RELEASES, "ml-1m", replace(ML_1M, md5=_md5(payload)))
    seen: list = []
    _serve(monkeypatch, payload, seen)
    _, provenance = load_ratings(_params(tmp_path, download_timeout_s=3))
    assert seen == [(ML_1M.url, 3.0)]
    assert (provenance["md5"], provenance["checksum_verified"]) == (_md5(payload), True)
    assert provenance["archive"] == "ml-1m.zip"
    # The default timeout when the key is left out: 60 s.
    (tmp_path / "raw" / "ml-1m.zip").unlink()
    params = _params(tmp_path)
    load_ratings(params)
    assert seen[-1] == (ML_1M.url, 60.0)
