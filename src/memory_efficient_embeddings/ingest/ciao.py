"""Reader of Tang et al.'s Ciao and Epinions `.mat` files (`data.source: ciao`).

The MATLAB variable `rating` is an integer array, one row per rating, with the columns user, item,
category, rating and (not always) helpfulness. Ids start at 1; ratings run from 1 to 5, and 0
means "no rating" (rules.py drops those rows).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.io

from .errors import DataFileError, MalformedRatingsError
from .parsing import OnBadLines
from .rules import ReadRatings

logger = logging.getLogger(__name__)

VARIABLE = "rating"
USER, ITEM, RATING = 0, 1, 3  # columns of `rating`; 2 is the category, 4 the helpfulness
MIN_COLUMNS = RATING + 1
SCALE = (1.0, 5.0)
LAYOUT = "user, item, category, rating[, helpfulness]"


def _load_variable(path: Path) -> np.ndarray:
    """The `rating` array of a .mat file, with one clear error for each way it can be unusable."""
    if not path.is_file():
        what = "a folder" if path.is_dir() else "nothing"
        raise DataFileError(
            f"data.path is {str(path)!r}, but {what} is there: set it to Tang's Ciao or Epinions "
            "rating .mat file (data.source: ciao)."
        )
    try:
        # appendmat=False: never read "rating.mat" when the user named "rating".
        contents = scipy.io.loadmat(path, variable_names=[VARIABLE], appendmat=False)
    except NotImplementedError as exc:  # scipy's word for MATLAB v7.3 (HDF5) files
        raise DataFileError(
            f"{path} is a MATLAB v7.3 (HDF5) file, which scipy cannot read ({exc}). Re-save it "
            "in MATLAB or Octave with `save -v7`, or export `rating` to CSV and use "
            "data.source: table."
        ) from exc
    except Exception as exc:  # noqa: BLE001 - scipy fails on foreign bytes in many ways
        raise DataFileError(
            f"{path} is not a readable MATLAB .mat file ({type(exc).__name__}: {exc}). "
            "data.source: ciao reads Tang's "
            "Ciao or Epinions rating .mat files; for a CSV or Parquet file use data.source: table."
        ) from exc
    if VARIABLE not in contents:
        found = [name for name, *_ in scipy.io.whosmat(path, appendmat=False)]
        raise DataFileError(
            f"{path} has no variable `{VARIABLE}` (it holds: {', '.join(found) or 'nothing'}). "
            f"data.source: ciao reads Tang's rating array ({LAYOUT}); export another layout to "
            "CSV and use data.source: table."
        )
    array = np.asarray(contents[VARIABLE])
    if array.ndim != 2 or array.shape[1] < MIN_COLUMNS or not np.issubdtype(array.dtype, np.number):
        raise DataFileError(
            f"{path}: `{VARIABLE}` is a {array.dtype} array of shape {array.shape}, but "
            f"data.source: ciao needs a numeric array with at least {MIN_COLUMNS} columns "
            f"({LAYOUT}), one row per rating."
        )
    if array.shape[0] == 0:
        raise DataFileError(f"{path}: `{VARIABLE}` holds no ratings. Is it the right file?")
    return array


def _row_problems(array: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Masks of bad rows and of ratings off the 1-5 scale (0 excepted), and one reason per row."""
    values = array[:, [USER, ITEM, RATING]].astype(np.float64)
    reasons = np.full(len(array), "", dtype=object)
    bad = np.zeros(len(array), dtype=bool)
    for column, name in ((0, "user"), (1, "item")):
        ids = values[:, column]
        wrong = ~bad & ~(np.isfinite(ids) & (ids == np.round(ids)) & (ids >= 1))
        reasons[wrong] = f"the {name} id is not a positive integer"
        bad |= wrong
    rating = values[:, 2]
    wrong = ~bad & ~np.isfinite(rating)
    reasons[wrong] = "the rating is not a number"
    bad |= wrong
    off_scale = ~bad & (rating != 0) & ((rating < SCALE[0]) | (rating > SCALE[1]))
    reasons[off_scale] = (
        f"the rating is outside the scale {SCALE[0]:g}..{SCALE[1]:g} (0: no rating)"
    )
    return bad, off_scale, reasons.tolist()


def read_ciao(path: str | Path, on_bad_lines: OnBadLines = "error") -> ReadRatings:
    """Read a Ciao or Epinions rating .mat file into canonical columns; rule 1 applied."""
    path = Path(path).expanduser()
    array = _load_variable(path)
    bad, off_scale, reasons = _row_problems(array)
    dropped = bad | off_scale
    if dropped.any() and on_bad_lines == "error":
        row = int(np.flatnonzero(dropped)[0])
        raise MalformedRatingsError(
            f"{path}, row {row + 1} of `{VARIABLE}`: {reasons[row]}: "
            f"{array[row].tolist()} ({int(dropped.sum())} bad row(s) in all; columns {LAYOUT}). "
            "Fix the file, or set `data.on_bad_lines: skip` to drop bad rows."
        )
    if dropped.any():
        logger.warning(
            "Skipped %d bad row(s) of %s (data.on_bad_lines: skip)", int(dropped.sum()), path
        )
    kept = array[~dropped]
    ratings = pd.DataFrame(
        {
            "user_id": kept[:, USER].astype(np.int64),
            "movie_id": kept[:, ITEM].astype(np.int64),
            "rating": kept[:, RATING].astype(np.float32),
        }
    )
    return ReadRatings(ratings, len(array), int(bad.sum()), int(off_scale.sum()))
