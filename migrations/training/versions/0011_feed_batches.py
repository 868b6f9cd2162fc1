"""Feed entries for the records an import created, a thousand at a time (migrations/feed_batches.py).

Revision ID: training_0011
Revises: training_0010
Create Date: 2026-11-26
"""

from alembic import op

from migrations.feed_batches import downgrade_sql, upgrade_sql

revision = "training_0011"
down_revision = "training_0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for statement in upgrade_sql("training"):
        op.execute(statement)


def downgrade() -> None:
    for statement in downgrade_sql("training"):
        op.execute(statement)
