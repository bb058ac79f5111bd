"""Signing in through a trusted external OpenID Connect issuer: a user may carry the external
subject it is mapped from, and a sign-in in progress at the issuer is kept (by the hash of its
``state``) until the issuer sends the browser back.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("auth_users") as batch:
        batch.add_column(sa.Column("external_subject", sa.String(255), nullable=True))
        batch.create_unique_constraint("uq_auth_users_external_subject", ["external_subject"])
    op.create_table(
        "auth_external_logins",
        sa.Column("state_hash", sa.String(64), primary_key=True),
        sa.Column("browser_hash", sa.String(64), nullable=False),
        sa.Column("nonce", sa.String(128), nullable=False),
        sa.Column("code_verifier", sa.String(128), nullable=False),
        sa.Column("request", sa.Text, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
    )
    op.create_index("ix_auth_external_logins_expires_at", "auth_external_logins", ["expires_at"])


def downgrade() -> None:
    op.drop_table("auth_external_logins")
    with op.batch_alter_table("auth_users") as batch:
        batch.drop_constraint("uq_auth_users_external_subject", type_="unique")
        batch.drop_column("external_subject")
