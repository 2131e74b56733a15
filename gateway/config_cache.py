"""A short-lived, per-worker cache of execute-llm's configuration and key lookup (opt-in).

With `GATEWAY_CONFIG_CACHE_SECONDS` = 0 (the default) every call asks the database, so every
change (a member removed, a processor's profile, a rotated key) applies to the next call. A
positive value saves that round trip for repeated calls with the same token, organization and
processor, at a price the operator chooses: such a change may take up to that many seconds to
reach this worker. Only answers are cached, never refusals, so a 403 or 404 is always fresh;
a key set, rotated or deleted through this worker empties its cache at once.
"""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict

from gateway.data import Caller, DataAccess, EffectiveConfig

# Entries beyond this push out the least recently used: bounded memory whatever the traffic.
MAX_ENTRIES = 10_000

_Key = tuple[str, uuid.UUID, uuid.UUID | None, uuid.UUID | None]
_Entry = tuple[float, EffectiveConfig, str | None]


class ConfigCache:
    def __init__(self, seconds: float, max_entries: int = MAX_ENTRIES) -> None:
        self._seconds = seconds
        self._max_entries = max_entries
        # Keyed by the raw token: the database's answer depends on all of its claims.
        self._entries: OrderedDict[_Key, _Entry] = OrderedDict()

    async def effective_config_with_key(
        self,
        data: DataAccess,
        caller: Caller,
        organization_id: uuid.UUID,
        processor_id: uuid.UUID | None,
        run_id: uuid.UUID | None,
    ) -> tuple[EffectiveConfig, str | None]:
        if self._seconds <= 0:
            return await data.effective_config_with_key(caller, organization_id, processor_id, run_id)
        key = (caller.token, organization_id, processor_id, run_id)
        now = time.monotonic()
        entry = self._entries.get(key)
        if entry is not None and entry[0] > now:
            self._entries.move_to_end(key)
            return entry[1], entry[2]
        config, api_key = await data.effective_config_with_key(caller, organization_id, processor_id, run_id)
        self._entries[key] = (now + self._seconds, config, api_key)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)
        return config, api_key

    def clear(self) -> None:
        self._entries.clear()
