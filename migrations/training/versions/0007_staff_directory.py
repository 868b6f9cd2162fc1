"""The staff directory (a local read model of rotation's staff, fed by its change feed), the feed
cursor saved with it, and an index that serves the 5-year window sums of the ledger.

Revision ID: training_0007
Revises: training_0005
Create Date: 2026-12-01
"""

from alembic import op

revision = "training_0007"
down_revision = "training_0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # One row per read model: the last change applied, moved in the same transaction as the rows.
    op.execute("""
    CREATE TABLE training.feed_cursors (
        consumer         text NOT NULL,
        cursor           text NOT NULL,
        applied          bigint NOT NULL DEFAULT 0,
        last_changed_at  timestamptz,
        updated_at       timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT pk_feed_cursors PRIMARY KEY (consumer)
    )""")
    # Rotation owns staff; this copy holds the few fields training needs (reference checks, district
    # scope, completion by home district, staff_no in imports). `version` is rotation's: an older
    # state arriving late (the feed is ordered by transaction id, not commit) never overwrites a newer.
    # staff_no is not unique here: a renumbering may reach the copy in another order than it happened.
    op.execute("""
    CREATE TABLE training.staff_directory (
        id                  uuid NOT NULL,
        staff_no            text NOT NULL,
        home_school_code    text NOT NULL,
        home_district_code  text,
        status              text NOT NULL,
        version             integer NOT NULL,
        synced_at           timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT pk_staff_directory PRIMARY KEY (id)
    )""")
    op.execute("CREATE INDEX ix_staff_directory_staff_no ON training.staff_directory (staff_no)")
    op.execute("CREATE INDEX ix_staff_directory_active_district ON training.staff_directory "
               "(home_district_code, id) WHERE status = 'active'")
    # Completion (design.md §4.5) sums each staff member's hours in (D − 5 y, D]: an index-only scan.
    op.execute("CREATE INDEX ix_training_hours_staff_window ON training.training_hours "
               "(staff_id, earned_on) INCLUDE (hours)")


def downgrade() -> None:
    op.execute("DROP INDEX training.ix_training_hours_staff_window")
    op.execute("DROP TABLE training.staff_directory")
    op.execute("DROP TABLE training.feed_cursors")
