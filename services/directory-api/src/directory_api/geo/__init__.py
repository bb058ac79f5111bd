"""Places: US ZIP codes resolved to their centroid, offline."""

__all__ = ["zipcodes"]
