"""Locating, opening and downloading archives, and the errors on bad ones."""

from __future__ import annotations

import io
import urllib.error
import urllib.request

import pytest

from memory_efficient_embeddings.ingest import (
    RELEASES,
    ArchiveNotFoundError,
    ChecksumMismatchError,
    CorruptArchiveError,
    MemberNotFoundError,
    NetworkUnavailableError,
    RatingsLocation,
    download,
    find_local,
    load_ratings,
    read_ratings,
    resolve_user_path,
)

from .helpers import make_zip, md5, ratings_text, trusting


def _params(tmp_path, **extra):
    return {"dataset": "ml-1m", "source": "movielens", "raw_dir": str(tmp_path / "raw"), **extra}


def test_raw_dir_zip_with_published_md5_is_verified(tmp_path, monkeypatch):
    raw = tmp_path / "raw"
    raw.mkdir()
    path = make_zip(raw, RELEASES["ml-1m"], ratings_text(RELEASES["ml-1m"]))
    trusting("ml-1m", path, monkeypatch)
    ratings, provenance = load_ratings(_params(tmp_path))
    assert len(ratings) == 4
    assert provenance["checksum_verified"] is True
    assert provenance["md5"] == md5(path)
    assert provenance["archive"] == "ml-1m.zip"
    assert provenance["num_users"] == 3
    assert provenance["num_movies"] == 3
    assert provenance["bad_rows_skipped"] == 0


def test_checksum_mismatch_strict_refuses_and_lenient_accepts(tmp_path):
    release = RELEASES["ml-1m"]
    path = make_zip(tmp_path, release, ratings_text(release))
    with pytest.raises(ChecksumMismatchError, match="data.verify_checksum: false"):
        load_ratings(_params(tmp_path, path=str(path)))
    ratings, provenance = load_ratings(_params(tmp_path, path=str(path), verify_checksum=False))
    assert len(ratings) == 4
    assert provenance["checksum_verified"] is False
    assert provenance["md5"] == md5(path)


def test_extracted_folder_has_no_checksum(tmp_path):
    release = RELEASES["ml-100k"]
    folder = tmp_path / "raw" / "ml-100k"
    folder.mkdir(parents=True)
    (folder / "u.data").write_text(ratings_text(release))
    assert find_local(release, tmp_path / "raw") == RatingsLocation(folder, "u.data", "folder")
    _, provenance = load_ratings(_params(tmp_path, dataset="ml-100k"))
    assert provenance["md5"] is None
    assert provenance["checksum_verified"] is False


def test_user_path_to_parent_folder_and_plain_file(tmp_path):
    release = RELEASES["ml-10m"]
    (tmp_path / "ml-10M100K").mkdir()
    (tmp_path / "ml-10M100K" / "ratings.dat").write_text(ratings_text(release))
    location = resolve_user_path(tmp_path, release)
    assert location.member == "ml-10M100K/ratings.dat"
    plain = resolve_user_path(tmp_path / "ml-10M100K" / "ratings.dat", release)
    assert len(read_ratings(plain, release).ratings) == 4


def test_truncated_zip(tmp_path):
    release = RELEASES["ml-1m"]
    path = make_zip(tmp_path, release, ratings_text(release) * 50)
    path.write_bytes(path.read_bytes()[:-60])
    with pytest.raises(CorruptArchiveError, match="truncated or corrupt"):
        read_ratings(RatingsLocation(path, release.member, "zip"), release)


def test_corrupt_member_data(tmp_path):
    release = RELEASES["ml-1m"]
    path = make_zip(tmp_path, release, ratings_text(release) * 50)
    data = bytearray(path.read_bytes())
    start = data.index(b"ratings.dat") + len("ratings.dat") + 5
    data[start : start + 20] = bytes(20)
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptArchiveError):
        read_ratings(RatingsLocation(path, release.member, "zip"), release)


def test_not_a_zip(tmp_path):
    path = tmp_path / "ml-1m.zip"
    path.write_bytes(b"<html>not found</html>")
    with pytest.raises(CorruptArchiveError, match="Delete it"):
        load_ratings(_params(tmp_path, path=str(path), verify_checksum=False))


