"""The gateway's own state: stored responses for Idempotency-Key replays.

Revision ID: gateway_0001
Revises:
Create Date: 2026-11-24
"""

from alembic import op

revision = "gateway_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
    CREATE TABLE gateway.idempotency_keys (
        subject       text NOT NULL,
        key           text NOT NULL,
        fingerprint   text NOT NULL,
        status        integer,
        headers       jsonb,
        body          bytea,
        created_at    timestamptz NOT NULL DEFAULT now(),
        completed_at  timestamptz,
        CONSTRAINT pk_idempotency_keys PRIMARY KEY (subject, key),
        CONSTRAINT ck_idempotency_keys_key_length CHECK (length(key) BETWEEN 1 AND 255)
    )""")
    op.execute("CREATE INDEX ix_idempotency_keys_created_at ON gateway.idempotency_keys (created_at)")


def downgrade() -> None:
    op.execute("DROP TABLE gateway.idempotency_keys")
