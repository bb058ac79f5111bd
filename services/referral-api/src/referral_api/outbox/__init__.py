"""The referral event outbox: every Task and ServiceRequest change writes an event row in the
same transaction (``writer``); a dispatcher delivers the rows in order over HTTP
(``dispatcher``); its Prometheus series (``metrics``)."""

__all__ = ["dispatcher", "metrics", "tables", "writer"]
