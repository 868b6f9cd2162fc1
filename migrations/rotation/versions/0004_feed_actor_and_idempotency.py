"""Who wrote each change (actor, request_id on the feed) and Idempotency-Key records kept by the
service that makes the write, in the write's own transaction (services/common/idempotency.py).

Revision ID: rotation_0004
Revises: rotation_0003
Create Date: 2026-12-01
"""

from alembic import op

revision = "rotation_0004"
down_revision = "rotation_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE rotation.changes ADD COLUMN actor text, ADD COLUMN request_id text")
    # status/headers/body are written before the claiming transaction commits, so a committed row
    # always holds its answer; a row is only ever seen without one by its own transaction.
    op.execute("""
    CREATE TABLE rotation.idempotency_keys (
        subject      text NOT NULL,
        key          text NOT NULL,
        fingerprint  text NOT NULL,
        status       integer,
        headers      jsonb,
        body         bytea,
        created_at   timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT pk_idempotency_keys PRIMARY KEY (subject, key),
        CONSTRAINT ck_idempotency_keys_key_length CHECK (length(key) BETWEEN 1 AND 255)
    )""")
    op.execute("CREATE INDEX ix_idempotency_keys_created_at ON rotation.idempotency_keys (created_at)")


def downgrade() -> None:
    op.execute("DROP TABLE rotation.idempotency_keys")
    op.execute("ALTER TABLE rotation.changes DROP COLUMN request_id, DROP COLUMN actor")
