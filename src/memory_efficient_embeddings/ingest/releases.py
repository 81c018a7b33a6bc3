"""Published facts about each MovieLens release: where it lives, its format and its shape."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import UnknownReleaseError

_BASE_URL = "https://files.grouplens.org/datasets/movielens"


@dataclass(frozen=True)
class Release:
    """One MovieLens release: archive, ratings member format and published shape."""

    name: str
    url: str
    md5: str
    member: str
    separator: str
    has_header: bool
    rating_min: float
    rating_max: float
    rating_step: float
    num_users: int
    num_movies: int
    num_ratings: int
    min_ratings_per_user: int

    @property
    def archive_name(self) -> str:
        """File name of the official zip, e.g. ``ml-1m.zip``."""
        return self.url.rsplit("/", 1)[-1]

    @property
    def folder_names(self) -> tuple[str, ...]:
        """Names an extracted folder may have (ml-10m extracts to ``ml-10M100K``)."""
        top = self.member.split("/", 1)[0]
        return tuple(dict.fromkeys((self.name, top)))

    @property
    def member_name(self) -> str:
        """The ratings file's name inside its folder, e.g. ``ratings.dat``."""
        return self.member.rsplit("/", 1)[-1]


RELEASES: dict[str, Release] = {
    r.name: r
    for r in (
        Release(
            name="ml-100k",
            url=f"{_BASE_URL}/ml-100k.zip",
            md5="0e33842e24a9c977be4e0107933c0723",
            member="ml-100k/u.data",
            separator="\t",
            has_header=False,
            rating_min=1.0,
            rating_max=5.0,
            rating_step=1.0,
            num_users=943,
            num_movies=1_682,
            num_ratings=100_000,
            min_ratings_per_user=20,
        ),
        Release(
            name="ml-1m",
            url=f"{_BASE_URL}/ml-1m.zip",
            md5="c4d9eecfca2ab87c1945afe126590906",
            member="ml-1m/ratings.dat",
            separator="::",
            has_header=False,
            rating_min=1.0,
            rating_max=5.0,
            rating_step=1.0,
            num_users=6_040,
            num_movies=3_706,
            num_ratings=1_000_209,
            min_ratings_per_user=20,
        ),
        Release(
            name="ml-10m",
            url=f"{_BASE_URL}/ml-10m.zip",
            md5="ce571fd55effeba0271552578f2648bd",
            member="ml-10M100K/ratings.dat",
            separator="::",
            has_header=False,
            rating_min=0.5,
            rating_max=5.0,
            rating_step=0.5,
            num_users=69_878,
            num_movies=10_677,
            num_ratings=10_000_054,
            min_ratings_per_user=20,
        ),
        Release(
            name="ml-20m",
            url=f"{_BASE_URL}/ml-20m.zip",
            md5="cd245b17a1ae2cc31bb14903e1204af3",
            member="ml-20m/ratings.csv",
            separator=",",
            has_header=True,
            rating_min=0.5,
            rating_max=5.0,
            rating_step=0.5,
            num_users=138_493,
            num_movies=26_744,
            num_ratings=20_000_263,
            min_ratings_per_user=20,
        ),
        Release(
            name="ml-25m",
            url=f"{_BASE_URL}/ml-25m.zip",
            md5="6b51fb2759a8657d3bfcbfc42b592ada",
            member="ml-25m/ratings.csv",
            separator=",",
            has_header=True,
            rating_min=0.5,
            rating_max=5.0,
            rating_step=0.5,
            num_users=162_541,
            num_movies=59_047,
            num_ratings=25_000_095,
            min_ratings_per_user=20,
        ),
    )
}


def get_release(name: str) -> Release:
    """Return the release called ``name`` or raise a clear error listing the known ones."""
    try:
        return RELEASES[name]
    except KeyError:
        known = ", ".join(RELEASES)
        raise UnknownReleaseError(
            f"Unknown MovieLens release {name!r} in parameter data.dataset; use one of: {known}."
        ) from None
