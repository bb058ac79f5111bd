"""Outbox tables (referral-api's own; revision 0002, the traceparent column 0006).

``outbox_events.seq`` is the delivery order. ``outbox_leases`` holds one row per dispatcher
role: only the process holding the unexpired lease delivers, so two referral-api processes on
one database never deliver the same event twice.
"""

from __future__ import annotations

from closedloop.fhir.storage.tables import PK
from sqlalchemy import BigInteger, Column, Index, Integer, MetaData, String, Table, Text

metadata = MetaData()

outbox_events = Table(
    "outbox_events",
    metadata,
    Column("seq", PK, primary_key=True, autoincrement=True),
    Column("event_id", String(36), nullable=False, unique=True),
    Column("resource_type", String(64), nullable=False),
    Column("resource_id", String(64), nullable=False),
    Column("version_id", Integer, nullable=False),
    Column("interaction", String(16), nullable=False),
    Column("occurred_at", BigInteger, nullable=False),
    Column("payload", Text, nullable=False),
    Column("delivered_at", BigInteger, nullable=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", String(500), nullable=True),
    # the W3C traceparent of the request that made the change (revision 0006): its delivery
    # continues that trace
    Column("traceparent", String(55), nullable=True),
    Index("ix_outbox_pending", "delivered_at", "seq"),
)

outbox_leases = Table(
    "outbox_leases",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("holder", String(64), nullable=True),
    Column("expires_at", BigInteger, nullable=False),
)
