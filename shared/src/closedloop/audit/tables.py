"""The audit tables, created by each FHIR service's own migration (``create``/``drop``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, Column, Index, Integer, MetaData, String, Table

from closedloop.fhir.storage.tables import PK

metadata = MetaData()

audit_events = Table(
    "audit_events",
    metadata,
    Column("seq", PK, primary_key=True, autoincrement=True),  # order and paging
    Column("id", String(32), nullable=False, unique=True),  # the AuditEvent's id
    Column("recorded", BigInteger, nullable=False),  # microseconds since the epoch
    Column("action", String(1), nullable=False),  # C R U D E
    Column("subtype", String(32), nullable=False),  # the FHIR interaction
    Column("outcome", String(2), nullable=False),  # 0 success, 4 refused
    Column("status", Integer, nullable=False),  # the HTTP status
    Column("agent_subject", String(255), nullable=True),  # None: no token
    Column("agent_client", String(255), nullable=True),
    Column("agent_role", String(32), nullable=True),
    Column("agent_organization", String(255), nullable=True),
    Column("resource_type", String(64), nullable=True),  # the type asked for
    Column("source", String(64), nullable=False),  # which service
    Column("request_id", String(64), nullable=False),
    Column("entity_count", Integer, nullable=False),
    Index("ix_audit_events_recorded", "recorded"),
    Index("ix_audit_events_agent", "agent_subject"),
    Index("ix_audit_events_client", "agent_client"),
)

audit_entities = Table(
    "audit_entities",
    metadata,
    Column("event_id", String(32), nullable=False),
    Column("entity_type", String(64), nullable=False),
    Column("entity_id", String(64), nullable=False),
    Index("ix_audit_entities_event", "event_id"),
    Index("ix_audit_entities_entity", "entity_type", "entity_id"),
)


def create(bind: Any) -> None:
    """For a migration's ``upgrade``."""
    metadata.create_all(bind, checkfirst=True)


def drop(bind: Any) -> None:
    metadata.drop_all(bind, checkfirst=True)
