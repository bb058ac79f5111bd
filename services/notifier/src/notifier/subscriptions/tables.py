"""Notifier tables (revision 0002): what survives a restart.

- ``subscription_state``: per Subscription, its delivery status, the persisted event counter
  (event numbers are strictly increasing per subscription), when work is next due, the lease
  that keeps one process delivering it, the signing secret (kept out of the resource), how
  many times in a row working it failed (its backoff, revision 0004) and whether its filters
  failed to evaluate (it is then left out of matching until the client rewrites it), and its
  owner (revision 0005: the token that created it, whose organization it belongs to).
- ``notification_events``: the stored event log per subscription, served by ``$events``; an
  event is delivered at most once at a time, in order, and kept after delivery. Each keeps
  the ``traceparent`` of the referral event's trace (revision 0007), so its delivery is part
  of that trace even after a restart.
- ``intake_events``: every referral event received, keyed by its id, so a redelivered event is
  not notified twice.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    false,
)

metadata = MetaData()

subscription_state = Table(
    "subscription_state",
    metadata,
    Column("subscription_id", String(64), primary_key=True),
    Column("topic", String(255), nullable=False),
    Column("criteria", Text, nullable=False, default=""),  # filters, one query per line
    Column("status", String(16), nullable=False),  # requested | active | error | off
    Column("events_count", BigInteger, nullable=False, default=0),
    Column("next_due_at", BigInteger, nullable=False, default=0),
    Column("last_sent_at", BigInteger, nullable=False, default=0),
    Column("lease_holder", String(64), nullable=True),
    Column("lease_expires", BigInteger, nullable=False, default=0),
    Column("secret", String(255), nullable=True),
    Column("error", String(500), nullable=True),
    Column("failures", Integer, nullable=False, default=0, server_default="0"),
    Column("filters_failed", Boolean, nullable=False, default=False, server_default=false()),
    # who created it (revision 0005): it is told only what they may read
    Column("owner_subject", String(255), nullable=True),
    Column("owner_role", String(32), nullable=True),
    Column("owner_organization", String(255), nullable=True),
    Index("ix_subscription_due", "status", "next_due_at"),
)

notification_events = Table(
    "notification_events",
    metadata,
    Column("subscription_id", String(64), primary_key=True),
    Column("event_number", BigInteger, primary_key=True),
    Column("focus_type", String(64), nullable=False),
    Column("focus_id", String(64), nullable=False),
    Column("interaction", String(16), nullable=False),
    Column("occurred_at", BigInteger, nullable=False),
    Column("resource", Text, nullable=True),  # for full-resource payloads and $events
    Column("message_kind", String(32), nullable=True),  # e.g. referral-accepted (people)
    Column("delivered_at", BigInteger, nullable=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("first_attempt_at", BigInteger, nullable=True),
    Column("next_attempt_at", BigInteger, nullable=False, default=0),
    Column("last_error", String(500), nullable=True),
    # the W3C trace context its delivery continues (revision 0007): the referral event's trace
    Column("traceparent", String(55), nullable=True),
)

intake_events = Table(
    "intake_events",
    metadata,
    Column("event_id", String(64), primary_key=True),
    Column("received_at", BigInteger, nullable=False),
    Column("resource_type", String(64), nullable=False),
    Column("resource_id", String(64), nullable=False),
    Column("interaction", String(16), nullable=False),
)
