"""Choose the ratings source and record its provenance: MovieLens (local archive or download),
its synthetic stand-in, Tang's Ciao/Epinions `.mat` files, or a user's own table."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from .archive import (
    RatingsLocation,
    checksum_message,
    download,
    file_md5,
    find_local,
    resolve_user_path,
)
from .ciao import read_ciao
from .errors import ChecksumMismatchError, DataFileError, MovieLensError, NetworkUnavailableError
from .parsing import read_ratings
from .releases import Release, get_release
from .rules import ReadRatings, apply_rules, rating_range
from .synthetic import SyntheticSpec, generate_ratings
from .table import read_table

logger = logging.getLogger(__name__)

SOURCES = ("auto", "movielens", "synthetic", "ciao", "table")
FILE_SOURCES = ("ciao", "table")  # read only the file at data.path
# What users read for each side of the model: the `movie` side (its internal name, as in
# `movie_id` and `movie_embedding`) holds items of any kind.
SIDE_LABELS = {"user": "user", "movie": "item"}


def side_label(side: str) -> str:
    """The word reports use for a side: "user" or "item" (the internal `movie` side)."""
    return SIDE_LABELS.get(side, side)


def _shape(ratings: pd.DataFrame) -> dict[str, Any]:
    return {
        "num_ratings": len(ratings),
        "num_users": int(ratings["user_id"].nunique()),
        "num_movies": int(ratings["movie_id"].nunique()),
        **rating_range(ratings),
    }


def dataset_name(provenance: Mapping[str, Any]) -> str:
    """A short name of the data for titles, e.g. "MovieLens ml-1m", "synthetic data shaped like
    ml-1m" or the file's name for Ciao/Epinions and table data."""
    if provenance.get("source") == "synthetic":
        return f"synthetic data shaped like {provenance.get('shaped_like', '?')}"
    if provenance.get("source") in FILE_SOURCES and provenance.get("file"):
        return str(provenance["file"])
    if provenance.get("dataset"):
        return f"MovieLens {provenance['dataset']}"
    return str(provenance.get("description", "unknown data"))


def synthetic_ratings(release: Release, params: Mapping[str, Any]) -> tuple[pd.DataFrame, dict]:
    """Generate ratings shaped like ``release`` and describe them."""
    spec = SyntheticSpec.from_params(params or {}, release)
    ratings = generate_ratings(spec)
    shape = _shape(ratings)
    provenance = {
        "source": "synthetic",
        "shaped_like": release.name,
        "seed": spec.seed,
        **shape,
        "description": (
            f"synthetic, shaped like {release.name}, seed {spec.seed}, "
            f"{shape['num_ratings']:,} ratings"
        ),
        "generator": spec.as_dict(),
    }
    return ratings, provenance


def _archive_md5(
    location: RatingsLocation, release: Release, verify: bool, user_path: bool = False
) -> tuple[str | None, bool]:
    """MD5 of a zip and whether it matches the published one; strict mode refuses a mismatch."""
    if location.kind != "zip":
        logger.info(
            "%s is an extracted copy: there is no archive checksum to verify.", location.display
        )
        return None, False
    md5 = file_md5(location.path)
    if md5 == release.md5:
        return md5, True

    message = checksum_message(location.path, release, md5, user_path)
    if verify:
        raise ChecksumMismatchError(message)
    logger.warning(
        "%s has MD5 %s, not the published %s; using it anyway (data.verify_checksum: false).",
        location.path,
        md5,
        release.md5,
    )
    return md5, False


