"""Studios, memberships, sessions, attendance and the training-hours ledger, with the rules
PostgreSQL can hold (capacity is held by the service under a studio row lock).

Revision ID: training_0001
Revises:
Create Date: 2026-11-24
"""

from alembic import op

revision = "training_0001"
down_revision = None
branch_labels = None
depends_on = None

# A session's date (and so the `earned_on` of the credits it gives) is its calendar day in China
# Standard Time, whatever offset the client sent `starts_at` with. Asia/Shanghai has no DST.
SESSION_TIMEZONE = "Asia/Shanghai"


def upgrade() -> None:
    # btree_gist lets one exclusion constraint mix uuid equality with date-range overlap; the
    # partnership migration creates it too, repeated so this service stands alone.
    op.execute("CREATE EXTENSION IF NOT EXISTS btree_gist WITH SCHEMA public")
    op.execute("""
    CREATE TABLE training.studios (
        id             uuid NOT NULL,
        name           text NOT NULL,
        kind           text NOT NULL,
        host_staff_id  uuid NOT NULL,
        subject        text NOT NULL,
        district_code  varchar(6) NOT NULL,
        start_date     date NOT NULL,
        end_date       date NOT NULL,
        capacity       integer NOT NULL DEFAULT 10,
        status         text NOT NULL DEFAULT 'active',
        closed_at      timestamptz,
        created_at     timestamptz NOT NULL DEFAULT now(),
        updated_at     timestamptz NOT NULL DEFAULT now(),
        version        integer NOT NULL DEFAULT 1,
        CONSTRAINT pk_studios PRIMARY KEY (id),
        CONSTRAINT ck_studios_kind CHECK (kind IN
            ('famous_teacher', 'famous_principal', 'famous_head_teacher', 'special_grade_station')),
        CONSTRAINT ck_studios_district_code_gb2260 CHECK (district_code ~ '^[1-8][0-9]{5}$'),
        CONSTRAINT ck_studios_dates CHECK (end_date >= start_date),
        CONSTRAINT ck_studios_capacity CHECK (capacity >= 1),
        CONSTRAINT ck_studios_status CHECK (status IN ('active', 'closed')),
        CONSTRAINT ck_studios_name_not_blank CHECK (length(btrim(name)) > 0)
    )""")
    op.execute("CREATE INDEX ix_studios_district_code ON training.studios (district_code)")
    op.execute("CREATE INDEX ix_studios_host_staff_id ON training.studios (host_staff_id)")
    op.execute("""
    CREATE TABLE training.memberships (
        id          uuid NOT NULL,
        studio_id   uuid NOT NULL,
        staff_id    uuid NOT NULL,
        joined_on   date NOT NULL,
        left_on     date,
        created_at  timestamptz NOT NULL DEFAULT now(),
        updated_at  timestamptz NOT NULL DEFAULT now(),
        version     integer NOT NULL DEFAULT 1,
        CONSTRAINT pk_memberships PRIMARY KEY (id),
        CONSTRAINT fk_memberships_studio FOREIGN KEY (studio_id) REFERENCES training.studios (id),
        CONSTRAINT ck_memberships_dates CHECK (left_on IS NULL OR left_on >= joined_on),
        -- A staff member holds at most one membership of a studio at any day (inclusive ranges;
        -- an open membership runs to infinity), so a rejoin must start after the last leave.
        CONSTRAINT ex_memberships_overlap EXCLUDE USING gist (
            studio_id WITH =, staff_id WITH =, daterange(joined_on, left_on, '[]') WITH &&
        )
    )""")
    # At most one current (not yet left) membership per studio and staff member.
    op.execute("CREATE UNIQUE INDEX uq_memberships_current ON training.memberships (studio_id, staff_id) "
               "WHERE left_on IS NULL")
    op.execute("CREATE INDEX ix_memberships_staff_id ON training.memberships (staff_id)")
    op.execute(f"""
    CREATE TABLE training.sessions (
        id            uuid NOT NULL,
        studio_id     uuid NOT NULL,
        kind          text NOT NULL,
        title         text NOT NULL,
        starts_at     timestamptz NOT NULL,
        session_date  date GENERATED ALWAYS AS ((starts_at AT TIME ZONE '{SESSION_TIMEZONE}')::date) STORED,
        hours         numeric(6, 2) NOT NULL,
        created_at    timestamptz NOT NULL DEFAULT now(),
        updated_at    timestamptz NOT NULL DEFAULT now(),
        version       integer NOT NULL DEFAULT 1,
        CONSTRAINT pk_sessions PRIMARY KEY (id),
        CONSTRAINT fk_sessions_studio FOREIGN KEY (studio_id) REFERENCES training.studios (id),
        CONSTRAINT ck_sessions_kind CHECK (kind IN ('online_seminar', 'air_classroom', 'onsite_guidance',
            'shadow_training', 'collective_research', 'lecture')),
        CONSTRAINT ck_sessions_hours_positive CHECK (hours > 0),
        CONSTRAINT ck_sessions_title_not_blank CHECK (length(btrim(title)) > 0)
    )""")
    op.execute("CREATE INDEX ix_sessions_studio_starts_at ON training.sessions (studio_id, starts_at, id)")
    op.execute("CREATE INDEX ix_sessions_session_date ON training.sessions (session_date)")
    op.execute("""
    CREATE TABLE training.attendance (
        session_id  uuid NOT NULL,
        staff_id    uuid NOT NULL,
        created_at  timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT pk_attendance PRIMARY KEY (session_id, staff_id),
        CONSTRAINT fk_attendance_session FOREIGN KEY (session_id) REFERENCES training.sessions (id)
    )""")
    op.execute("CREATE INDEX ix_attendance_staff_id ON training.attendance (staff_id)")
    op.execute("""
    CREATE TABLE training.training_hours (
        id          uuid NOT NULL,
        staff_id    uuid NOT NULL,
        hours       numeric(6, 2) NOT NULL,
        earned_on   date NOT NULL,
        source      text NOT NULL,
        reference   text NOT NULL,
        session_id  uuid,
        created_at  timestamptz NOT NULL DEFAULT now(),
        updated_at  timestamptz NOT NULL DEFAULT now(),
        version     integer NOT NULL DEFAULT 1,
        CONSTRAINT pk_training_hours PRIMARY KEY (id),
        -- One credit per (source, reference): a replayed credit is the same credit.
        CONSTRAINT uq_training_hours_source_reference UNIQUE (source, reference),
        CONSTRAINT ck_training_hours_positive CHECK (hours > 0),
        CONSTRAINT ck_training_hours_source_not_blank CHECK (length(btrim(source)) > 0),
        CONSTRAINT ck_training_hours_reference_not_blank CHECK (length(btrim(reference)) > 0),
        -- Studio credits, and only they, point at the attendance row that earned them, with the
        -- reference `<session_id>:<staff_id>`; removing the attendance removes the credit.
        CONSTRAINT ck_training_hours_studio_session CHECK (
            (source = 'studio_session') = (session_id IS NOT NULL)
            AND (session_id IS NULL OR reference = session_id::text || ':' || staff_id::text)),
        CONSTRAINT fk_training_hours_attendance FOREIGN KEY (session_id, staff_id)
            REFERENCES training.attendance (session_id, staff_id) ON DELETE CASCADE
    )""")
    op.execute("CREATE INDEX ix_training_hours_staff_earned ON training.training_hours (staff_id, earned_on, id)")
    op.execute("CREATE INDEX ix_training_hours_earned_on ON training.training_hours (earned_on)")
    op.execute("CREATE INDEX ix_training_hours_session_id ON training.training_hours (session_id)")


def downgrade() -> None:
    op.execute("DROP TABLE training.training_hours")
    op.execute("DROP TABLE training.attendance")
    op.execute("DROP TABLE training.sessions")
    op.execute("DROP TABLE training.memberships")
    op.execute("DROP TABLE training.studios")
