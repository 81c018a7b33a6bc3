"""`kedro run --pipelines=sweep`: the compression frontier of every technique, over seeds."""

from typing import Any


def create_pipeline(**kwargs: Any) -> Any:
    """The sweep pipeline (see pipeline.py)."""
    # Imported here, not at the top: a `processes` sweep worker imports this package to reach
    # executors.py, and should not pay for TensorFlow before its first task needs it.
    from .pipeline import create_pipeline as create  # noqa: PLC0415

    return create(**kwargs)


__all__ = ["create_pipeline"]
