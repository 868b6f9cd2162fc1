"""School codes are URL-safe identifiers, held by PostgreSQL as well as by the API (issue 9).

A code travels in URL paths and `Location` headers, so only ASCII letters, digits, `-` and `_`
(services/common/vocabulary.py `CODE_PATTERN`; the column is already varchar(64)). District codes
already have `ck_districts_code_gb2260`; pairings reference schools by foreign key.

Existing rows: a fresh database has none that break the rule, so the constraint is added plainly
(validated at once). A database that took codes such as `a/b` before this revision will refuse the
upgrade: rename those schools first (they could never be read through the API anyway).

Revision ID: partnership_0005
Revises: partnership_0004
Create Date: 2026-11-25
"""

from alembic import op

revision = "partnership_0005"
down_revision = "partnership_0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE partnership.schools ADD CONSTRAINT ck_schools_code_url_safe "
               "CHECK (code ~ '^[A-Za-z0-9_-]+$')")


def downgrade() -> None:
    op.execute("ALTER TABLE partnership.schools DROP CONSTRAINT ck_schools_code_url_safe")
