"""The gateway's audit trail: registrations and revocations of integration clients
(services/common/audit.py).

Revision ID: gateway_0004
Revises: gateway_0003
Create Date: 2026-12-10
"""

from alembic import op

from migrations.audit_events import downgrade_sql, upgrade_sql

revision = "gateway_0004"
down_revision = "gateway_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for statement in upgrade_sql("gateway"):
        op.execute(statement)


def downgrade() -> None:
    for statement in downgrade_sql("gateway"):
        op.execute(statement)
