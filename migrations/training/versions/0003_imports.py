"""Bulk import reports and jobs.

Revision ID: training_0003
Revises: training_0002
Create Date: 2026-11-24
"""

from alembic import op

revision = "training_0003"
down_revision = "training_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
    CREATE TABLE training.imports (
        id           text NOT NULL,
        kind         text NOT NULL,
        status       text NOT NULL,
        report       jsonb NOT NULL,
        created_at   timestamptz NOT NULL DEFAULT now(),
        finished_at  timestamptz,
        CONSTRAINT pk_imports PRIMARY KEY (id),
        CONSTRAINT ck_imports_status CHECK (status IN ('running', 'validated', 'completed', 'rejected', 'failed'))
    )""")


def downgrade() -> None:
    op.execute("DROP TABLE training.imports")
