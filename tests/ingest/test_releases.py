"""The release table against the published facts, and every error a user can meet in the ingest."""

from __future__ import annotations

import io
import logging
import urllib.error
import urllib.request

import pytest

from memory_efficient_embeddings.ingest import (
    RELEASES,
    ArchiveNotFoundError,
    ChecksumMismatchError,
    MalformedRatingsError,
    MemberNotFoundError,
    MovieLensError,
    UnknownReleaseError,
    get_release,
    load_ratings,
    parse_ratings_bytes,
    synthetic_ratings,
)

from .helpers import make_zip, md5, ratings_text, trusting

# Typed in from GroupLens: each archive's `.zip.md5` sidecar and README (ratings file, its format,
# rating scale, and the users and rated movies of the ratings file). Not read from the code.
PUBLISHED = {
    # name: (md5, member, separator, header, (min, max, step), users, rated movies, ratings)
    "ml-100k": (
        "0e33842e24a9c977be4e0107933c0723",
        "ml-100k/u.data",
        "\t",
        False,
        (1, 5, 1),
        943,
        1_682,
        100_000,
    ),
    "ml-1m": (
        "c4d9eecfca2ab87c1945afe126590906",
        "ml-1m/ratings.dat",
        "::",
        False,
        (1, 5, 1),
        6_040,
        3_706,
        1_000_209,
    ),
    "ml-10m": (
        "ce571fd55effeba0271552578f2648bd",
        "ml-10M100K/ratings.dat",
        "::",
        False,
        (0.5, 5, 0.5),
        69_878,
        10_677,
        10_000_054,
    ),
    "ml-20m": (
        "cd245b17a1ae2cc31bb14903e1204af3",
        "ml-20m/ratings.csv",
        ",",
        True,
        (0.5, 5, 0.5),
        138_493,
        26_744,
        20_000_263,
    ),
    "ml-25m": (
        "6b51fb2759a8657d3bfcbfc42b592ada",
        "ml-25m/ratings.csv",
        ",",
        True,
        (0.5, 5, 0.5),
        162_541,
        59_047,
        25_000_095,
    ),
}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_release_table_matches_the_published_facts(name) -> None:
    md5_sum, member, separator, header, scale, users, movies, ratings = PUBLISHED[name]
    release = get_release(name)
    assert release.name == name
    assert release.url == f"https://files.grouplens.org/datasets/movielens/{name}.zip"
    assert release.archive_name == f"{name}.zip"
    assert release.md5 == md5_sum
    assert release.member == member
    assert release.member_name == member.rsplit("/", 1)[1]
    assert release.separator == separator
    assert release.has_header is header
    assert (release.rating_min, release.rating_max, release.rating_step) == scale
    assert (release.num_users, release.num_movies, release.num_ratings) == (users, movies, ratings)
    assert release.min_ratings_per_user == 20  # every README: each user rated at least 20 movies


def test_folder_names_cover_the_release_and_its_extracted_folder() -> None:
    assert get_release("ml-10m").folder_names == ("ml-10m", "ml-10M100K")
    assert get_release("ml-1m").folder_names == ("ml-1m",)  # no duplicate


def test_the_table_lists_exactly_the_supported_releases() -> None:
    assert sorted(RELEASES) == sorted(PUBLISHED)


def test_unknown_release_names_the_parameter_and_the_choices() -> None:
    with pytest.raises(UnknownReleaseError) as info:
        get_release("ml-2m")
    assert str(info.value) == (
        "Unknown MovieLens release 'ml-2m' in parameter data.dataset; use one of: "
        "ml-100k, ml-1m, ml-10m, ml-20m, ml-25m."
    )
    assert isinstance(info.value, ValueError)  # callers may catch it as a ValueError
    with pytest.raises(UnknownReleaseError, match="'ml-2m' in parameter data.dataset"):
        load_ratings({"dataset": "ml-2m", "source": "synthetic"})


