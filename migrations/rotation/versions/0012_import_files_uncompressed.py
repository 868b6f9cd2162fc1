"""An uploaded file's chunks stored as they are (STORAGE EXTERNAL), not compressed.

pglz compressed each 1 MiB chunk of an upload in the request that accepted it: 0.22-0.26 s of a
22 MB file's way to its 202, against 0.12-0.20 s stored plain. The chunks live only until their
import ends (services/common/jobs.py deletes them), so the disk they take is brief.

Revision ID: rotation_0012
Revises: rotation_0011
Create Date: 2026-11-26
"""

from alembic import op

revision = "rotation_0012"
down_revision = "rotation_0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE rotation.import_files ALTER COLUMN data SET STORAGE EXTERNAL")


def downgrade() -> None:
    op.execute("ALTER TABLE rotation.import_files ALTER COLUMN data SET STORAGE EXTENDED")
