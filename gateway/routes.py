"""The route table (design.md §5): which service owns each public resource prefix.

Public paths are flat and do not reveal the owner; the first path segment decides.
"""

from __future__ import annotations

ROUTE_TABLE: dict[str, str] = {
    "districts": "partnership",
    "schools": "partnership",
    "pairings": "partnership",
    "activities": "partnership",
    "staff": "rotation",
    "rotation-policies": "rotation",
    "rotations": "rotation",
    "rotation-plans": "rotation",
    "studios": "training",
    "sessions": "training",
    "training-hours": "training",
}

# Sub-resources of a resource another service owns: (first segment, third segment) → owner.
# `/districts/{code}/rotation-proposals…` are rotation's (the proposer, issue 14).
SUBRESOURCES: dict[tuple[str, str], str] = {("districts", "rotation-proposals"): "rotation"}

# Internal figures are for the gateway's own views, never proxied to clients.
PRIVATE_PREFIXES = ("internal",)


# Bulk imports: the kind (or an import id's "<kind>." prefix) names the owner.
IMPORT_KINDS = {"schools": "partnership", "staff": "rotation", "rotations": "rotation",
                "training-hours": "training"}

# Resources every service has: the caller names the service (`?service=rotation`).
PER_SERVICE_PREFIXES = ("changes",)
SERVICES = ("partnership", "rotation", "training")


def owner_of(path: str, service: str | None = None) -> str | None:
    """The service that owns `/api/v1/<path>`, or None when no service does."""
    first = path.strip("/").split("/", 1)[0]
    if first in PRIVATE_PREFIXES:
        return None
    if first in PER_SERVICE_PREFIXES:
        return service if service in SERVICES else None
    if first == "imports":
        parts = path.strip("/").split("/")
        return IMPORT_KINDS.get(parts[1].split(".", 1)[0]) if len(parts) == 2 else None
    parts = path.strip("/").split("/")
    if len(parts) >= 3 and (parts[0], parts[2]) in SUBRESOURCES:
        return SUBRESOURCES[(parts[0], parts[2])]
    return ROUTE_TABLE.get(first)
