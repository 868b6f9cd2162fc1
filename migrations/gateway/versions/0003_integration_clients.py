"""Integration clients: systems and apps that get tokens by OAuth2 client credentials (issue 11).

The secret is stored only as an scrypt hash. A deleted client keeps its row with `revoked_at` set:
the gateway refuses its tokens by that mark, and the row says who registered and revoked it.

Revision ID: gateway_0003
Revises: gateway_0002
Create Date: 2026-12-08
"""

from alembic import op

revision = "gateway_0003"
down_revision = "gateway_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
    CREATE TABLE gateway.integration_clients (
        id           uuid PRIMARY KEY,
        name         text NOT NULL,
        role         text NOT NULL,
        districts    text[] NOT NULL DEFAULT '{}',
        secret_hash  text NOT NULL,
        created_at   timestamptz NOT NULL DEFAULT now(),
        created_by   text NOT NULL,
        revoked_at   timestamptz,
        revoked_by   text,
        CONSTRAINT ck_integration_clients_role CHECK (role IN ('integrator', 'viewer')),
        CONSTRAINT ck_integration_clients_name CHECK (length(name) BETWEEN 1 AND 200),
        CONSTRAINT ck_integration_clients_secret_hash CHECK (secret_hash LIKE 'scrypt$%'),
        CONSTRAINT ck_integration_clients_revoked CHECK ((revoked_at IS NULL) = (revoked_by IS NULL))
    )""")
    op.execute("CREATE INDEX ix_integration_clients_active ON gateway.integration_clients (created_at, id) "
               "WHERE revoked_at IS NULL")


def downgrade() -> None:
    op.execute("DROP TABLE gateway.integration_clients")
