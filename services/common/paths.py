"""Request paths that name no resource, and one canonical spelling of those that do.

A `.` or `..` segment is a walk, not a name: the gateway routes by the first segment, and URL
normalisation further on (httpx, any proxy) resolves the dots, so `/api/v1/studios/../internal/…`
was routed to training and then reached `/v1/internal/…` (issue 9, item 3). Every process refuses
such a path with 404 before routing, whether the dots come raw, percent-encoded (`%2e%2e`, `%2E.`),
encoded twice (`%252e`), or next to an encoded slash or a backslash (`..%2f`, `..%5c`).
"""

from __future__ import annotations

import re
from urllib.parse import quote, unquote_to_bytes

_SEPARATORS = re.compile(rb"[/\\]")
_DOTS = (b".", b"..")


def has_dot_segment(raw_path: bytes) -> bool:
    """True when the path, as sent or after any number of percent-decodings, has a `.`/`..`
    segment (segments split at `/` and at `\\`, which some software also takes for a separator).
    Each decoding that changes the path shortens it, so the loop ends."""
    text = raw_path
    while True:
        if any(part in _DOTS for part in _SEPARATORS.split(text)):
            return True
        decoded = unquote_to_bytes(text)
        if decoded == text:
            return False
        text = decoded


def normalised(raw_path: bytes) -> str:
    """The path with each segment's bytes percent-encoded one way (only unreserved characters
    literal). An encoded `/`, `?` or `#` inside a segment stays encoded, so it cannot be re-read
    as URL syntax upstream; bytes that are not UTF-8 survive unchanged."""
    return "/".join(quote(unquote_to_bytes(segment), safe="") for segment in raw_path.split(b"/"))
