"""Delivering notifications: building the Backport notification Bundles and the worker that
sends them, one subscription at a time, in order, with retries; its Prometheus series."""

__all__ = ["bundles", "metrics", "worker"]
