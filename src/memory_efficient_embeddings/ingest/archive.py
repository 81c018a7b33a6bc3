"""Find a MovieLens archive on disk, or download it from GroupLens safely, and open its ratings."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
import threading
import time
import urllib.error
import urllib.request
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

from tqdm import tqdm  # not tqdm.auto: in Jupyter it wants ipywidgets, or warns

from .errors import (
    ArchiveNotFoundError,
    ChecksumMismatchError,
    CorruptArchiveError,
    DownloadError,
    MemberNotFoundError,
    NetworkUnavailableError,
    UnsupportedArchiveError,
)
from .releases import Release

logger = logging.getLogger(__name__)

_CHUNK = 1 << 20


@dataclass(frozen=True)
class RatingsLocation:
    """Where a release's ratings file lives: inside a zip, in an extracted folder, or as a file."""

    path: Path
    member: str
    kind: Literal["zip", "folder", "file"]

    @property
    def display(self) -> str:
        """Human-readable location used in messages, e.g. ``data/01_raw/ml-1m.zip!ml-1m/ratings.dat``."""
        if self.kind == "zip":
            return f"{self.path}!{self.member}"
        if self.kind == "folder":
            return str(self.path / self.member)
        return str(self.path)


def _in_folder(folder: Path, release: Release) -> RatingsLocation | None:
    """Find the ratings file in ``folder`` (the extracted top folder or its parent)."""
    for relative in (release.member_name, release.member):
        if (folder / relative).is_file():
            return RatingsLocation(folder, relative, "folder")
    return None


def resolve_user_path(path: str | os.PathLike, release: Release) -> RatingsLocation:
    """Turn a user's ``data.path`` (zip, extracted folder or ratings file) into a location."""
    p = Path(path).expanduser()
    if p.is_dir():
        found = _in_folder(p, release)
        if found is None:
            raise MemberNotFoundError(
                f"The folder {p} (parameter data.path) has no {release.member_name} nor "
                f"{release.member}. Point data.path at the official {release.archive_name} or at "
                f"the folder extracted from it."
            )
        return found
    if p.is_file():
        if zipfile.is_zipfile(p) or p.suffix.lower() == ".zip":
            return RatingsLocation(p, release.member, "zip")
        kind = other_archive_kind(p)
        if kind is not None:
            raise UnsupportedArchiveError(
                f"data.path {p} is a {kind}, not a zip: the ingest reads zips only. Extract it "
                f"and point data.path at the extracted folder (or its {release.member_name}), "
                f"or use the official {release.archive_name}."
            )
        return RatingsLocation(p, p.name, "file")
    raise ArchiveNotFoundError(
        f"data.path is {str(path)!r}, but nothing exists there. Set it to the official "
        f"{release.archive_name} (or the folder extracted from it), or set it to null to use "
        f"data/01_raw/ and the automatic download."
    )


# Leading bytes of archive and compression formats other than zip, and what to call them.
_MAGIC = (
    (b"\x1f\x8b", ".gz (gzip)"),
    (b"BZh", ".bz2 (bzip2)"),
    (b"\xfd7zXZ\x00", ".xz"),
    (b"7z\xbc\xaf\x27\x1c", ".7z"),
    (b"Rar!\x1a\x07", ".rar"),
    (b"\x28\xb5\x2f\xfd", ".zst (zstandard)"),
)
_TAR_MAGIC_OFFSET = 257  # "ustar" in a tar header


def other_archive_kind(path: Path) -> str | None:
    """What kind of non-zip archive a file is, by its leading bytes (None when it is none).

    A gzip whose name ends .tar.gz or .tgz is called a .tar.gz, as users know it.
    """
    with open(path, "rb") as handle:
        head = handle.read(_TAR_MAGIC_OFFSET + 8)
    name = path.name.lower()
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            if kind.startswith(".gz") and name.endswith((".tar.gz", ".tgz")):
                return ".tar.gz"
            return kind
    if head[_TAR_MAGIC_OFFSET : _TAR_MAGIC_OFFSET + 5] == b"ustar":
        return ".tar"
    return None


def find_local(release: Release, raw_dir: str | os.PathLike) -> RatingsLocation | None:
    """Look in ``raw_dir`` for the official zip or an extracted folder; None when absent."""
    raw = Path(raw_dir)
    archive = raw / release.archive_name
    if archive.is_file():
        return RatingsLocation(archive, release.member, "zip")
    for name in release.folder_names:
        if (raw / name).is_dir():
            found = _in_folder(raw / name, release)
            if found is not None:
                return found
    return None


def file_md5(path: str | os.PathLike) -> str:
    """MD5 hex digest of a file, read in chunks."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def checksum_message(path: Path, release: Release, actual: str, user_path: bool = False) -> str:
    """Explain a checksum mismatch and how to accept a user's own copy.

    A file the user pointed at (`data.path`) is theirs: the advice is to check it, not to delete it.
    """
    if user_path:
        remedy = (
            f"If it is your own copy and you mean to use it, set `data.verify_checksum: false` "
            f"(e.g. in conf/local/parameters.yml); otherwise point data.path at the official "
            f"{release.archive_name}, or set data.path to null to download it into data/01_raw/."
        )
        where = f"{path} (parameter data.path)"
    else:
        remedy = (
            "Delete it to download a fresh copy, or, to use your own copy deliberately, set "
            "`data.verify_checksum: false` (e.g. in conf/local/parameters.yml)."
        )
        where = str(path)
    return (
        f"{where} has MD5 {actual}, but the published MD5 of {release.archive_name} is "
        f"{release.md5}: the file is incomplete, corrupt or not the official release. {remedy}"
    )


def _transfer(
    release: Release,
    out: IO[bytes],
    digest: Any,
    timeout_s: float,
    deadline: float,
    progress: bool,
    cancelled: threading.Event,
) -> None:
    """Copy the release's URL into ``out``; stop at the deadline or when cancelled."""
    with urllib.request.urlopen(release.url, timeout=timeout_s) as response:
        total = int(response.headers.get("Content-Length") or 0) or None
        with tqdm(
            total=total,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            desc=release.archive_name,
            disable=not progress,
        ) as bar:
            # read1 returns what has arrived (one socket read), so the deadline is checked
            # after every packet, however slowly they come.
            read = getattr(response, "read1", response.read)
            for chunk in iter(lambda: read(_CHUNK), b""):
                if cancelled.is_set():
                    return
                out.write(chunk)
                digest.update(chunk)
                bar.update(len(chunk))
                if time.monotonic() > deadline:
                    raise TimeoutError(_deadline_message(timeout_s))