def test_the_default_release_is_ml_1m() -> None:
    small = {"num_users": 30, "num_movies": 20, "num_ratings": 300, "min_ratings_per_user": 5}
    _, provenance = load_ratings({"source": "synthetic", "synthetic": small})
    assert provenance["shaped_like"] == "ml-1m"


def test_bad_source_names_the_parameter_and_the_choices() -> None:
    with pytest.raises(MovieLensError) as info:
        load_ratings({"dataset": "ml-1m", "source": "grouplens"})
    assert str(info.value) == (
        "data.source is 'grouplens'; use one of auto, movielens, synthetic, ciao, table."
    )


def _params(tmp_path, **extra):
    return {"dataset": "ml-1m", "source": "movielens", "raw_dir": str(tmp_path / "raw"), **extra}


def test_missing_user_path_says_what_to_set(tmp_path) -> None:
    path = tmp_path / "nope.zip"
    with pytest.raises(ArchiveNotFoundError) as info:
        load_ratings(_params(tmp_path, path=str(path)))
    assert str(info.value) == (
        f"data.path is {str(path)!r}, but nothing exists there. Set it to the official ml-1m.zip "
        "(or the folder extracted from it), or set it to null to use data/01_raw/ and the "
        "automatic download."
    )


def test_folder_without_the_ratings_file_names_both_names(tmp_path) -> None:
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "movies.dat").write_text("1::Toy Story::Animation\n")
    with pytest.raises(MemberNotFoundError) as info:
        load_ratings(_params(tmp_path, path=str(folder)))
    assert str(info.value) == (
        f"The folder {folder} (parameter data.path) has no ratings.dat nor ml-1m/ratings.dat. "
        "Point data.path at the official ml-1m.zip or at the folder extracted from it."
    )


def test_zip_without_the_ratings_member_lists_what_it_holds(tmp_path) -> None:
    release = RELEASES["ml-1m"]
    path = make_zip(tmp_path, release, "x", member="ml-1m/movies.dat")
    with pytest.raises(MemberNotFoundError) as info:
        load_ratings(_params(tmp_path, path=str(path), verify_checksum=False))
    assert str(info.value) == (
        f"{path} has no member ml-1m/ratings.dat (it holds e.g. ['ml-1m/README', "
        "'ml-1m/movies.dat']). Is it the right release for data.dataset?"
    )


@pytest.mark.parametrize(
    ("name", "line", "scale"),
    [
        ("ml-1m", "1::10::0.5::100", "1..5 in steps of 1"),  # half stars are not ml-1m ratings
        ("ml-1m", "1::10::0::100", "1..5 in steps of 1"),
        ("ml-1m", "1::10::3.5::100", "1..5 in steps of 1"),  # in range, off the step
        ("ml-20m", "1,10,2.25,100", "0.5..5 in steps of 0.5"),
        ("ml-100k", "1\t10\t0\t100", "1..5 in steps of 1"),
        ("ml-10m", "1::10::0::100", "0.5..5 in steps of 0.5"),
        ("ml-25m", "1,10,0.25,100", "0.5..5 in steps of 0.5"),
        ("ml-20m", "1,10,5.5,100", "0.5..5 in steps of 0.5"),
    ],
)
def test_ratings_off_the_scale_are_refused_with_the_scale(name, line, scale) -> None:
    release = RELEASES[name]
    good = ratings_text(release)
    with pytest.raises(MalformedRatingsError) as info:
        parse_ratings_bytes((good + line + "\n").encode(), release, "f")
    line_number = good.count("\n") + 1
    assert str(info.value).startswith(
        f"f, line {line_number}: rating outside the {name} scale {scale}: {line!r} (1 bad line(s) "
        "in all)."
    )


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_each_release_reads_only_its_own_separator(tmp_path, name) -> None:
    release = RELEASES[name]
    other = {"\t": "::", "::": ",", ",": "\t"}[release.separator]
    text = ratings_text(release).replace(release.separator, other)
    path = make_zip(tmp_path, release, text)
    with pytest.raises(MalformedRatingsError) as info:
        load_ratings(_params(tmp_path, dataset=name, path=str(path), verify_checksum=False))
    first = 2 if release.has_header else 1
    assert str(info.value).startswith(
        f"{path}!{release.member}, line {first}: expected 4 fields separated by "
        f"{release.separator!r}: "
    )


