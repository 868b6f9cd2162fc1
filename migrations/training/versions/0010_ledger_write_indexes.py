"""Fewer index writes per imported credit: an import of 250,000 credits writes every index of the
ledger once per row, and that is most of its merge's cost.

- `ix_training_hours_staff_earned (staff_id, earned_on, id)` and `ix_training_hours_staff_window
  (staff_id, earned_on) INCLUDE (hours)` become one index, `ix_training_hours_staff_window
  (staff_id, earned_on, id) INCLUDE (hours)`: it serves a staff member's credits by date (keyset
  on earned_on, id) and the window sums as an index-only scan, as the two did.
- `ix_training_hours_session_id` becomes partial (`WHERE session_id IS NOT NULL`): only studio
  credits carry a session, and the lookup it serves (removing an attendance removes its credit,
  `session_id = $1`) implies the predicate. Imported credits no longer enter it.

Revision ID: training_0010
Revises: training_0009
Create Date: 2026-11-26
"""

from alembic import op

revision = "training_0010"
down_revision = "training_0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("DROP INDEX training.ix_training_hours_staff_window")
    op.execute("DROP INDEX training.ix_training_hours_staff_earned")
    op.execute("CREATE INDEX ix_training_hours_staff_window ON training.training_hours "
               "(staff_id, earned_on, id) INCLUDE (hours)")
    op.execute("DROP INDEX training.ix_training_hours_session_id")
    op.execute("CREATE INDEX ix_training_hours_session_id ON training.training_hours (session_id) "
               "WHERE session_id IS NOT NULL")


def downgrade() -> None:
    op.execute("DROP INDEX training.ix_training_hours_session_id")
    op.execute("CREATE INDEX ix_training_hours_session_id ON training.training_hours (session_id)")
    op.execute("DROP INDEX training.ix_training_hours_staff_window")
    op.execute("CREATE INDEX ix_training_hours_staff_earned ON training.training_hours (staff_id, earned_on, id)")
    op.execute("CREATE INDEX ix_training_hours_staff_window ON training.training_hours "
               "(staff_id, earned_on) INCLUDE (hours)")
