"""The school directory (a local read model of partnership's school registry, fed by its change
feed) and the feed cursor saved with it.

Revision ID: rotation_0007
Revises: rotation_0005
Create Date: 2026-12-01
"""

from alembic import op

revision = "rotation_0007"
down_revision = "rotation_0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
    CREATE TABLE rotation.feed_cursors (
        consumer         text NOT NULL,
        cursor           text NOT NULL,
        applied          bigint NOT NULL DEFAULT 0,
        last_changed_at  timestamptz,
        updated_at       timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT pk_feed_cursors PRIMARY KEY (consumer)
    )""")
    # Partnership owns schools; `version` is partnership's, so a late older state never wins.
    op.execute("""
    CREATE TABLE rotation.school_directory (
        code                text NOT NULL,
        name                text NOT NULL,
        district_code       text NOT NULL,
        stage               text,
        locality            text,
        primary_enrollment  integer NOT NULL DEFAULT 0,
        junior_enrollment   integer NOT NULL DEFAULT 0,
        senior_enrollment   integer NOT NULL DEFAULT 0,
        version             integer,
        synced_at           timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT pk_school_directory PRIMARY KEY (code)
    )""")
    op.execute("CREATE INDEX ix_school_directory_district ON rotation.school_directory (district_code)")


def downgrade() -> None:
    op.execute("DROP TABLE rotation.school_directory")
    op.execute("DROP TABLE rotation.feed_cursors")
