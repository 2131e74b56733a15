"""Group commit: many callers' rows written in one round trip, each caller told its own outcome.

A row submitted while no batch is being written is written at once, so a lone caller waits for
nothing extra; rows that arrive while a batch is in flight go together in the next one. Under
load that turns one insert-and-commit per request into one per batch, and every caller still
returns only after its own row is committed (or has failed).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")

# Writes a batch; returns one result or exception per item, in order. Raising fails the batch.
BatchWriter = Callable[[Sequence[Item]], Awaitable[Sequence[Result | Exception]]]


class GroupCommit(Generic[Item, Result]):
    def __init__(self, write_batch: BatchWriter[Item, Result], *, max_batch: int = 100) -> None:
        self._write_batch = write_batch
        self._max_batch = max_batch
        self._pending: list[tuple[Item, asyncio.Future[Result]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def submit(self, item: Item) -> Result:
        """Wait until `item` is written; its result, or its exception raised here.

        Cancelling the caller does not withdraw the item: once submitted it is written."""
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._writer is None:
            self._writer = asyncio.create_task(self._write_pending())
        return await future

    async def drain(self) -> None:
        """Wait until every submitted item is written (at shutdown, before closing the database)."""
        while self._writer is not None:
            await asyncio.shield(self._writer)

    async def _write_pending(self) -> None:
        try:
            while self._pending:
                batch = self._pending[: self._max_batch]
                del self._pending[: self._max_batch]
                try:
                    outcomes: Sequence[Result | Exception] = await self._write_batch([item for item, _ in batch])
                except Exception as exc:  # each caller gets it; the writer goes on
                    outcomes = [exc] * len(batch)
                for (_, future), outcome in zip(batch, outcomes, strict=True):
                    if future.done():  # its caller was cancelled; the item was written all the same
                        continue
                    if isinstance(outcome, Exception):
                        future.set_exception(outcome)
                    else:
                        future.set_result(outcome)
        finally:
            self._writer = None
