"""Vectorised generator of MovieLens-shaped ratings, calibrated against real MovieLens.

A rating is a latent score cut into stars: user bias + movie bias (higher for popular movies) +
a user × movie interaction whose factors have a decaying spectrum (no hard rank) and are
strongest for popular movies and heavy raters + noise whose scale varies by user and by movie. Who rates what follows MovieLens' movie popularity curve and
its long tail of ratings per user. ``benchmarks/calibrate_synthetic.py`` checks the statistics
against a real archive.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import MISSING, asdict, dataclass, fields
from typing import Any

import numpy as np
import pandas as pd

from .errors import SyntheticConfigError
from .releases import Release

logger = logging.getLogger(__name__)

_CHUNK_ROWS = 1 << 18
_MAX_ROUNDS = 4


@dataclass(frozen=True)
class SyntheticSpec:
    """Every knob of the generator; the pipeline fills it from `params:data.synthetic`."""

    num_users: int
    num_movies: int
    num_ratings: int
    min_ratings_per_user: int = 20
    seed: int = 42
    user_activity_shape: float = 0.7
    max_user_fraction: float = 0.6
    # (rank fraction, log weight) knots of the movie popularity curve, most popular first:
    # real ml-100k's log(ratings per movie / mean) at those ranks (ml-1m's has the same shape).
    popularity_curve: tuple[tuple[float, float], ...] = (
        (0.0, 3.2),
        (0.01, 2.3),
        (0.05, 1.55),
        (0.1, 1.15),
        (0.2, 0.5),
        (0.3, 0.0),
        (0.5, -0.95),
        (0.7, -2.05),
        (0.9, -3.4),
        (1.0, -4.5),
    )
    user_bias_sd: float = 0.5
    item_bias_sd: float = 0.55
    popularity_bias: float = 0.45
    num_factors: int = 128
    spectrum_decay: float = 1.5
    interaction_sd: float = 1.2
    popularity_interaction: float = 0.75
    activity_interaction: float = 0.75
    noise_sd: float = 1.0
    user_noise_sigma: float = 0.3
    popularity_noise: float = 0.1
    user_scale_sigma: float = 0.5
    rating_distribution: tuple[float, ...] = (0.056, 0.108, 0.261, 0.349, 0.226)
    rating_min: int = 1
    start_timestamp: int = 956_703_932
    span_s: int = 3 * 365 * 24 * 3600
    max_gap_s: int = 3_600

    @classmethod
    def from_params(cls, params: Mapping[str, Any], release: Release) -> SyntheticSpec:
        """Build a spec from parameters; null sizes take the release's published shape."""
        known = {f.name for f in fields(cls)}
        unknown = set(params) - known
        if unknown:
            raise SyntheticConfigError(
                f"Unknown key(s) {sorted(unknown)} under data.synthetic; known keys: {sorted(known)}."
            )
        values = {k: v for k, v in params.items() if v is not None}
        wrong_types = _type_problems(cls, values)
        if wrong_types:
            raise SyntheticConfigError(
                "Impossible synthetic data set (parameters data.synthetic): "
                + "; ".join(wrong_types)
                + "."
            )
        values.setdefault("num_users", release.num_users)
        values.setdefault("num_movies", release.num_movies)
        values.setdefault("num_ratings", release.num_ratings)
        values.setdefault("min_ratings_per_user", release.min_ratings_per_user)
        if "rating_distribution" in values:
            values["rating_distribution"] = tuple(values["rating_distribution"])
        if "popularity_curve" in values:
            values["popularity_curve"] = tuple(tuple(knot) for knot in values["popularity_curve"])
        return cls(**values)

    def as_dict(self) -> dict[str, Any]:
        """Plain-JSON view for provenance records."""
        out = asdict(self)
        out["rating_distribution"] = list(self.rating_distribution)
        out["popularity_curve"] = [list(knot) for knot in self.popularity_curve]
        return out

    @property
    def user_cap(self) -> int:
        """Most ratings one user may have (keeps sampling without replacement cheap)."""
        return max(self.min_ratings_per_user, int(self.max_user_fraction * self.num_movies))

    def validate(self) -> None:
        """Raise SyntheticConfigError when the requested shape is impossible."""
        u, m, r, k = self.num_users, self.num_movies, self.num_ratings, self.min_ratings_per_user
        problems = []
        if min(u, m, r) < 1 or k < 0 or self.num_factors < 1:
            problems.append("num_users, num_movies, num_ratings and num_factors must be positive")
        elif k > m:
            problems.append(f"min_ratings_per_user ({k}) exceeds num_movies ({m})")
        elif r < u * k:
            problems.append(f"num_ratings ({r:,}) < num_users × min_ratings_per_user ({u * k:,})")
        elif r > u * self.user_cap:
            problems.append(
                f"num_ratings ({r:,}) > num_users × max_user_fraction × num_movies "
                f"({u * self.user_cap:,}); raise max_user_fraction or num_movies"
            )
        elif r < m:
            problems.append(
                f"num_ratings ({r:,}) < num_movies ({m:,}): some movie would be unrated"
            )
        if self.user_activity_shape <= 0:
            problems.append("user_activity_shape must be positive")
        if not 0 < self.max_user_fraction <= 1:
            problems.append(
                f"max_user_fraction ({self.max_user_fraction}) must be a share of the movies, "
                "above 0 and at most 1"
            )
        # Users start at a uniform draw in [0, span_s), and gaps are drawn in [1, max_gap_s).
        if self.span_s < 1 or self.max_gap_s < 2:
            problems.append(
                f"span_s ({self.span_s}) must be at least 1 and max_gap_s ({self.max_gap_s}) "
                "at least 2 (seconds)"
            )
        spreads = (
            "user_bias_sd",
            "item_bias_sd",
            "interaction_sd",
            "noise_sd",
            "user_noise_sigma",
            "user_scale_sigma",
        )
        negative = [name for name in spreads if getattr(self, name) < 0]
        if negative:
            problems.append(f"{', '.join(negative)} must not be negative")
        dist = np.asarray(self.rating_distribution, dtype=float)
        if (
            dist.ndim != 1
            or len(dist) < 2
            or (dist < 0).any()
            or not math.isclose(dist.sum(), 1.0, abs_tol=1e-3)
        ):
            problems.append("rating_distribution must list ≥ 2 non-negative shares summing to 1")
        knots = np.asarray(self.popularity_curve, dtype=float)
        if (
            knots.ndim != 2
            or knots.shape[1] != 2
            or len(knots) < 2
            or knots[0, 0] != 0.0
            or knots[-1, 0] != 1.0
            or (np.diff(knots[:, 0]) <= 0).any()
            or (np.diff(knots[:, 1]) > 0).any()
        ):
            problems.append(
                "popularity_curve must list [rank_fraction, log_weight] pairs with rank fractions "
                "rising from 0 to 1 and log weights never rising"
            )
        if problems:
            raise SyntheticConfigError(
                "Impossible synthetic data set (parameters data.synthetic): "
                + "; ".join(problems)
                + "."
            )


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _type_problems(spec: type[SyntheticSpec], values: Mapping[str, Any]) -> list[str]:
    """Each knob has its default's type: an int knob an int, a float knob a number, a list of
    numbers (or of [rank, weight] pairs) a list; checked before the generator computes with it."""
    defaults = {f.name: f.default for f in fields(spec)}
    problems = []
    for name, value in values.items():
        default = defaults[name]
        if default is MISSING or (isinstance(default, int) and not isinstance(default, bool)):
            wanted, ok = "an int", isinstance(value, int) and not isinstance(value, bool)
        elif isinstance(default, tuple):
            items = [
                item
                for entry in (value if isinstance(value, list | tuple) else [None])
                for item in (entry if isinstance(entry, list | tuple) else [entry])
            ]
            wanted, ok = "a list of numbers", all(map(_is_number, items))
        else:
            wanted, ok = "a number", _is_number(value)
        if not ok:
            problems.append(f"data.synthetic.{name} is {value!r}, which is not {wanted}")
    return problems


