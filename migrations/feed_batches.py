"""Change-feed entries that stand for many created records (partnership_0010, rotation_0011,
training_0011).

An import that creates 150,000 staff used to write 150,000 feed rows, each with the record's state
as jsonb: 1.2 s of a 3.3 s import, more than the records themselves. Such an import now writes one
entry per 1,000 records it created, holding their ids in file order (`ids`); the feed's reader
gives each of them as its own `create`, with the record's state as it is when read
(services/common/outbox.py). Frozen like a migration: a later change is a new revision.
"""

from __future__ import annotations


def upgrade_sql(schema: str) -> list[str]:
    return [
        f"ALTER TABLE {schema}.changes ADD COLUMN ids uuid[]",
        # Random uuids do not compress: do not try, 150 times per import.
        f"ALTER TABLE {schema}.changes ALTER COLUMN ids SET STORAGE EXTERNAL",
        f"ALTER TABLE {schema}.changes ALTER COLUMN key DROP NOT NULL",
        # An entry is one change (a key, maybe a state) or a batch of creates (ids, no key, no state).
        f"""ALTER TABLE {schema}.changes ADD CONSTRAINT ck_changes_one_or_batch CHECK (
                (ids IS NULL AND key IS NOT NULL)
                OR (ids IS NOT NULL AND key IS NULL AND state IS NULL AND op = 'create'
                    AND cardinality(ids) BETWEEN 1 AND 1000))""",
    ]


def downgrade_sql(schema: str) -> list[str]:
    return [
        f"DELETE FROM {schema}.changes WHERE ids IS NOT NULL",
        f"ALTER TABLE {schema}.changes DROP CONSTRAINT ck_changes_one_or_batch",
        f"ALTER TABLE {schema}.changes ALTER COLUMN key SET NOT NULL",
        f"ALTER TABLE {schema}.changes DROP COLUMN ids",
    ]
