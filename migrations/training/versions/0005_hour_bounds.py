"""Hours have upper bounds, held by PostgreSQL as well as by the API (issue 9).

- A studio session lasts 0 < hours ≤ 24 (one day at most): 1,000 hours typed into one session once
  put a member over the 360-hour bar (design.md §4.5) at a stroke.
- One external credit is 0 < hours ≤ 1000. Provincial systems sometimes send a whole course's total
  as one credit, so the bound is generous, yet a stray digit (12000 for 120.00) is refused.
  Studio-session credits carry their session's hours, so they are within 24 anyway.

Existing rows: a fresh database has none that break the bounds, so the constraints are added plainly
(validated at once). A database holding longer sessions or larger credits from before this revision
will refuse the upgrade; correct or split those rows first.

Revision ID: training_0005
Revises: training_0004
Create Date: 2026-11-25
"""

from alembic import op

revision = "training_0005"
down_revision = "training_0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE training.sessions ADD CONSTRAINT ck_sessions_hours_at_most_24 CHECK (hours <= 24)")
    op.execute("ALTER TABLE training.training_hours ADD CONSTRAINT ck_training_hours_at_most_1000 "
               "CHECK (hours <= 1000)")


def downgrade() -> None:
    op.execute("ALTER TABLE training.training_hours DROP CONSTRAINT ck_training_hours_at_most_1000")
    op.execute("ALTER TABLE training.sessions DROP CONSTRAINT ck_sessions_hours_at_most_24")
