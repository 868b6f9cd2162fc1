"""The partnership audit trail: who changed what, when, in which request (services/common/audit.py).

Revision ID: partnership_0009
Revises: partnership_0008
Create Date: 2026-12-10
"""

from alembic import op

from migrations.audit_events import downgrade_sql, upgrade_sql

revision = "partnership_0009"
down_revision = "partnership_0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for statement in upgrade_sql("partnership"):
        op.execute(statement)


def downgrade() -> None:
    for statement in downgrade_sql("partnership"):
        op.execute(statement)
