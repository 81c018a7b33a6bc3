"""benchmarks/calibrate_synthetic.py: its statistics by hand, and real-vs-synthetic checks."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from memory_efficient_embeddings.ingest import RELEASES, SyntheticSpec, generate_ratings
from tests.ingest.helpers import make_zip, ratings_text

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "calibrate_synthetic.py"
SHAPE = {"num_users": 40, "num_movies": 60, "num_ratings": 1200, "seed": 3}


@pytest.fixture(scope="module")
def calibrate():
    spec = importlib.util.spec_from_file_location("calibrate_synthetic", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["calibrate_synthetic"] = module
    spec.loader.exec_module(module)
    return module


def test_statistics_match_a_hand_computation(calibrate):
    # Movie 10: 3 ratings (5, 4, 3); movie 20: 1 rating (1); users 1..3 rate 2, 1, 1 movies.
    ratings = pd.DataFrame(
        {"user_id": [1, 1, 2, 3], "movie_id": [10, 20, 10, 10], "rating": [5.0, 1.0, 4.0, 3.0]}
    )
    stats = calibrate.rating_statistics(ratings)
    assert (stats["num_ratings"], stats["num_users"], stats["num_movies"]) == (4, 3, 2)
    # Ratings per movie [3, 1]: the median is 2; per user [2, 1, 1]: the median is 1.
    assert stats["popularity_quantiles"][2] == 2.0
    assert stats["activity_quantiles"][2] == 1.0
    assert stats["histogram"] == {1: 0.25, 3: 0.25, 4: 0.25, 5: 0.25}
    # User means 3, 4, 3: sample sd sqrt(((−1/3)² · 2 + (2/3)²) / 2) = sqrt(1/3).
    assert stats["user_mean_sd"] == pytest.approx(np.sqrt(1 / 3))
    # Movie means 4 (3 ratings) and 1 (1 rating): the more popular movie is rated higher.
    assert stats["popularity_rating_correlation"] == pytest.approx(1.0)


def _archive_of(tmp_path: Path, ratings: pd.DataFrame) -> Path:
    release = RELEASES["ml-100k"]
    rows = ratings[["user_id", "movie_id", "rating", "timestamp"]].astype(int).itertuples(False)
    return make_zip(tmp_path, release, ratings_text(release, list(rows)))


def _run(calibrate, archive: Path, *overrides: str) -> dict:
    sets = [f"--set={k}={v}" for k, v in SHAPE.items()] + [f"--set={o}" for o in overrides]
    argv = ["--archive", str(archive), "--dataset", "ml-100k", "--no-verify-checksum"]
    return calibrate.main([*argv, "--skip-fit", *sets])


def test_the_same_generator_passes_and_a_different_histogram_fails(calibrate, tmp_path):
    spec = SyntheticSpec.from_params(SHAPE, RELEASES["ml-100k"])
    archive = _archive_of(tmp_path, generate_ratings(spec))

    same = _run(calibrate, archive)
    assert same["passed"]
    assert same["real"]["histogram"] == same["synthetic"]["histogram"]

    skewed = _run(calibrate, archive, "rating_distribution=[0.3, 0.3, 0.2, 0.1, 0.1]")
    assert not skewed["passed"]
    failed = {c["statistic"] for c in skewed["checks"] if not c["pass"]}
    assert "share of 1 stars" in failed
    assert not any(name.startswith("ratings per") for name in failed)
