"""`kedro run --pipelines=sweep`: the compression frontier of every technique, over seeds."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
