"""The gateway: the single public entry, routing /api/v1 to the services and composing views."""
