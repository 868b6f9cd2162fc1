"""Timestamps are taken in UTC, in one place."""

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)
