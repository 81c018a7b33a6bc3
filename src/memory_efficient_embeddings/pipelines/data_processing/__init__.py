"""Data processing: ingest MovieLens (or its synthetic stand-in), split it, build vocabularies."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
