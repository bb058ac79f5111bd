"""Clients, signing keys and used client-assertion ids.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "auth_clients",
        sa.Column("client_id", sa.String(200), primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("jwks", sa.Text, nullable=True),
        sa.Column("jwks_url", sa.Text, nullable=True),
        sa.Column("scopes", sa.Text, nullable=False),
        sa.Column("organization", sa.Text, nullable=True),
        sa.Column("disabled", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "auth_signing_keys",
        sa.Column("kid", sa.String(100), primary_key=True),
        sa.Column("alg", sa.String(10), nullable=False),
        sa.Column("private_jwk", sa.Text, nullable=False),
        sa.Column("public_jwk", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("retired_at", sa.Float, nullable=True),
    )
    op.create_table(
        "auth_used_jtis",
        sa.Column("client_id", sa.String(200), nullable=False),
        sa.Column("jti", sa.String(255), nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("client_id", "jti"),
    )
    op.create_index("ix_auth_used_jtis_expires_at", "auth_used_jtis", ["expires_at"])


def downgrade() -> None:
    op.drop_table("auth_used_jtis")
    op.drop_table("auth_signing_keys")
    op.drop_table("auth_clients")
