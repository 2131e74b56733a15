"""Server-sent events as the gateway sends them (text/event-stream)."""

from __future__ import annotations

from typing import Any

import msgspec

# Proxies (nginx and its kin) hold back a buffered answer; an event stream must pass at once.
NO_BUFFERING = {"cache-control": "no-cache", "x-accel-buffering": "no"}

_JSON = msgspec.json.Encoder()


def sse_event(event: str | None, data: Any) -> bytes:
    """One event: `data` as JSON on one line (JSON never holds a raw newline), `event` if named."""
    name = b"" if event is None else b"event: " + event.encode() + b"\n"
    return name + b"data: " + _JSON.encode(data) + b"\n\n"