class _Response(io.BytesIO):
    def __init__(self, payload: bytes):
        super().__init__(payload)
        self.headers = {"Content-Length": str(len(payload))}


def test_download_honours_verify_checksum_false(tmp_path, monkeypatch, caplog) -> None:
    # GroupLens serves a copy whose MD5 is not the published one (e.g. a re-packed mirror).
    release = RELEASES["ml-1m"]
    payload = make_zip(tmp_path, release, ratings_text(release)).read_bytes()
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout: _Response(payload))
    with pytest.raises(ChecksumMismatchError, match="not the published"):
        load_ratings(_params(tmp_path))
    assert list((tmp_path / "raw").iterdir()) == []  # the strict download kept nothing
    with caplog.at_level(logging.WARNING):
        ratings, provenance = load_ratings(_params(tmp_path, verify_checksum=False))
    assert len(ratings) == 4
    assert provenance["checksum_verified"] is False
    assert provenance["md5"] == md5(tmp_path / "raw" / "ml-1m.zip")
    assert "using it anyway (data.verify_checksum: false)" in caplog.text


def test_local_archive_with_the_published_md5_is_used_without_download(
    tmp_path, monkeypatch
) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    release = RELEASES["ml-1m"]
    path = make_zip(raw, release, ratings_text(release))
    trusting("ml-1m", path, monkeypatch)

    def no_download(url, timeout):
        raise AssertionError("a local archive must not be downloaded again")

    monkeypatch.setattr(urllib.request, "urlopen", no_download)
    ratings, provenance = load_ratings(_params(tmp_path))
    assert provenance == {
        "source": "movielens",
        "dataset": "ml-1m",
        "archive": "ml-1m.zip",
        "member": "ml-1m/ratings.dat",
        "md5": md5(path),
        "checksum_verified": True,
        "num_ratings": 4,
        "num_users": 3,
        "num_movies": 3,
        "rating_min": 1.0,
        "rating_max": 5.0,
        "rows_read": 4,
        "bad_rows_skipped": 0,
        "zero_rated_dropped": 0,
        "out_of_range_dropped": 0,
        "duplicates_dropped": 0,
        "rows_kept": 4,
        "description": f"MovieLens ml-1m (md5 {md5(path)}), 4 ratings",
    }


def test_extracted_folder_provenance_says_there_is_no_checksum(tmp_path) -> None:
    release = RELEASES["ml-100k"]
    folder = tmp_path / "raw" / "ml-100k"
    folder.mkdir(parents=True)
    (folder / "u.data").write_text(ratings_text(release))
    _, provenance = load_ratings(_params(tmp_path, dataset="ml-100k", verify_checksum=True))
    assert (
        provenance["description"] == "MovieLens ml-100k (extracted folder, no checksum), 4 ratings"
    )
    assert provenance["member"] == "u.data"
    assert provenance["archive"] == "ml-100k"


def test_skip_mode_drops_bad_lines_and_counts_them(tmp_path) -> None:
    release = RELEASES["ml-1m"]
    text = ratings_text(release) + "9::9::9::9\n5::50::x::1\n"
    path = make_zip(tmp_path, release, text)
    ratings, provenance = load_ratings(
        _params(tmp_path, path=str(path), verify_checksum=False, on_bad_lines="skip")
    )
    assert len(ratings) == 4
    # "9::9::9::9" is a valid line with a rating off the 1-5 scale; "5::50::x::1" is malformed.
    assert (provenance["bad_rows_skipped"], provenance["out_of_range_dropped"]) == (1, 1)
    assert (provenance["rows_read"], provenance["rows_kept"]) == (6, 4)
    with pytest.raises(MalformedRatingsError, match="line 5"):
        load_ratings(_params(tmp_path, path=str(path), verify_checksum=False))