def _expected_counts(spec: SyntheticSpec, weights: np.ndarray) -> np.ndarray:
    """Ratings each user is expected to have: the minimum plus a share of the rest by weight."""
    extra = spec.num_ratings - spec.num_users * spec.min_ratings_per_user
    return spec.min_ratings_per_user + extra * weights / weights.sum()


def _user_counts(rng: np.random.Generator, spec: SyntheticSpec, weights: np.ndarray) -> np.ndarray:
    """Ratings per user: the minimum plus a share of the rest drawn by activity weight, capped."""
    extra = spec.num_ratings - spec.num_users * spec.min_ratings_per_user
    counts = spec.min_ratings_per_user + rng.multinomial(extra, weights / weights.sum())
    while True:
        excess = int(np.clip(counts - spec.user_cap, 0, None).sum())
        if excess == 0:
            return counts.astype(np.int64)
        counts = np.minimum(counts, spec.user_cap)
        room = np.where(counts < spec.user_cap, weights, 0.0)
        counts += rng.multinomial(excess, room / room.sum())


def _first_per_key(keys: np.ndarray) -> np.ndarray:
    """Sorted positions of each key's first occurrence (order-preserving de-duplication)."""
    _, first = np.unique(keys, return_index=True)
    first.sort()
    return first


def _rank_in_group(groups: np.ndarray) -> np.ndarray:
    """0-based position of each element within its run of equal, contiguous group values."""
    n = len(groups)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])
    lengths = np.diff(np.r_[starts, n])
    return np.arange(n) - np.repeat(starts, lengths)


