"""Ingest of ratings: MovieLens (releases, archives, fast parsing) and its synthetic stand-in, Tang's
Ciao/Epinions .mat files, and a user's own table; the stated rules (rules.py) apply to every source."""

from .archive import RatingsLocation, download, find_local, resolve_user_path
from .ciao import read_ciao
from .errors import (
    ArchiveNotFoundError,
    ChecksumMismatchError,
    CorruptArchiveError,
    DataFileError,
    DownloadError,
    IngestError,
    MalformedRatingsError,
    MemberNotFoundError,
    MovieLensError,
    NetworkUnavailableError,
    RatingRangeError,
    SyntheticConfigError,
    UnknownReleaseError,
    UnsupportedArchiveError,
)
from .parsing import ParsedRatings, parse_ratings_bytes, read_ratings
from .releases import RELEASES, Release, get_release
from .rules import ReadRatings, apply_rules, check_output_ranges
from .sources import SOURCES, dataset_name, load_ratings, side_label, synthetic_ratings
from .synthetic import SyntheticSpec, generate_ratings
from .table import DEFAULT_COLUMNS, read_table

__all__ = [
    "DEFAULT_COLUMNS",
    "RELEASES",
    "SOURCES",
    "ArchiveNotFoundError",
    "ChecksumMismatchError",
    "CorruptArchiveError",
    "DataFileError",
    "DownloadError",
    "IngestError",
    "MalformedRatingsError",
    "MemberNotFoundError",
    "MovieLensError",
    "NetworkUnavailableError",
    "ParsedRatings",
    "RatingRangeError",
    "RatingsLocation",
    "ReadRatings",
    "Release",
    "SyntheticConfigError",
    "SyntheticSpec",
    "UnknownReleaseError",
    "UnsupportedArchiveError",
    "apply_rules",
    "check_output_ranges",
    "dataset_name",
    "download",
    "find_local",
    "generate_ratings",
    "get_release",
    "load_ratings",
    "parse_ratings_bytes",
    "read_ciao",
    "read_ratings",
    "read_table",
    "resolve_user_path",
    "side_label",
    "synthetic_ratings",
]
