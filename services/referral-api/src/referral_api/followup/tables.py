"""``referral_followups`` (revision 0006): one row per referral that became stalled.

The row is the claim: it is inserted (``ON CONFLICT DO NOTHING`` on the referral's id) in the
same transaction as the follow-up Task, after the referral Task's row is locked, so two
replicas sweeping at once create one follow-up; escalation is claimed the same way by setting
``escalated_at`` where it is still null. ``closed_at`` is set in the transaction that answers
or ends the referral (``followup.closing``). Times are microseconds since the epoch.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, MetaData, String, Table

metadata = MetaData()

referral_followups = Table(
    "referral_followups",
    metadata,
    Column("referral_task_id", String(64), primary_key=True),
    Column("followup_task_id", String(64), nullable=False),
    Column("stalled_at", BigInteger, nullable=False),  # when the sweep found it stalled
    Column("escalated_at", BigInteger, nullable=True),
    Column("closed_at", BigInteger, nullable=True),
    Index("ix_referral_followups_open", "closed_at", "escalated_at"),
)
