"""Text PostgreSQL can store: a `text` value cannot hold U+0000, and UTF-8 has no lone surrogates.

Client input that breaks this is refused before anything is sent (`unstorable`); text that came
from outside after a provider call was made (its error message, a model id) is cleaned instead
(`storable`), so the usage row of a call that happened can always be written.
"""

from __future__ import annotations

# Enough for any provider error worth reading; bounds what one failed call adds to its row.
STORED_TEXT_MAX = 2000


def unstorable(text: str) -> str | None:
    """Why the database could not store `text`, or None if it can."""
    if "\x00" in text:
        return "contains a NUL character (U+0000), which cannot be stored"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "contains a lone surrogate, which is not valid UTF-8"
    return None


def storable(text: str, limit: int = STORED_TEXT_MAX) -> str:
    """`text` without NUL characters and lone surrogates (replaced by "?"), cut to `limit` characters."""
    cleaned = text.replace("\x00", "")
    if unstorable(cleaned) is not None:
        cleaned = cleaned.encode("utf-8", "replace").decode("utf-8")
    return cleaned[:limit]