def _locate(release: Release, data: Mapping[str, Any], source: str) -> RatingsLocation | None:
    """Local archive, user path or fresh download; None when auto mode cannot reach GroupLens."""
    if data.get("path"):
        return resolve_user_path(data["path"], release)
    raw_dir = data.get("raw_dir", "data/01_raw")
    found = find_local(release, raw_dir)
    if found is not None:
        return found
    try:
        path = download(
            release,
            raw_dir,
            timeout_s=float(data.get("download_timeout_s", 60)),
            verify_checksum=bool(data.get("verify_checksum", True)),
        )
    except NetworkUnavailableError as exc:
        if source == "movielens":
            raise NetworkUnavailableError(
                f"data.source is 'movielens' but no {release.archive_name} (nor an extracted "
                f"{release.folder_names[0]}/ folder) is in {raw_dir} and the download failed: {exc} "
                f"Put the archive in {raw_dir}, set data.path, or set data.source: synthetic."
            ) from exc
        logger.warning(
            "No network to download %s (%s). USING SYNTHETIC RATINGS shaped like %s: every number "
            "this run reports is synthetic. For the real data, put %s in %s or set data.path.",
            release.url,
            exc.__cause__ or exc,
            release.name,
            release.archive_name,
            raw_dir,
        )
        return None
    return RatingsLocation(path, release.member, "zip")


def file_ratings(data: Mapping[str, Any]) -> tuple[pd.DataFrame, dict]:
    """Ratings of a Ciao/Epinions .mat file or a table at data.path, with the rules' counts."""
    source = data["source"]
    if not data.get("path"):
        raise DataFileError(
            f"data.source is {source!r}, which reads the file at data.path, but data.path is not "
            "set: e.g. --params data.path=data/01_raw/rating.mat."
        )
    path = Path(data["path"]).expanduser()
    on_bad_lines = data.get("on_bad_lines", "error")
    if source == "ciao":
        read, what = read_ciao(path, on_bad_lines), "Ciao/Epinions ratings"
    else:
        read, what = read_table(path, data.get("columns"), on_bad_lines), "table"
    drop_zero = bool(data.get("drop_zero_ratings", True))
    ratings, counts = apply_rules(read, drop_zero, str(path))
    md5 = file_md5(path)
    shape = _shape(ratings)
    provenance = {
        "source": source,
        "file": path.name,
        "md5": md5,
        **({"columns": dict(data["columns"])} if source == "table" and data.get("columns") else {}),
        "drop_zero_ratings": drop_zero,
        **shape,
        **counts,
        "description": f"{what} {path.name} (md5 {md5}), {shape['num_ratings']:,} ratings",
    }
    logger.info("Loaded %s", provenance["description"])
    return ratings, provenance


def load_ratings(data: Mapping[str, Any]) -> tuple[pd.DataFrame, dict]:
    """Ratings and their provenance, following the `data` parameters (see parameters file)."""
    source = data.get("source", "auto")
    if source not in SOURCES:
        raise MovieLensError(f"data.source is {source!r}; use one of {', '.join(SOURCES)}.")
    if source in FILE_SOURCES:
        return file_ratings(data)  # data.dataset names a MovieLens release: not used here
    release = get_release(data.get("dataset", "ml-1m"))
    if source == "synthetic":
        return synthetic_ratings(release, data.get("synthetic") or {})
    location = _locate(release, data, source)
    if location is None:
        return synthetic_ratings(release, data.get("synthetic") or {})
    md5, verified = _archive_md5(
        location, release, bool(data.get("verify_checksum", True)), user_path=bool(data.get("path"))
    )
    parsed = read_ratings(location, release, data.get("on_bad_lines", "error"))
    read = ReadRatings(
        parsed.ratings,
        rows_read=len(parsed.ratings) + parsed.skipped_lines,
        bad_rows_skipped=parsed.skipped_lines - parsed.out_of_scale_lines,
        out_of_range_dropped=parsed.out_of_scale_lines,
    )
    ratings, counts = apply_rules(read, drop_zero=False, where=location.display)
    shape = _shape(ratings)
    provenance = {
        "source": "movielens",
        "dataset": release.name,
        "archive": location.path.name,
        "member": location.member,
        "md5": md5,
        "checksum_verified": verified,
        **shape,
        **counts,
        "description": (
            f"MovieLens {release.name} ({'md5 ' + md5 if md5 else 'extracted folder, no checksum'}), "
            f"{shape['num_ratings']:,} ratings"
        ),
    }
    logger.info("Loaded %s", provenance["description"])
    return ratings, provenance
