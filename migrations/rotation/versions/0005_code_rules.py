"""District and school codes kept by rotation follow the registry's rules (issue 9).

School codes are URL-safe identifiers (ASCII letters, digits, `-`, `_`; services/common/vocabulary.py)
and district codes are GB/T 2260 (six digits, first 1–8), as in the partnership schema. Rotation
copies them from the registry, and `rotation-policies/{district_code}` puts one in a URL, so a bad
code that slipped past the API would be unreadable; PostgreSQL now refuses it too.

Existing rows: a fresh database has none that break the rules, so the constraints are added plainly
(validated at once). A database holding such codes from before this revision will refuse the
upgrade; correct those rows first.

Revision ID: rotation_0005
Revises: rotation_0004
Create Date: 2026-11-25
"""

from alembic import op

revision = "rotation_0005"
down_revision = "rotation_0004"
branch_labels = None
depends_on = None

SCHOOL = "'^[A-Za-z0-9_-]+$'"
DISTRICT = "'^[1-8][0-9]{5}$'"

CONSTRAINTS = [
    ("staff", "ck_staff_home_school_code_url_safe", f"home_school_code ~ {SCHOOL}"),
    ("staff", "ck_staff_home_district_code_gb2260", f"home_district_code ~ {DISTRICT}"),
    ("rotation_policies", "ck_rotation_policies_district_code_gb2260", f"district_code ~ {DISTRICT}"),
    ("rotation_plans", "ck_rotation_plans_district_code_gb2260", f"district_code ~ {DISTRICT}"),
    ("rotations", "ck_rotations_school_codes_url_safe",
     f"from_school_code ~ {SCHOOL} AND to_school_code ~ {SCHOOL}"),
    ("rotations", "ck_rotations_district_codes_gb2260",
     f"from_district_code ~ {DISTRICT} AND to_district_code ~ {DISTRICT}"),
]


def upgrade() -> None:
    for table, name, check in CONSTRAINTS:
        op.execute(f"ALTER TABLE rotation.{table} ADD CONSTRAINT {name} CHECK ({check})")


def downgrade() -> None:
    for table, name, _ in reversed(CONSTRAINTS):
        op.execute(f"ALTER TABLE rotation.{table} DROP CONSTRAINT {name}")
