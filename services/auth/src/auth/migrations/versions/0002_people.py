"""People: users, EHR launches, authorization codes, refresh tokens; clients gain redirect
URIs and the public flag.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("auth_clients") as batch:
        batch.add_column(sa.Column("redirect_uris", sa.Text, nullable=True))
        batch.add_column(sa.Column("public", sa.Boolean, nullable=False, server_default=sa.false()))
    op.create_table(
        "auth_users",
        sa.Column("user_id", sa.String(64), primary_key=True),
        sa.Column("username", sa.String(200), nullable=False, unique=True),
        sa.Column("password_hash", sa.Text, nullable=False),
        sa.Column("organization", sa.Text, nullable=False),
        sa.Column("role", sa.String(40), nullable=False),
        sa.Column("fhir_user", sa.Text, nullable=True),
        sa.Column("disabled", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "auth_launches",
        sa.Column("launch_hash", sa.String(64), primary_key=True),
        sa.Column("context", sa.Text, nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
    )
    op.create_index("ix_auth_launches_expires_at", "auth_launches", ["expires_at"])
    op.create_table(
        "auth_codes",
        sa.Column("code_hash", sa.String(64), primary_key=True),
        sa.Column("client_id", sa.String(200), nullable=False),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("redirect_uri", sa.Text, nullable=False),
        sa.Column("scope", sa.Text, nullable=False),
        sa.Column("code_challenge", sa.String(128), nullable=False),
        sa.Column("nonce", sa.Text, nullable=True),
        sa.Column("context", sa.Text, nullable=False),
        sa.Column("auth_time", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
        sa.Column("used_at", sa.Float, nullable=True),
    )
    op.create_index("ix_auth_codes_expires_at", "auth_codes", ["expires_at"])
    op.create_table(
        "auth_refresh_tokens",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("grant_id", sa.String(64), nullable=False),
        sa.Column("client_id", sa.String(200), nullable=False),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("scope", sa.Text, nullable=False),
        sa.Column("context", sa.Text, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
        sa.Column("used_at", sa.Float, nullable=True),
        sa.Column("revoked", sa.Boolean, nullable=False),
    )
    op.create_index("ix_auth_refresh_tokens_grant_id", "auth_refresh_tokens", ["grant_id"])


def downgrade() -> None:
    op.drop_table("auth_refresh_tokens")
    op.drop_table("auth_codes")
    op.drop_table("auth_launches")
    op.drop_table("auth_users")
    with op.batch_alter_table("auth_clients") as batch:
        batch.drop_column("public")
        batch.drop_column("redirect_uris")
