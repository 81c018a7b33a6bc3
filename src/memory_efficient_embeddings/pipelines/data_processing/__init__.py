"""Data processing: ingest ratings (MovieLens, synthetic, Ciao/Epinions .mat, a table), split them,
build vocabularies."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