def _sample_pairs(
    rng: np.random.Generator, counts: np.ndarray, popularity: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Distinct (user, movie) pairs, exactly counts[u] per user, movies drawn by popularity."""
    num_users, num_movies = len(counts), len(popularity)
    cdf = np.cumsum(popularity)
    cdf /= cdf[-1]
    need = counts.copy()
    chosen: list[np.ndarray] = []  # sorted int64 keys user * num_movies + movie, one per round
    for round_ in range(_MAX_ROUNDS):
        active = np.flatnonzero(need > 0)
        if active.size == 0:
            break
        # Over-sample so duplicates rarely leave a user short; later rounds only top up.
        factor = 1.3 if round_ == 0 else 2.5
        draws = np.ceil(need[active] * factor).astype(np.int64) + 2
        users = np.repeat(active, draws)
        movies = np.searchsorted(cdf, rng.random(users.size), side="right")
        np.minimum(movies, num_movies - 1, out=movies)
        keys = users * num_movies + movies
        fresh = np.ones(keys.size, dtype=bool)
        for done in chosen:
            pos = np.minimum(np.searchsorted(done, keys), done.size - 1)
            fresh &= done[pos] != keys
        keys, users = keys[fresh], users[fresh]
        first = _first_per_key(keys)
        keys, users = keys[first], users[first]
        take = _rank_in_group(users) < need[users]
        kept = keys[take]
        chosen.append(np.sort(kept))
        need -= np.bincount(users[take], minlength=num_users)
    # Heavy users still short: exact weighted sampling without replacement (Gumbel top-k).
    log_p = np.log(popularity)
    done_keys = np.concatenate(chosen) if chosen else np.zeros(0, np.int64)
    extra = []
    for user in np.flatnonzero(need > 0):
        have = done_keys[(done_keys >= user * num_movies) & (done_keys < (user + 1) * num_movies)]
        scores = log_p - np.log(-np.log(rng.random(num_movies)))
        scores[have - user * num_movies] = -np.inf
        pick = np.argpartition(-scores, need[user] - 1)[: need[user]]
        extra.append(user * num_movies + pick)
    keys = np.sort(np.concatenate([done_keys, *extra]))
    return keys // num_movies, keys % num_movies


def _cover_all_movies(
    rng: np.random.Generator, users: np.ndarray, movies: np.ndarray, num_movies: int
) -> None:
    """Give every unrated movie one rating, taken from rows of well-rated movies (in place)."""
    counts = np.bincount(movies, minlength=num_movies)
    missing = np.flatnonzero(counts == 0)
    if missing.size == 0:
        return
    # Every rated movie keeps one row; any other row may donate. An unrated movie forms no
    # existing pair with any user, so moving one row to each keeps (user, movie) pairs unique.
    # Random candidate rows first (cheap at 25M rows); each movie gives at most count - 1.
    candidates = np.unique(rng.integers(0, movies.size, size=4 * missing.size + 64))
    candidates = candidates[rng.permutation(candidates.size)]
    order = np.argsort(movies[candidates], kind="stable")
    rank = np.empty(candidates.size, dtype=np.int64)
    rank[order] = _rank_in_group(movies[candidates][order])
    donors = candidates[rank < counts[movies[candidates]] - 1]
    if donors.size < missing.size:
        # Few spare rows: list every spare row exactly.
        order = np.argsort(movies, kind="stable")
        sorted_movies = movies[order]
        donors = order[np.r_[False, sorted_movies[1:] == sorted_movies[:-1]]]
        if donors.size < missing.size:
            raise SyntheticConfigError(
                f"{movies.size:,} ratings cannot cover {num_movies:,} movies with at least one "
                "rating each; raise data.synthetic.num_ratings or lower data.synthetic.num_movies."
            )
        donors = rng.permutation(donors)
    movies[donors[: missing.size]] = missing


def _popularity(rng: np.random.Generator, spec: SyntheticSpec) -> np.ndarray:
    """Movie sampling weights along popularity_curve, over a random order of movie ids."""
    # A random order, so that ids say nothing about popularity.
    rank_fraction = (rng.permutation(spec.num_movies) + 0.5) / spec.num_movies
    knots = np.asarray(spec.popularity_curve, dtype=float)
    weights = np.exp(np.interp(rank_fraction, knots[:, 0], knots[:, 1]))
    return weights / weights.sum()


def factor_variances(spec: SyntheticSpec) -> np.ndarray:
    """Variance of each latent factor: a power-law spectrum summing to interaction_sd²."""
    # No hard rank: every factor carries some signal, each less than the one before, so wider
    # tables keep helping a little.
    decay = np.arange(1, spec.num_factors + 1, dtype=float) ** -spec.spectrum_decay
    return spec.interaction_sd**2 * decay / decay.sum()


def _standardised(values: np.ndarray) -> np.ndarray:
    return (values - values.mean()) / (values.std() or 1.0)


@dataclass(frozen=True)
class LatentModel:
    """The hidden truth behind the ratings: popularity, biases, factors and noise scales."""

    popularity: np.ndarray  # sampling weight of each movie, summing to 1
    activity: np.ndarray  # activity weight of each user: their share of ratings beyond the minimum
    user_bias: np.ndarray
    item_bias: np.ndarray
    user_factors: np.ndarray  # num_users × num_factors, column k scaled by √factor_variances[k],
    # row scale by activity
    item_factors: np.ndarray  # num_movies × num_factors, normal, row scale by popularity
    user_noise: np.ndarray  # noise standard deviation = user_noise[u] × item_noise[m]
    item_noise: np.ndarray
    user_scale: np.ndarray  # how strongly each user follows the movie bias and interaction


def _streams(spec: SyntheticSpec) -> tuple[np.random.Generator, ...]:
    """Independent generators for the latent model, the sampling of pairs and the noise."""
    return tuple(np.random.default_rng(s) for s in np.random.SeedSequence(spec.seed).spawn(3))


def latent_model(spec: SyntheticSpec) -> LatentModel:
    """Draw the latent model of ``spec`` (the same one ``generate_ratings`` rates with)."""
    rng = _streams(spec)[0]
    popularity = _popularity(rng, spec)
    pop_z = _standardised(np.log(popularity))
    # Popular movies are rated higher, as in MovieLens.
    item_bias = rng.normal(0.0, spec.item_bias_sd, spec.num_movies) + spec.popularity_bias * pop_z
    user_bias = rng.normal(0.0, spec.user_bias_sd, spec.num_users)
    scale = np.sqrt(factor_variances(spec)).astype(np.float32)
    user_factors = rng.standard_normal((spec.num_users, spec.num_factors), np.float32) * scale
    item_factors = rng.standard_normal((spec.num_movies, spec.num_factors), np.float32)
    # Taste matters most for popular movies: each movie's factors scale with
    # exp(popularity_interaction × standardised log popularity), normalised to mean square 1 over
    # ratings (weighted by popularity) so interaction_sd stays the interaction's spread per rating.
    # Tail movies then carry little interaction to learn, head movies more.
    item_weight = np.exp(spec.popularity_interaction * pop_z)
    item_weight /= np.sqrt(np.average(item_weight**2, weights=popularity))
    item_factors *= item_weight.astype(np.float32)[:, None]
    # Some users rate erratically, and rarely rated movies split opinion more: noise scales
    # per user (log-normal) and per movie (falling with popularity), both with mean square 1.
    user_noise = rng.lognormal(0.0, spec.user_noise_sigma, spec.num_users)
    item_noise = np.exp(-spec.popularity_noise * pop_z)
    # Users agree with the crowd to different degrees: a per-user multiplier of the movie side.
    user_scale = np.exp(spec.user_scale_sigma * rng.standard_normal(spec.num_users))
    # MovieLens activity beyond the minimum has median ≈ 0.52 × mean: a gamma with shape < 1.
    activity = rng.gamma(spec.user_activity_shape, 1.0, spec.num_users)
    # Heavy raters have more distinct tastes: each user's factors scale with
    # exp(activity_interaction × standardised log expected ratings), normalised to mean square 1
    # over ratings (weighted by expected ratings), as for movies.
    expected = _expected_counts(spec, activity)
    user_weight = np.exp(spec.activity_interaction * _standardised(np.log(expected)))
    user_weight /= np.sqrt(np.average(user_weight**2, weights=expected))
    user_factors *= user_weight.astype(np.float32)[:, None]
    return LatentModel(
        popularity=popularity,
        activity=activity,
        user_bias=user_bias.astype(np.float32),
        item_bias=item_bias.astype(np.float32),
        user_factors=user_factors,
        item_factors=item_factors,
        user_noise=(spec.noise_sd * user_noise / np.sqrt(np.mean(user_noise**2))).astype(
            np.float32
        ),
        item_noise=(item_noise / np.sqrt(np.mean(item_noise**2))).astype(np.float32),
        user_scale=user_scale.astype(np.float32),
    )


def signal_matrix(model: LatentModel) -> np.ndarray:
    """Noiseless latent score of every (user, movie) pair; dense, so for small shapes only."""
    interaction = model.user_factors.astype(np.float64) @ model.item_factors.T.astype(np.float64)
    movie_side = model.item_bias[None, :] + interaction
    return model.user_bias[:, None] + model.user_scale[:, None] * movie_side


def _scores(
    rng: np.random.Generator, model: LatentModel, users: np.ndarray, movies: np.ndarray
) -> np.ndarray:
    """Latent score of each rated pair: biases, interaction and heteroscedastic noise."""
    out = np.empty(users.size, dtype=np.float32)
    for start in range(0, users.size, _CHUNK_ROWS):
        u, m = users[start : start + _CHUNK_ROWS], movies[start : start + _CHUNK_ROWS]
        inter = np.einsum("ij,ij->i", model.user_factors[u], model.item_factors[m])
        noise = rng.standard_normal(u.size, dtype=np.float32)
        noise *= model.user_noise[u] * model.item_noise[m]
        movie_side = model.item_bias[m] + inter
        out[start : start + u.size] = model.user_bias[u] + model.user_scale[u] * movie_side + noise
    return out


def _discretise(scores: np.ndarray, spec: SyntheticSpec) -> np.ndarray:
    """Map scores to integer stars whose marginal follows rating_distribution."""
    shares = np.asarray(spec.rating_distribution, dtype=float)
    cuts = np.quantile(scores, np.cumsum(shares / shares.sum())[:-1])
    return (spec.rating_min + np.searchsorted(cuts, scores)).astype(np.float32)


def _timestamps(rng: np.random.Generator, spec: SyntheticSpec, users: np.ndarray) -> np.ndarray:
    """Increasing timestamps within each user, starting at a random point of the span."""
    gaps = rng.integers(1, spec.max_gap_s, size=users.size, dtype=np.int64)
    elapsed = np.cumsum(gaps)
    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
    base = np.repeat(elapsed[starts] - gaps[starts], np.diff(np.r_[starts, users.size]))
    user_start = rng.integers(0, spec.span_s, size=spec.num_users, dtype=np.int64)
    return spec.start_timestamp + user_start[users] + (elapsed - base)


def generate_ratings(spec: SyntheticSpec) -> pd.DataFrame:
    """Generate ratings (user_id, movie_id, rating, timestamp) shaped and seeded as in ``spec``."""
    spec.validate()
    model = latent_model(spec)
    _, sampling_rng, noise_rng = _streams(spec)
    counts = _user_counts(sampling_rng, spec, model.activity)
    users, movies = _sample_pairs(sampling_rng, counts, model.popularity)
    _cover_all_movies(sampling_rng, users, movies, spec.num_movies)
    rating = _discretise(_scores(noise_rng, model, users, movies), spec)
    return pd.DataFrame(
        {
            # 1-based ids, as in MovieLens.
            "user_id": users + 1,
            "movie_id": movies + 1,
            "rating": rating,
            "timestamp": _timestamps(sampling_rng, spec, users),
        }
    )
