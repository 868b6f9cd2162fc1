"""The training change feed (transactional outbox, services/common/outbox.py).

Revision ID: training_0002
Revises: training_0001
Create Date: 2026-11-24
"""

from alembic import op

revision = "training_0002"
down_revision = "training_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
    CREATE TABLE training.changes (
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
    op.execute("CREATE INDEX ix_changes_xid_seq ON training.changes (xid, seq)")


def downgrade() -> None:
    op.execute("DROP TABLE training.changes")
