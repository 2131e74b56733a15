"""The worker's LISTEN connection: change notifications from the database into the config cache.

It needs a direct or session-mode connection (Supabase's transaction pooler does not carry
notifications): DATABASE_LISTEN_URL, else DATABASE_URL. While it is down the cache is bypassed;
it reconnects every RECONNECT_SECONDS, and TCP keepalives notice a connection that died silently.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import psycopg

from gateway.config_cache import ConfigCache

logger = logging.getLogger(__name__)

CHANNEL = "llm_config_changed"
APPLICATION_NAME = "llm-gateway-listen"
RECONNECT_SECONDS = 0.5


class ConfigChangeListener:
    def __init__(self, url: str, cache: ConfigCache, *, connect_timeout: int = 5) -> None:
        self._url = url
        self._cache = cache
        self._connect_timeout = connect_timeout
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._listen_forever(), name="config-change-listener")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _listen_forever(self) -> None:
        while True:
            try:
                await self._listen()
            except (psycopg.Error, OSError) as exc:
                # The class only: a connection error can quote the connection string.
                logger.warning("config change listener down (%s); config cache bypassed", type(exc).__name__)
            finally:
                self._cache.set_listening(False)
            await asyncio.sleep(RECONNECT_SECONDS)

    async def _listen(self) -> None:
        async with await psycopg.AsyncConnection.connect(
            self._url,
            autocommit=True,
            application_name=APPLICATION_NAME,
            connect_timeout=self._connect_timeout,
            keepalives=1,
            keepalives_idle=10,
            keepalives_interval=5,
            keepalives_count=3,
        ) as conn:
            await conn.execute(f"listen {CHANNEL}")
            self._cache.set_listening(True)
            logger.info("config change listener connected; the config cache is in use")
            async for notification in conn.notifies():
                self._cache.invalidate(notification.payload)
