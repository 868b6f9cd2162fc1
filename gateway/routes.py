"""The route table (design.md §5): which service owns each public resource prefix.

Public paths are flat and do not reveal the owner; the first path segment decides.
"""

from __future__ import annotations

from functools import lru_cache

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
        if len(parts) == 3 and parts[2] == "template":  # GET /imports/{kind}/template
            return IMPORT_KINDS.get(parts[1])
        return IMPORT_KINDS.get(parts[1].split(".", 1)[0]) if len(parts) == 2 else None
    parts = path.strip("/").split("/")
    if len(parts) >= 3 and (parts[0], parts[2]) in SUBRESOURCES:
        return SUBRESOURCES[(parts[0], parts[2])]
    return ROUTE_TABLE.get(first)


# Metrics and span names label a proxied request by the public operation's template
# (`/api/v1/schools/{code}`), never by its raw path: one series per school would explode Prometheus.
# The templates are the operation catalog's keys, which the OpenAPI test keeps complete.
UNMATCHED = "unmatched"


@lru_cache(maxsize=1)
def _templates() -> dict[tuple[str, int, str], list[tuple[tuple[str | None, ...], str]]]:
    """Templates by method, segment count and first segment (a literal in every public path)."""
    from gateway.openapi_catalog import OPERATIONS

    table: dict[tuple[str, int, str], list[tuple[tuple[str | None, ...], str]]] = {}
    for key in OPERATIONS:
        method, template = key.split(" ", 1)
        segments = template.removeprefix("/api/v1/").split("/")
        pattern = tuple(None if s.startswith("{") else s for s in segments)
        table.setdefault((method, len(segments), segments[0]), []).append((pattern, template))
    for candidates in table.values():  # a literal segment wins over a parameter (`summary` before `{id}`)
        candidates.sort(key=lambda entry: [part is None for part in entry[0]])
    return table


def route_label(method: str, path: str) -> str:
    """The template of the public operation `method /api/v1/<path>` names, or "unmatched"."""
    segments = path.strip("/").split("/")
    for pattern, template in _templates().get((method, len(segments), segments[0]), ()):
        for part, segment in zip(pattern, segments):
            if part is not None and part != segment:
                break
        else:
            return template
    return UNMATCHED
