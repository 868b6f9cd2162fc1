"""The rotation change feed (transactional outbox, services/common/outbox.py).

The same columns as every service's `changes` table (migrations/partnership/versions/0002_changes.py).

Revision ID: rotation_0002
Revises: rotation_0001
Create Date: 2026-11-25
"""

from alembic import op

revision = "rotation_0002"
down_revision = "rotation_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
    CREATE TABLE rotation.changes (
        seq         bigint GENERATED ALWAYS AS IDENTITY,
        xid         xid8 NOT NULL DEFAULT pg_current_xact_id(),
        entity      text NOT NULL,
        key         text NOT NULL,
        op          text NOT NULL,
        state       jsonb,
        changed_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
        CONSTRAINT pk_changes PRIMARY KEY (seq),
        CONSTRAINT ck_changes_op CHECK (op IN ('create', 'update', 'state', 'delete'))
    )""")
    op.execute("CREATE INDEX ix_changes_xid_seq ON rotation.changes (xid, seq)")


def downgrade() -> None:
    op.execute("DROP TABLE rotation.changes")
