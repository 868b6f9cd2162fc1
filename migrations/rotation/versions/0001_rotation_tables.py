"""Staff, district rotation policies, rotation plans, rotations and their transition history.

The rules PostgreSQL can hold live here: unique staff numbers, value checks, and the exclusion
constraint that keeps one person's rotations from overlapping in time (api.md → Rotation: "held by
the database, also under concurrent requests").

Revision ID: rotation_0001
Revises:
Create Date: 2026-11-24
"""

from alembic import op

revision = "rotation_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Repeated from the partnership migration so the rotation schema stands alone (its own
    # database in production): the overlap rule mixes uuid equality with date-range overlap.
    op.execute("CREATE EXTENSION IF NOT EXISTS btree_gist WITH SCHEMA public")
    op.execute("""
    CREATE TABLE rotation.staff (
        id                  uuid NOT NULL,
        staff_no            varchar(64) NOT NULL,
        name                text NOT NULL,
        home_school_code    varchar(64) NOT NULL,
        -- Copied from the partnership registry when the home school is set, so district
        -- figures never need another service (refreshed whenever the home school changes).
        home_district_code  varchar(6) NOT NULL,
        role                text NOT NULL,
        section             text NOT NULL,
        subject             text,
        backbone_level      text NOT NULL DEFAULT 'none',
        in_post_since       date NOT NULL,
        retirement_date     date,
        status              text NOT NULL DEFAULT 'active',
        created_at          timestamptz NOT NULL DEFAULT now(),
        updated_at          timestamptz NOT NULL DEFAULT now(),
        version             integer NOT NULL DEFAULT 1,
        CONSTRAINT pk_staff PRIMARY KEY (id),
        CONSTRAINT uq_staff_staff_no UNIQUE (staff_no),
        CONSTRAINT ck_staff_staff_no_not_blank CHECK (length(btrim(staff_no)) > 0),
        CONSTRAINT ck_staff_name_not_blank CHECK (length(btrim(name)) > 0),
        CONSTRAINT ck_staff_role CHECK (role IN ('teacher', 'principal', 'vice_principal', 'middle_manager')),
        CONSTRAINT ck_staff_section CHECK (section IN ('primary', 'junior', 'senior')),
        CONSTRAINT ck_staff_backbone_level CHECK
            (backbone_level IN ('none', 'school', 'district', 'municipal', 'special_grade')),
        CONSTRAINT ck_staff_status CHECK (status IN ('active', 'retired', 'left'))
    )""")
    op.execute("CREATE INDEX ix_staff_home_district ON rotation.staff (home_district_code, staff_no)")
    op.execute("CREATE INDEX ix_staff_home_school ON rotation.staff (home_school_code)")

    op.execute("""
    CREATE TABLE rotation.rotation_policies (
        district_code            varchar(6) NOT NULL,
        min_years_teacher        integer NOT NULL,
        min_years_cadre          integer NOT NULL,
        retirement_exempt_years  integer NOT NULL,
        target_rate              numeric NOT NULL,
        target_backbone_share    numeric NOT NULL,
        updated_by               text NOT NULL,
        created_at               timestamptz NOT NULL DEFAULT now(),
        updated_at               timestamptz NOT NULL DEFAULT now(),
        version                  integer NOT NULL DEFAULT 1,
        CONSTRAINT pk_rotation_policies PRIMARY KEY (district_code),
        CONSTRAINT ck_rotation_policies_years CHECK
            (min_years_teacher >= 0 AND min_years_cadre >= 0 AND retirement_exempt_years >= 0),
        CONSTRAINT ck_rotation_policies_rates CHECK
            (target_rate BETWEEN 0 AND 1 AND target_backbone_share BETWEEN 0 AND 1)
    )""")

    op.execute("""
    CREATE TABLE rotation.rotation_plans (
        id             uuid NOT NULL,
        district_code  varchar(6) NOT NULL,
        academic_year  integer NOT NULL,
        title          text NOT NULL,
        status         text NOT NULL DEFAULT 'draft',
        created_by     text NOT NULL,
        approved_by    text,
        approved_at    timestamptz,
        created_at     timestamptz NOT NULL DEFAULT now(),
        updated_at     timestamptz NOT NULL DEFAULT now(),
        version        integer NOT NULL DEFAULT 1,
        CONSTRAINT pk_rotation_plans PRIMARY KEY (id),
        CONSTRAINT uq_rotation_plans_title UNIQUE (district_code, academic_year, title),
        CONSTRAINT ck_rotation_plans_status CHECK (status IN ('draft', 'approved')),
        CONSTRAINT ck_rotation_plans_academic_year CHECK (academic_year BETWEEN 1900 AND 2999),
        CONSTRAINT ck_rotation_plans_title_not_blank CHECK (length(btrim(title)) > 0)
    )""")

    op.execute("""
    CREATE TABLE rotation.rotations (
        id                  uuid NOT NULL,
        staff_id            uuid NOT NULL,
        plan_id             uuid,
        from_school_code    varchar(64) NOT NULL,
        from_district_code  varchar(6) NOT NULL,
        to_school_code      varchar(64) NOT NULL,
        to_district_code    varchar(6) NOT NULL,
        mode                text NOT NULL,
        start_date          date NOT NULL,
        end_date            date NOT NULL,
        status              text NOT NULL DEFAULT 'planned',
        created_by          text NOT NULL,
        created_at          timestamptz NOT NULL DEFAULT now(),
        updated_at          timestamptz NOT NULL DEFAULT now(),
        version             integer NOT NULL DEFAULT 1,
        CONSTRAINT pk_rotations PRIMARY KEY (id),
        CONSTRAINT fk_rotations_staff FOREIGN KEY (staff_id) REFERENCES rotation.staff (id),
        CONSTRAINT fk_rotations_plan FOREIGN KEY (plan_id) REFERENCES rotation.rotation_plans (id),
        CONSTRAINT ck_rotations_distinct_schools CHECK (from_school_code <> to_school_code),
        CONSTRAINT ck_rotations_dates CHECK (end_date >= start_date),
        CONSTRAINT ck_rotations_mode CHECK (mode IN ('full_time', 'part_time', 'subject_guidance')),
        CONSTRAINT ck_rotations_status CHECK
            (status IN ('planned', 'approved', 'active', 'completed', 'withdrawn')),
        -- One person is in one rotation at a time: two rotations of the same staff member that
        -- are not withdrawn may not share a day (inclusive ranges). Decided by PostgreSQL, so
        -- concurrent creates and date changes cannot race past it.
        CONSTRAINT ex_rotations_staff_overlap EXCLUDE USING gist (
            staff_id WITH =,
            daterange(start_date, end_date, '[]') WITH &&
        ) WHERE (status <> 'withdrawn')
    )""")
    op.execute("CREATE INDEX ix_rotations_from_district ON rotation.rotations (from_district_code, start_date)")
    op.execute("CREATE INDEX ix_rotations_to_district ON rotation.rotations (to_district_code, start_date)")
    op.execute("CREATE INDEX ix_rotations_start ON rotation.rotations (start_date, id)")
    op.execute("CREATE INDEX ix_rotations_plan ON rotation.rotations (plan_id)")
    op.execute("CREATE INDEX ix_rotations_from_school ON rotation.rotations (from_school_code)")
    op.execute("CREATE INDEX ix_rotations_to_school ON rotation.rotations (to_school_code)")

    op.execute("""
    CREATE TABLE rotation.rotation_transitions (
        id           bigint GENERATED ALWAYS AS IDENTITY,
        rotation_id  uuid NOT NULL,
        from_status  text,
        to_status    text NOT NULL,
        actor        text NOT NULL,
        occurred_at  timestamptz NOT NULL DEFAULT now(),
        comment      text,
        CONSTRAINT pk_rotation_transitions PRIMARY KEY (id),
        CONSTRAINT fk_rotation_transitions_rotation FOREIGN KEY (rotation_id)
            REFERENCES rotation.rotations (id) ON DELETE CASCADE
    )""")
    op.execute("CREATE INDEX ix_rotation_transitions_rotation ON rotation.rotation_transitions (rotation_id, id)")


def downgrade() -> None:
    op.execute("DROP TABLE rotation.rotation_transitions")
    op.execute("DROP TABLE rotation.rotations")
    op.execute("DROP TABLE rotation.rotation_plans")
    op.execute("DROP TABLE rotation.rotation_policies")
    op.execute("DROP TABLE rotation.staff")
