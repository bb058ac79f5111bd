"""``referral_facts``: one row per referral Task, the projection the loop metrics read (revision
0005).

Each row holds who and what the referral is about (CBO, requester, service category, the
patient's recorded language, race, ethnicity and sex) and when the Task first reached each
status, in microseconds since the epoch. It is kept in the same transaction as the Task and
Patient writes (``measures.projection``), so the figures never disagree with the store, and is
rebuilt from history by ``referral-api measures-backfill``. Metrics scan this narrow table, not
the resources' JSON.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, MetaData, String, Table

metadata = MetaData()

referral_facts = Table(
    "referral_facts",
    metadata,
    Column("task_id", String(64), primary_key=True),
    Column("patient_id", String(64), nullable=True),
    Column("service_request_id", String(64), nullable=True),
    Column("owner_org", String(128), nullable=True),  # the CBO: Task.owner
    Column("requester_org", String(128), nullable=True),  # Task.requester
    Column("category", String(64), nullable=True),  # the ServiceRequest's category code
    Column("language", String(32), nullable=True),
    Column("race", String(32), nullable=True),
    Column("ethnicity", String(32), nullable=True),
    Column("sex", String(32), nullable=True),
    Column("status", String(32), nullable=False),
    Column("sent_at", BigInteger, nullable=True),  # first reached requested
    Column("sent_month", String(7), nullable=True),  # sent_at's UTC month, YYYY-MM
    Column("first_response_at", BigInteger, nullable=True),  # first accepted or rejected
    Column("accepted_at", BigInteger, nullable=True),
    Column("declined_at", BigInteger, nullable=True),
    Column("declined_reason", String(64), nullable=True),
    Column("completed_at", BigInteger, nullable=True),
    Column("cancelled_at", BigInteger, nullable=True),
    Index("ix_referral_facts_sent", "sent_at"),
    Index("ix_referral_facts_owner_sent", "owner_org", "sent_at"),
    Index("ix_referral_facts_requester_sent", "requester_org", "sent_at"),
    Index("ix_referral_facts_patient", "patient_id"),
    Index("ix_referral_facts_service_request", "service_request_id"),
)
