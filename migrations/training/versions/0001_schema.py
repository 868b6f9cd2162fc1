"""Create the training schema (tables follow in later revisions).

Revision ID: training_0001
Revises:
Create Date: 2026-11-24
"""

revision = "training_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    # env_common creates the schema itself before the version table is written.
    pass


def downgrade() -> None:
    pass
