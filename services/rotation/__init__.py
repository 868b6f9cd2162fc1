"""The rotation service."""
