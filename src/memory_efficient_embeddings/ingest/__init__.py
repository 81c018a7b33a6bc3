"""Ingest of ratings (MovieLens first): release metadata, archive handling, fast parsing and a synthetic stand-in."""

from .archive import RatingsLocation, download, find_local, resolve_user_path
from .errors import (
    ArchiveNotFoundError,
    ChecksumMismatchError,
    CorruptArchiveError,
    DownloadError,
    MalformedRatingsError,
    MemberNotFoundError,
    MovieLensError,
    NetworkUnavailableError,
    SyntheticConfigError,
    UnknownReleaseError,
)
from .parsing import ParsedRatings, parse_ratings_bytes, read_ratings
from .releases import RELEASES, Release, get_release
from .sources import dataset_name, load_ratings, synthetic_ratings
from .synthetic import SyntheticSpec, generate_ratings

__all__ = [
    "RELEASES",
    "ArchiveNotFoundError",
    "ChecksumMismatchError",
    "CorruptArchiveError",
    "DownloadError",
    "MalformedRatingsError",
    "MemberNotFoundError",
    "MovieLensError",
    "NetworkUnavailableError",
    "ParsedRatings",
    "RatingsLocation",
    "Release",
    "SyntheticConfigError",
    "SyntheticSpec",
    "UnknownReleaseError",
    "dataset_name",
    "download",
    "find_local",
    "generate_ratings",
    "get_release",
    "load_ratings",
    "parse_ratings_bytes",
    "read_ratings",
    "resolve_user_path",
    "synthetic_ratings",
]
