"""User-facing errors of the ingest: each says what failed, where, and how to fix it."""

from __future__ import annotations


class IngestError(Exception):
    """Base class of every error raised while locating, reading or validating ratings."""


class MovieLensError(IngestError):
    """An error locating, downloading or parsing MovieLens data."""


class UnknownReleaseError(MovieLensError, ValueError):
    """The configured `data.dataset` is not a known MovieLens release."""


class ArchiveNotFoundError(MovieLensError, FileNotFoundError):
    """No archive or extracted folder where one was expected."""


class CorruptArchiveError(MovieLensError):
    """The zip archive is truncated or not a zip file."""


class ChecksumMismatchError(MovieLensError):
    """The archive's MD5 differs from the published one."""


class MemberNotFoundError(MovieLensError):
    """The ratings file is missing from the archive or folder."""


class MalformedRatingsError(IngestError):
    """A line or row of a ratings file cannot be parsed or holds an invalid value (any source)."""


class DownloadError(MovieLensError):
    """Downloading an archive from GroupLens failed."""


class NetworkUnavailableError(DownloadError):
    """GroupLens could not be reached (no network, DNS failure, timeout, HTTP error)."""


class SyntheticConfigError(MovieLensError, ValueError):
    """The synthetic generator's parameters describe an impossible data set."""


class UnsupportedArchiveError(MovieLensError):
    """`data.path` is an archive of another kind than zip (a .tar.gz, ...)."""


class DataFileError(IngestError):
    """A Ciao/Epinions .mat file or an interactions table cannot be used: missing, unreadable,
    empty, or without the columns the parameters name."""


class RatingRangeError(IngestError, ValueError):
    """The data's ratings fall outside a model's output range."""