def test_missing_member(tmp_path):
    release = RELEASES["ml-1m"]
    path = make_zip(tmp_path, release, "x", member="ml-1m/other.dat")
    with pytest.raises(MemberNotFoundError, match="ml-1m/ratings.dat"):
        load_ratings(_params(tmp_path, path=str(path), verify_checksum=False))


def test_missing_user_path(tmp_path):
    with pytest.raises(ArchiveNotFoundError, match="nothing exists there"):
        load_ratings(_params(tmp_path, path=str(tmp_path / "nope.zip")))


class _Response(io.BytesIO):
    def __init__(self, payload: bytes):
        super().__init__(payload)
        self.headers = {"Content-Length": str(len(payload))}


def test_download_writes_via_temp_file(tmp_path, monkeypatch):
    release = RELEASES["ml-1m"]
    payload = make_zip(tmp_path, release, ratings_text(release)).read_bytes()
    seen = []

    def fake_urlopen(url, timeout):
        seen.append((url, timeout))
        return _Response(payload)

    monkeypatch.setattr(urllib.request, "urlopen", fake_urlopen)
    trusting("ml-1m", tmp_path / "ml-1m.zip", monkeypatch)
    ratings, provenance = load_ratings(_params(tmp_path, download_timeout_s=7))
    assert seen == [(release.url, 7.0)]
    assert [p.name for p in (tmp_path / "raw").iterdir()] == ["ml-1m.zip"]
    assert provenance["checksum_verified"] is True
    assert len(ratings) == 4


def test_download_with_wrong_md5_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout: _Response(b"garbage"))
    with pytest.raises(ChecksumMismatchError, match="discarded"):
        download(RELEASES["ml-1m"], tmp_path / "raw", timeout_s=1, progress=False)
    assert list((tmp_path / "raw").iterdir()) == []


def test_download_network_failure_midway_leaves_nothing(tmp_path, monkeypatch):
    class Broken(_Response):
        def read(self, size=-1):
            raise TimeoutError("timed out")

        read1 = read  # the download reads what has arrived (read1) where a response offers it

    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout: Broken(b"x" * 10))
    with pytest.raises(NetworkUnavailableError):
        download(RELEASES["ml-1m"], tmp_path / "raw", timeout_s=1, progress=False)
    assert list((tmp_path / "raw").iterdir()) == []


def _no_network(url, timeout):
    raise urllib.error.URLError("Name or service not known")


def test_auto_without_network_falls_back_to_synthetic(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(urllib.request, "urlopen", _no_network)
    small = {"num_users": 50, "num_movies": 40, "num_ratings": 1000, "min_ratings_per_user": 5}
    ratings, provenance = load_ratings(_params(tmp_path, source="auto", synthetic=small))
    assert provenance["source"] == "synthetic"
    assert provenance["shaped_like"] == "ml-1m"
    assert len(ratings) == 1000
    assert "SYNTHETIC" in caplog.text
    assert "data.path" in caplog.text
    assert list((tmp_path / "raw").iterdir()) == []


def test_movielens_without_network_fails_clearly(tmp_path, monkeypatch):
    monkeypatch.setattr(urllib.request, "urlopen", _no_network)
    with pytest.raises(NetworkUnavailableError, match="data.source is 'movielens'"):
        load_ratings(_params(tmp_path))
    assert list((tmp_path / "raw").iterdir()) == []


def test_synthetic_source_never_touches_disk_or_network(tmp_path, monkeypatch):
    monkeypatch.setattr(urllib.request, "urlopen", _no_network)
    small = {"num_users": 30, "num_movies": 20, "num_ratings": 300, "min_ratings_per_user": 5}
    _, provenance = load_ratings(_params(tmp_path, source="synthetic", synthetic=small))
    assert provenance["description"] == "synthetic, shaped like ml-1m, seed 42, 300 ratings"
    assert not (tmp_path / "raw").exists()
