"""Imports as durable jobs: the uploaded file kept in the service's own database, and what the
worker needs to run the import (services/common/import_api.py, services/common/jobs.py).

- `imports.params`: mode, dry run, content type and the importer's district limit, as recorded
  when the file was accepted (the worker runs with the caller's rights, not its own);
- `imports.job_id`: the procrastinate job that runs it (NULL for an import answered inline);
- `imports.attempts`: how often a worker started it, so a file that kills its worker is
  reported failed instead of being retried forever;
- `import_files`: the file in chunks of up to 1 MiB, deleted when the import ends.

Revision ID: training_0008
Revises: training_0007
Create Date: 2026-11-26
"""

from alembic import op

revision = "training_0008"
down_revision = "training_0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE training.imports ADD COLUMN params jsonb, ADD COLUMN job_id bigint, "
               "ADD COLUMN attempts integer NOT NULL DEFAULT 0")
    op.execute("""
    CREATE TABLE training.import_files (
        import_id  text NOT NULL,
        seq        integer NOT NULL,
        data       bytea NOT NULL,
        CONSTRAINT pk_import_files PRIMARY KEY (import_id, seq),
        CONSTRAINT fk_import_files_import FOREIGN KEY (import_id) REFERENCES training.imports (id) ON DELETE CASCADE
    )""")
    op.execute("CREATE INDEX ix_imports_running ON training.imports (status) WHERE status = 'running'")


def downgrade() -> None:
    op.execute("DROP INDEX training.ix_imports_running")
    op.execute("DROP TABLE training.import_files")
    op.execute("ALTER TABLE training.imports DROP COLUMN params, DROP COLUMN job_id, DROP COLUMN attempts")
