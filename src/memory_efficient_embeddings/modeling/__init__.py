"""Modeling nodes and the pipeline template that `baseline` and `memory_efficient` instantiate."""
