"""Districts, schools, pairings and activities, with the rules PostgreSQL can hold.

Revision ID: partnership_0001
Revises:
Create Date: 2026-11-24
"""

from alembic import op

revision = "partnership_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    # btree_gist lets one exclusion constraint mix equality on school codes with date-range overlap.
    op.execute("CREATE EXTENSION IF NOT EXISTS btree_gist WITH SCHEMA public")
    op.execute("""
    CREATE TABLE partnership.districts (
        code        varchar(6) NOT NULL,
        name        text NOT NULL,
        created_at  timestamptz NOT NULL DEFAULT now(),
        updated_at  timestamptz NOT NULL DEFAULT now(),
        version     integer NOT NULL DEFAULT 1,
        CONSTRAINT pk_districts PRIMARY KEY (code),
        CONSTRAINT ck_districts_code_gb2260 CHECK (code ~ '^[1-8][0-9]{5}$'),
        CONSTRAINT ck_districts_name_not_blank CHECK (length(btrim(name)) > 0)
    )""")
    op.execute("""
    CREATE TABLE partnership.schools (
        code                varchar(64) NOT NULL,
        name                text NOT NULL,
        district_code       varchar(6) NOT NULL,
        stage               text NOT NULL,
        locality            text NOT NULL,
        primary_enrollment  integer NOT NULL DEFAULT 0,
        junior_enrollment   integer NOT NULL DEFAULT 0,
        senior_enrollment   integer NOT NULL DEFAULT 0,
        created_at          timestamptz NOT NULL DEFAULT now(),
        updated_at          timestamptz NOT NULL DEFAULT now(),
        version             integer NOT NULL DEFAULT 1,
        CONSTRAINT pk_schools PRIMARY KEY (code),
        CONSTRAINT fk_schools_district FOREIGN KEY (district_code) REFERENCES partnership.districts (code),
        CONSTRAINT ck_schools_code_not_blank CHECK (length(btrim(code)) > 0),
        CONSTRAINT ck_schools_name_not_blank CHECK (length(btrim(name)) > 0),
        CONSTRAINT ck_schools_stage CHECK (stage IN
            ('primary', 'junior', 'nine_year', 'senior', 'complete_secondary', 'twelve_year')),
        CONSTRAINT ck_schools_locality CHECK (locality IN ('urban', 'township', 'rural')),
        CONSTRAINT ck_schools_enrollment_non_negative CHECK
            (primary_enrollment >= 0 AND junior_enrollment >= 0 AND senior_enrollment >= 0)
    )""")
    op.execute("CREATE INDEX ix_schools_district_code ON partnership.schools (district_code, code)")
    op.execute("""
    CREATE TABLE partnership.pairings (
        id                   uuid NOT NULL,
        lead_school_code     varchar(64) NOT NULL,
        partner_school_code  varchar(64) NOT NULL,
        program              text NOT NULL,
        start_date           date NOT NULL,
        end_date             date NOT NULL,
        goals                text,
        status               text NOT NULL DEFAULT 'proposed',
        created_at           timestamptz NOT NULL DEFAULT now(),
        updated_at           timestamptz NOT NULL DEFAULT now(),
        version              integer NOT NULL DEFAULT 1,
        CONSTRAINT pk_pairings PRIMARY KEY (id),
        CONSTRAINT fk_pairings_lead_school FOREIGN KEY (lead_school_code) REFERENCES partnership.schools (code),
        CONSTRAINT fk_pairings_partner_school FOREIGN KEY (partner_school_code)
            REFERENCES partnership.schools (code),
        CONSTRAINT ck_pairings_distinct_schools CHECK (lead_school_code <> partner_school_code),
        CONSTRAINT ck_pairings_dates CHECK (end_date >= start_date),
        CONSTRAINT ck_pairings_status CHECK (status IN ('proposed', 'active', 'suspended', 'ended')),
        -- The same two schools (in either role) may not hold two pairings whose inclusive date
        -- ranges overlap unless one of them has ended; held here so concurrent inserts cannot race.
        CONSTRAINT ex_pairings_schools_overlap EXCLUDE USING gist (
            (LEAST(lead_school_code, partner_school_code)) WITH =,
            (GREATEST(lead_school_code, partner_school_code)) WITH =,
            daterange(start_date, end_date, '[]') WITH &&
        ) WHERE (status <> 'ended')
    )""")
    op.execute("CREATE INDEX ix_pairings_partner ON partnership.pairings (partner_school_code)")
    op.execute("CREATE INDEX ix_pairings_lead ON partnership.pairings (lead_school_code)")
    op.execute("""
    CREATE TABLE partnership.activities (
        id                    uuid NOT NULL,
        pairing_id            uuid NOT NULL,
        kind                  text NOT NULL,
        date                  date NOT NULL,
        title                 text NOT NULL,
        teacher_participants  integer NOT NULL DEFAULT 0,
        student_participants  integer NOT NULL DEFAULT 0,
        created_at            timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT pk_activities PRIMARY KEY (id),
        CONSTRAINT fk_activities_pairing FOREIGN KEY (pairing_id) REFERENCES partnership.pairings (id),
        CONSTRAINT ck_activities_kind CHECK (kind IN ('teacher_training', 'lesson_delivery',
            'joint_research', 'student_exchange', 'cadre_shadowing', 'resource_sharing', 'other')),
        CONSTRAINT ck_activities_participants_non_negative CHECK
            (teacher_participants >= 0 AND student_participants >= 0),
        CONSTRAINT ck_activities_title_not_blank CHECK (length(btrim(title)) > 0)
    )""")
    op.execute("CREATE INDEX ix_activities_pairing_date ON partnership.activities (pairing_id, date)")
    op.execute("CREATE INDEX ix_activities_date ON partnership.activities (date)")


def downgrade() -> None:
    op.execute("DROP TABLE partnership.activities")
    op.execute("DROP TABLE partnership.pairings")
    op.execute("DROP TABLE partnership.schools")
    op.execute("DROP TABLE partnership.districts")