def _deadline_message(timeout_s: float) -> str:
    return (
        f"the download took longer than data.download_timeout_s ({timeout_s:g} s) in all; "
        "raise it for a slow connection"
    )


def _transfer_with_deadline(
    release: Release, out: IO[bytes], digest: Any, timeout_s: float, progress: bool
) -> None:
    """Run the transfer in a worker thread and give up when ``timeout_s`` has passed in all.

    Socket timeouts bound each read, not the whole: a server that trickles its status line and
    headers a byte at a time keeps ``urlopen`` waiting indefinitely (49 s at a 5 s timeout). The
    caller waits for the worker at most ``timeout_s``; a worker still blocked in a read then sees
    the cancellation at its next byte (or its socket timeout) and writes nothing more.
    """
    deadline = time.monotonic() + timeout_s
    cancelled = threading.Event()
    failure: list[BaseException] = []

    def worker() -> None:
        try:
            _transfer(release, out, digest, timeout_s, deadline, progress, cancelled)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller below
            failure.append(exc)

    thread = threading.Thread(target=worker, name="movielens-download", daemon=True)
    thread.start()
    thread.join(timeout_s)
    if thread.is_alive():
        cancelled.set()
        raise TimeoutError(_deadline_message(timeout_s))
    if failure:
        raise failure[0]


def download(
    release: Release,
    raw_dir: str | os.PathLike,
    timeout_s: float,
    verify_checksum: bool = True,
    progress: bool = True,
) -> Path:
    """Download the release's zip into ``raw_dir`` via a temp file, verify it, then move it into place."""
    raw = Path(raw_dir)
    raw.mkdir(parents=True, exist_ok=True)
    target = raw / release.archive_name
    # The temp file sits next to the target so os.replace is an atomic rename on one file system.
    handle, tmp_name = tempfile.mkstemp(prefix=f".{release.archive_name}.", suffix=".part", dir=raw)
    tmp = Path(tmp_name)
    digest = hashlib.md5(usedforsecurity=False)
    try:
        logger.info("Downloading %s into %s", release.url, target)
        try:
            with os.fdopen(handle, "wb") as out:
                _transfer_with_deadline(release, out, digest, timeout_s, progress)
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            reason = getattr(exc, "reason", exc)
            raise NetworkUnavailableError(
                f"Could not download {release.url} ({reason}). Download it by other means and put "
                f"it at {target}, or set data.path to your copy."
            ) from exc
        except OSError as exc:
            raise DownloadError(
                f"Could not write the download of {release.url} into {raw} ({exc}); check that "
                f"the folder is writable and the disk has space."
            ) from exc
        actual = digest.hexdigest()
        if verify_checksum and actual != release.md5:
            raise ChecksumMismatchError(
                f"The download of {release.url} has MD5 {actual}, not the published {release.md5}; "
                f"it was discarded. Try again later, or fetch the archive yourself and put it at "
                f"{target}."
            )
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    logger.info("Saved %s (md5 %s)", target, actual)
    return target


@contextlib.contextmanager
def open_ratings(location: RatingsLocation) -> Iterator[IO[bytes]]:
    """Open the ratings file for binary reading, in place inside the zip (never extracted)."""
    if location.kind != "zip":
        path = location.path / location.member if location.kind == "folder" else location.path
        if not path.is_file():
            raise MemberNotFoundError(f"{path} does not exist.")
        with open(path, "rb") as handle:
            yield handle
        return
    if not location.path.is_file():
        raise ArchiveNotFoundError(f"{location.path} does not exist.")
    try:
        archive = zipfile.ZipFile(location.path)
    except (zipfile.BadZipFile, EOFError) as exc:
        raise CorruptArchiveError(
            f"{location.path} is not a readable zip archive ({exc}): it is probably truncated or "
            f"corrupt. Delete it and download it again."
        ) from exc
    with archive:
        try:
            info = archive.getinfo(location.member)
        except KeyError:
            names = [n for n in archive.namelist() if not n.endswith("/")][:10]
            raise MemberNotFoundError(
                f"{location.path} has no member {location.member} (it holds e.g. {names}). Is it "
                f"the right release for data.dataset?"
            ) from None
        with archive.open(info) as handle:
            yield handle


def read_member_bytes(location: RatingsLocation) -> bytes:
    """Read the whole ratings file into memory, with the errors of open_ratings."""
    try:
        with open_ratings(location) as handle:
            return handle.read()
    except (zipfile.BadZipFile, EOFError, zlib.error) as exc:
        raise CorruptArchiveError(
            f"{location.display} cannot be read ({exc}): the archive is corrupt or truncated. "
            f"Delete {location.path} and download it again."
        ) from exc
