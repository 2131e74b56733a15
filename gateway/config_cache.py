"""A per-worker cache of what a call reads from the database first (configuration, the
organization's key, whether a hard budget applies), correct by default.

With a direct database connection (`DATABASE_URL`) the database announces every change that can
alter a cached answer (`llm_config_changed`, see the migrations), and the worker's listener drops
the entries of the organization it names, or all of them for the catalog. While the listener is
not connected nothing is served from the cache: every call asks the database, and the cache is
emptied when the listener is back (notifications may have been missed meanwhile). The TTL is a
safety net, not the means of freshness.

Without a notification channel (the PostgREST adapter) the cache is used only when the operator
sets a TTL, and a change made elsewhere may then take that long to apply.

Only answers are cached, never refusals, so a 403 or 404 is always fresh. Entries are keyed by
the raw token (the database's answer depends on all of its claims), so one user's answer never
serves another; the token itself is verified, expiry included, before the cache is asked.
"""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict

from gateway.data import Caller, DataAccess, ResolvedCall
from gateway.metrics import Metrics

# Entries beyond this push out the least recently used: bounded memory whatever the traffic.
MAX_ENTRIES = 10_000
# The payload of a change to the catalog, which every organization's configuration reads.
EVERY_ORGANIZATION = "*"

_Key = tuple[str, uuid.UUID, uuid.UUID | None, uuid.UUID | None, str | None]
_Entry = tuple[float, ResolvedCall]


class ConfigCache:
    def __init__(
        self, seconds: float, *, invalidated: bool, max_entries: int = MAX_ENTRIES, metrics: Metrics | None = None
    ) -> None:
        """`invalidated`: entries are dropped on change notifications, and served only while they arrive."""
        self._metrics = metrics
        self._seconds = seconds
        self._invalidated = invalidated
        self._max_entries = max_entries
        self._entries: OrderedDict[_Key, _Entry] = OrderedDict()
        self._listening = False
        # Bumped by every invalidation: an answer read from the database while one happened may
        # predate the change, so it is not stored.
        self._generation = 0

    @property
    def state(self) -> str:
        """For /ready: "off", "ttl" (no notifications), "listening", or "bypassed" (listener down)."""
        if self._seconds <= 0:
            return "off"
        if not self._invalidated:
            return "ttl"
        return "listening" if self._listening else "bypassed"

    async def resolve_call(
        self,
        data: DataAccess,
        caller: Caller,
        organization_id: uuid.UUID,
        processor_id: uuid.UUID | None,
        run_id: uuid.UUID | None,
        model: str | None = None,
    ) -> ResolvedCall:
        state = self.state
        if state not in ("listening", "ttl"):
            if state == "bypassed" and self._metrics is not None:
                self._metrics.config_cache_miss.inc()
            return await data.resolve_call(caller, organization_id, processor_id, run_id, model)
        key = (caller.token, organization_id, processor_id, run_id, model)
        now = time.monotonic()
        entry = self._entries.get(key)
        if entry is not None and entry[0] > now:
            self._entries.move_to_end(key)
            if self._metrics is not None:
                self._metrics.config_cache_hit.inc()
            return entry[1]
        if self._metrics is not None:
            self._metrics.config_cache_miss.inc()
        generation = self._generation
        resolved = await data.resolve_call(caller, organization_id, processor_id, run_id, model)
        if self._generation == generation and self.state in ("listening", "ttl"):
            self._entries[key] = (now + self._seconds, resolved)
            self._entries.move_to_end(key)
            while len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)
        return resolved

    def invalidate(self, organization: str) -> None:
        """Drop what a change notification names: an organization id, or every organization."""
        if organization == EVERY_ORGANIZATION:
            self.clear()
            return
        try:
            organization_id = uuid.UUID(organization)
        except ValueError:  # not a payload of ours: drop everything rather than guess
            self.clear()
            return
        self._generation += 1
        dropped = [key for key in self._entries if key[1] == organization_id]
        for key in dropped:
            del self._entries[key]
        self._count_invalidated(len(dropped))

    def set_listening(self, listening: bool) -> None:
        """The listener connected (its LISTEN is in place) or lost its connection; either way what
        is cached may have missed a change."""
        self._listening = listening
        self.clear()

    def clear(self) -> None:
        self._generation += 1
        self._count_invalidated(len(self._entries))
        self._entries.clear()

    def _count_invalidated(self, entries: int) -> None:
        if self._metrics is not None and entries:
            self._metrics.config_cache_invalidated.inc(entries)
