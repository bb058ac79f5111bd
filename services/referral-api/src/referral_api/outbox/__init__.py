"""The referral event outbox: every Task and ServiceRequest change writes an event row in the
same transaction (``writer``); a dispatcher delivers the rows in order over HTTP
(``dispatcher``)."""

__all__ = ["dispatcher", "tables", "writer"]
