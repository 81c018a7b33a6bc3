"""memory-efficient-embeddings
"""

__version__ = "0.1"
