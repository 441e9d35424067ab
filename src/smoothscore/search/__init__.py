"""Search: exact nearest neighbours (FAISS candidates refined in float64, streamed and sharded) and the
lower-bound indexes that find the candidates of a truncated exact score."""

from .neighbors import NeighborIndex, nearest_neighbors

__all__ = ["NeighborIndex", "nearest_neighbors"]