def test_synthetic_provenance_by_hand() -> None:
    small = {"num_users": 30, "num_movies": 20, "num_ratings": 300, "min_ratings_per_user": 5}
    ratings, provenance = synthetic_ratings(RELEASES["ml-10m"], {**small, "seed": 7})
    assert provenance["source"] == "synthetic"
    assert provenance["shaped_like"] == "ml-10m"
    assert provenance["seed"] == 7
    assert provenance["num_ratings"] == len(ratings) == 300
    assert provenance["num_users"] == ratings["user_id"].nunique()
    assert provenance["num_movies"] == ratings["movie_id"].nunique()
    assert provenance["description"] == "synthetic, shaped like ml-10m, seed 7, 300 ratings"
    assert provenance["generator"]["seed"] == 7


def _unreachable(url, timeout):
    raise urllib.error.URLError("Name or service not known")


def test_defaults_look_in_data_raw_then_fall_back_to_synthetic(tmp_path, monkeypatch) -> None:
    # No data.source, data.raw_dir or data.download_timeout_s: auto mode, data/01_raw, 60 s.
    monkeypatch.chdir(tmp_path)
    asked = []

    def offline(url, timeout):
        asked.append(timeout)
        return _unreachable(url, timeout)

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    small = {"num_users": 30, "num_movies": 20, "num_ratings": 300, "min_ratings_per_user": 5}
    _, provenance = load_ratings({"dataset": "ml-1m", "synthetic": small})
    assert provenance["source"] == "synthetic"
    assert asked == [60.0]
    release = RELEASES["ml-1m"]
    raw = tmp_path / "data" / "01_raw"
    path = make_zip(raw, release, ratings_text(release))
    trusting("ml-1m", path, monkeypatch)
    _, provenance = load_ratings({"dataset": "ml-1m"})
    assert (provenance["source"], provenance["checksum_verified"]) == ("movielens", True)


def test_a_local_archive_with_another_md5_is_refused_with_both_sums(tmp_path) -> None:
    release = RELEASES["ml-1m"]
    path = make_zip(tmp_path, release, ratings_text(release))
    with pytest.raises(ChecksumMismatchError) as info:
        load_ratings(_params(tmp_path, path=str(path)))
    # The file is the user's own (data.path): the advice is to check it or opt out, not to
    # delete it.
    assert str(info.value) == (
        f"{path} (parameter data.path) has MD5 {md5(path)}, but the published MD5 of ml-1m.zip "
        f"is {release.md5}: the file is incomplete, corrupt or not the official release. If it "
        "is your own copy and you mean to use it, set `data.verify_checksum: false` (e.g. in "
        "conf/local/parameters.yml); otherwise point data.path at the official ml-1m.zip, or set "
        "data.path to null to download it into data/01_raw/."
    )
    assert md5(path) != release.md5
    assert "delete" not in str(info.value).lower()


def test_dataset_name_for_plot_titles() -> None:
    from memory_efficient_embeddings.ingest import dataset_name  # noqa: PLC0415

    assert dataset_name({"source": "synthetic", "shaped_like": "ml-1m", "dataset": "x"}) == (
        "synthetic data shaped like ml-1m"
    )
    assert dataset_name({"source": "synthetic"}) == "synthetic data shaped like ?"
    assert dataset_name({"source": "movielens", "dataset": "ml-100k"}) == "MovieLens ml-100k"
    assert dataset_name({"description": "my ratings"}) == "my ratings"
    assert dataset_name({}) == "unknown data"
