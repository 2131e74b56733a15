"""GroupCommit on its own: who waits for what, and who gets which outcome."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from gateway.data.group_commit import GroupCommit


class Recorder:
    """A batch writer that doubles numbers, refuses negative ones, and can be held back."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.release = asyncio.Event()
        self.release.set()

    async def write(self, items: Sequence[int]) -> list[int | Exception]:
        self.batches.append(list(items))
        await self.release.wait()
        return [ValueError(f"refused {i}") if i < 0 else i * 2 for i in items]


async def test_a_lone_item_is_written_at_once_in_a_batch_of_its_own() -> None:
    writer = Recorder()
    assert await GroupCommit(writer.write).submit(3) == 6
    assert writer.batches == [[3]]


async def test_items_arriving_during_a_write_go_together_in_the_next_batch() -> None:
    writer = Recorder()
    group = GroupCommit(writer.write)
    writer.release.clear()
    first = asyncio.ensure_future(group.submit(1))
    await asyncio.sleep(0.01)  # the first batch is being written
    later = [asyncio.ensure_future(group.submit(n)) for n in (2, 3, 4)]
    await asyncio.sleep(0.01)
    writer.release.set()
    assert [await first, *[await f for f in later]] == [2, 4, 6, 8]
    assert writer.batches == [[1], [2, 3, 4]]


async def test_batches_are_capped() -> None:
    writer = Recorder()
    group = GroupCommit(writer.write, max_batch=2)
    assert await asyncio.gather(*(group.submit(n) for n in range(5))) == [0, 2, 4, 6, 8]
    assert writer.batches == [[0, 1], [2, 3], [4]]


async def test_each_caller_gets_its_own_outcome() -> None:
    group = GroupCommit(Recorder().write)
    outcomes = await asyncio.gather(group.submit(1), group.submit(-1), group.submit(2), return_exceptions=True)
    assert outcomes[0] == 2 and outcomes[2] == 4
    assert isinstance(outcomes[1], ValueError) and str(outcomes[1]) == "refused -1"


async def test_a_failed_batch_fails_its_callers_and_the_next_batch_still_runs() -> None:
    calls: list[list[int]] = []

    async def flaky(items: Sequence[int]) -> list[int | Exception]:
        calls.append(list(items))
        if len(calls) == 1:
            raise ConnectionError("database gone")
        return list(items)

    group = GroupCommit(flaky)
    with pytest.raises(ConnectionError):
        await group.submit(1)
    assert await group.submit(2) == 2


async def test_a_cancelled_caller_does_not_withdraw_its_item() -> None:
    writer = Recorder()
    group = GroupCommit(writer.write)
    writer.release.clear()
    caller = asyncio.ensure_future(group.submit(5))
    await asyncio.sleep(0.01)
    caller.cancel()
    writer.release.set()
    await group.drain()
    assert caller.cancelled()
    assert writer.batches == [[5]]


async def test_drain_waits_for_every_submitted_item() -> None:
    writer = Recorder()
    group = GroupCommit(writer.write)
    writer.release.clear()
    pending = [asyncio.ensure_future(group.submit(n)) for n in (1, 2)]
    await asyncio.sleep(0.01)
    drained = asyncio.ensure_future(group.drain())
    await asyncio.sleep(0.01)
    assert not drained.done()
    writer.release.set()
    await drained
    assert all(f.done() for f in pending)
