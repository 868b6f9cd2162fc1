"""Idempotency-Key records move to the services (services/common/idempotency.py): a key kept here
stayed "in flight" when the gateway failed after the service had committed. The gateway keeps no
state of its own any more.

Revision ID: gateway_0002
Revises: gateway_0001
Create Date: 2026-12-01
"""

from alembic import op

revision = "gateway_0002"
down_revision = "gateway_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("DROP TABLE gateway.idempotency_keys")


def downgrade() -> None:
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
