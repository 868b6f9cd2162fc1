"""The audit table every schema gets (partnership_0009, rotation_0009, training_0009, gateway_0004).

One statement list shared by the four migrations, so the tables cannot drift apart; frozen like a
migration (a later change is a new revision, not an edit here). See services/common/audit.py.
"""

from __future__ import annotations


def upgrade_sql(schema: str) -> list[str]:
    return [
        f"""
        CREATE TABLE {schema}.audit_events (
            seq          bigint GENERATED ALWAYS AS IDENTITY,
            occurred_at  timestamptz NOT NULL DEFAULT now(),
            actor        text,
            actor_role   text,
            entity       text NOT NULL,
            key          text NOT NULL,
            operation    text NOT NULL,
            before       jsonb,
            after        jsonb,
            details      jsonb,
            districts    text[] NOT NULL DEFAULT '{{}}',
            request_id   text,
            CONSTRAINT pk_audit_events PRIMARY KEY (seq),
            CONSTRAINT ck_audit_events_operation
                CHECK (operation IN ('create', 'update', 'state', 'delete', 'import'))
        )""",
        # Newest first, and the filters of GET /audit-events (actor; entity and key; districts).
        f"CREATE INDEX ix_audit_events_occurred ON {schema}.audit_events (occurred_at, seq)",
        f"CREATE INDEX ix_audit_events_actor ON {schema}.audit_events (actor, occurred_at, seq)",
        f"CREATE INDEX ix_audit_events_entity_key ON {schema}.audit_events (entity, key, occurred_at, seq)",
        f"CREATE INDEX ix_audit_events_districts ON {schema}.audit_events USING gin (districts)",
        # Events are immutable: no route changes them, and the database refuses it too.
        f"""
        CREATE FUNCTION {schema}.audit_events_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'audit events are immutable' USING ERRCODE = 'insufficient_privilege';
        END $$""",
        f"""
        CREATE TRIGGER tr_audit_events_immutable BEFORE UPDATE OR DELETE ON {schema}.audit_events
        FOR EACH ROW EXECUTE FUNCTION {schema}.audit_events_immutable()""",
    ]


def downgrade_sql(schema: str) -> list[str]:
    return [f"DROP TABLE {schema}.audit_events", f"DROP FUNCTION {schema}.audit_events_immutable()"]
