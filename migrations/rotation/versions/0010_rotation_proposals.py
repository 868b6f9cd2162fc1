"""Rotation proposals (issue 14): what the proposer was asked, what it answered, and by whom.

A proposal stores nothing else: staff, rotations and plans change only when a proposal is turned
into a plan (`plan_id` then names it, once). A large district's proposal is computed by a job
(`status` `running`, `job_id`); a small one is stored `done` with its result at once.

Revision ID: rotation_0010
Revises: rotation_0009
Create Date: 2026-12-01
"""

from alembic import op

revision = "rotation_0010"
down_revision = "rotation_0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
    CREATE TABLE rotation.rotation_proposals (
        id             uuid NOT NULL,
        district_code  varchar(6) NOT NULL,
        academic_year  integer NOT NULL,
        status         text NOT NULL,
        inputs         jsonb NOT NULL,
        result         jsonb,
        detail         text,
        job_id         bigint,
        attempts       integer NOT NULL DEFAULT 0,
        plan_id        uuid,
        created_by     text NOT NULL,
        created_at     timestamptz NOT NULL DEFAULT now(),
        finished_at    timestamptz,
        CONSTRAINT pk_rotation_proposals PRIMARY KEY (id),
        CONSTRAINT ck_rotation_proposals_status CHECK (status IN ('running', 'done', 'failed')),
        CONSTRAINT ck_rotation_proposals_result CHECK (status <> 'done' OR result IS NOT NULL),
        CONSTRAINT fk_rotation_proposals_plan FOREIGN KEY (plan_id) REFERENCES rotation.rotation_plans (id),
        CONSTRAINT uq_rotation_proposals_plan UNIQUE (plan_id)
    )""")
    op.execute("CREATE INDEX ix_rotation_proposals_district ON rotation.rotation_proposals (district_code, created_at)")


def downgrade() -> None:
    op.execute("DROP TABLE rotation.rotation_proposals")
