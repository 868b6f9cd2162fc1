"""Feed entries for the records an import created, a thousand at a time (migrations/feed_batches.py).

Revision ID: partnership_0010
Revises: partnership_0009
Create Date: 2026-11-26
"""

from alembic import op

from migrations.feed_batches import downgrade_sql, upgrade_sql

revision = "partnership_0010"
down_revision = "partnership_0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for statement in upgrade_sql("partnership"):
        op.execute(statement)


def downgrade() -> None:
    for statement in downgrade_sql("partnership"):
        op.execute(statement)
