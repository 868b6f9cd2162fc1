"""Alembic migrations: one history and one version table per service schema."""
