"""The job queue's own tables (procrastinate), in a schema of their own.

Procrastinate's schema.sql is written with unqualified names; it is applied with the search path
set to `procrastinate`, and every function it defines gets that search path pinned, so the
services can defer a job with plain SQL in their own transactions (services/common/jobs.py) and
the triggers find their tables whatever the caller's search path. The SQL is the installed
procrastinate's (pinned to one minor version in pyproject.toml); a procrastinate upgrade comes
with a `jobs_NNNN` revision that applies its migrations.

With one database per service (`SPP_<SERVICE>_DATABASE_URL`) this history runs once in each
distinct database, so each service's jobs live beside its data (services/common/migrate.py).

Revision ID: jobs_0001
Revises:
Create Date: 2026-11-26
"""

from alembic import op
from procrastinate.schema import SchemaManager
from sqlalchemy.util import await_only

revision = "jobs_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("SET LOCAL search_path TO procrastinate")
    # Many statements at once: asyncpg's simple-query protocol (no parameters) takes a script.
    raw = op.get_bind().connection.driver_connection
    await_only(raw.execute(SchemaManager.get_schema()))
    op.execute("""
    DO $$
    DECLARE f regprocedure;
    BEGIN
        FOR f IN SELECT p.oid::regprocedure FROM pg_proc p WHERE p.pronamespace = 'procrastinate'::regnamespace
        LOOP
            EXECUTE format('ALTER FUNCTION %s SET search_path = procrastinate, pg_catalog', f);
        END LOOP;
    END $$""")
    op.execute("RESET search_path")


def downgrade() -> None:
    # The schema also holds this history's version table, which Alembic updates after this step.
    op.execute("""
    DO $$
    DECLARE r record;
    BEGIN
        FOR r IN SELECT c.relname FROM pg_class c
                 WHERE c.relnamespace = 'procrastinate'::regnamespace AND c.relkind = 'r'
                   AND c.relname <> 'alembic_version'
        LOOP
            EXECUTE format('DROP TABLE procrastinate.%I CASCADE', r.relname);
        END LOOP;
        FOR r IN SELECT p.oid::regprocedure AS f FROM pg_proc p WHERE p.pronamespace = 'procrastinate'::regnamespace
        LOOP
            EXECUTE format('DROP FUNCTION %s CASCADE', r.f);
        END LOOP;
        FOR r IN SELECT t.typname FROM pg_type t
                 WHERE t.typnamespace = 'procrastinate'::regnamespace AND t.typtype IN ('e', 'c')
                   AND NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.reltype = t.oid AND c.relkind = 'r')
        LOOP
            EXECUTE format('DROP TYPE IF EXISTS procrastinate.%I CASCADE', r.typname);
        END LOOP;
    END $$""")
