"""Requests exactly as a hostile client writes them, which httpx refuses to send.

httpx resolves `.`/`..` segments of a URL before sending (`httpx.URL("/a/../b").raw_path` is
`b"/b"`) and refuses non-ASCII header values, so neither a dot-segment path nor a UTF-8 header
can be tested through it. `asgi_request` hands an app the ASGI scope a server would build from
such a request (uvicorn: `raw_path` as sent, `path` percent-decoded); `socket_request` writes the
bytes to a real process over a loopback socket.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote


@dataclass
class RawResponse:
    status: int
    headers: dict[str, bytes]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


async def asgi_request(app, method: str, raw_path: bytes, *, headers: list[tuple[bytes, bytes]] = (),
                       body: bytes = b"", query: bytes = b"") -> RawResponse:
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
        "scheme": "http", "server": ("gateway", 80), "client": ("127.0.0.1", 50000), "root_path": "",
        "raw_path": raw_path, "path": unquote(raw_path.decode("ascii")), "query_string": query,
        "headers": [(b"host", b"gateway"), *((k.lower(), v) for k, v in headers)],
    }
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    sent: list[dict] = []

    async def receive() -> dict:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    return RawResponse(start["status"], {k.decode("latin-1"): v for k, v in start.get("headers", [])},
                       b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body"))


async def socket_request(host: str, port: int, method: str, target: bytes,
                         headers: list[tuple[bytes, bytes]] = ()) -> RawResponse:
    """One HTTP/1.1 request written byte for byte (`Connection: close`), its response read whole."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        head = b"%s %s HTTP/1.1\r\nHost: %s:%d\r\nConnection: close\r\n" % (method.encode(), target,
                                                                          host.encode(), port)
        head += b"".join(b"%s: %s\r\n" % (k, v) for k, v in headers)
        writer.write(head + b"Content-Length: 0\r\n\r\n")
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), timeout=10)
    finally:
        writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ")[1])
    parsed = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        parsed[name.decode("latin-1").lower()] = value.strip()
    if parsed.get("transfer-encoding") == b"chunked":
        body = _unchunk(body)
    return RawResponse(status, parsed, body)


def _unchunk(data: bytes) -> bytes:
    out = b""
    while data:
        size_line, _, rest = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out += rest[:size]
        data = rest[size + 2:]
    return out
