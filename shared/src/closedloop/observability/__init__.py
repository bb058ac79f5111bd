"""Prometheus metrics and OpenTelemetry traces, installed on every service by one call
(``install``): what a service counts is its own business, the machinery is here."""

from closedloop.observability.install import install
from closedloop.observability.metrics import ServiceMetrics

__all__ = ["ServiceMetrics", "install"]
