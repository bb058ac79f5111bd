"""The patient-voice answers as rows (revision 0007), kept in the same transaction as each
QuestionnaireResponse (``voice.projection``): one ``voice_responses`` row per response with the
referral's CBO and requester, and, for a counted one (completed or amended), one
``voice_answers`` row per boolean or coded answer. The aggregates count these, not the
resources' JSON. One response per referral Task (``task_id`` is unique)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, MetaData, String, Table

metadata = MetaData()

voice_responses = Table(
    "voice_responses",
    metadata,
    Column("response_id", String(64), primary_key=True),
    Column("task_id", String(64), nullable=False, unique=True),
    Column("status", String(16), nullable=False),  # counted when completed or amended
    Column("owner_org", String(128), nullable=True),  # the CBO: the Task's owner
    Column("requester_org", String(128), nullable=True),
    Column("authored_at", BigInteger, nullable=True),
    Index("ix_voice_responses_owner", "owner_org"),
)

voice_answers = Table(
    "voice_answers",
    metadata,
    Column("response_id", String(64), primary_key=True),
    Column("link_id", String(64), primary_key=True),
    Column("answer", String(64), primary_key=True),  # a code, or "true"/"false"
    Column("owner_org", String(128), nullable=True),
    Column("requester_org", String(128), nullable=True),
    Index("ix_voice_answers_owner", "owner_org", "link_id"),
)
