"""Billing of provider calls: exactly one committed usage row per call, before anyone sees a result.

A call that reached the provider is recorded whether it succeeded, failed or was abandoned;
a request the provider never received (rejected while it was being built) records nothing.
If the row cannot be committed, the caller gets 503 instead of the content: no completed call
goes unbilled.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass

import aiohttp

from gateway.data import DataAccess, UsageRecord
from gateway.errors import (
    BadRequest,
    ConfigError,
    DatabaseUnavailable,
    GatewayError,
    NotFoundError,
    ProviderBlocked,
    ProviderError,
    UnsupportedSetting,
)
from gateway.providers import Completion, CompletionRequest, ProviderStream, Usage, complete, open_stream
from gateway.storable import STORED_TEXT_MAX, storable, unstorable

logger = logging.getLogger(__name__)

_WITHHELD = "the call could not be recorded for billing, so its result is withheld"
# complete() raises these before sending anything, so there is no call to bill.
_REJECTED_BEFORE_SENDING = (BadRequest, UnsupportedSetting, ConfigError, ProviderBlocked)


@dataclass(frozen=True)
class BilledCompletion:
    completion: Completion
    estimated_cost: float | None
    response_time_ms: int
    # The same time, unrounded: what the gateway's own overhead is measured against.
    provider_seconds: float


async def complete_and_record(
    client: aiohttp.ClientSession,
    data: DataAccess,
    row: UsageRecord,
    base_url: str,
    api_key: str,
    request: CompletionRequest,
    *,
    seconds: float | None = None,
) -> BilledCompletion:
    """Call `row.provider` (in at most `seconds` when given) and commit `row`, completed with the
    call's tokens, time or error."""
    started = time.perf_counter()
    try:
        completion = await complete(client, row.provider, base_url, api_key, request, seconds=seconds)
    except _REJECTED_BEFORE_SENDING:
        raise
    except ProviderError as exc:
        failed = dataclasses.replace(row, response_time_ms=_ms(started), error_message=exc.message)
        # The code only: a provider's message may quote the request.
        logger.warning("%s %s failed after %d ms: %s", row.provider, row.model_name, failed.response_time_ms, exc.code)
        await _record(data, failed)
        raise
    except Exception:
        failed = dataclasses.replace(row, response_time_ms=_ms(started), error_message="gateway error during the call")
        await _record(data, failed)
        raise
    except asyncio.CancelledError:
        # The provider may have answered (and charged) already; record it though nobody waits.
        abandoned = dataclasses.replace(
            row, response_time_ms=_ms(started), error_message="request cancelled before the provider answered"
        )
        with contextlib.suppress(DatabaseUnavailable):  # already logged; cancellation must go on
            await _record(data, abandoned)
        raise

    provider_seconds = time.perf_counter() - started
    response_time_ms = round(provider_seconds * 1000)
    usage = completion.usage
    cost = await _record(
        data,
        dataclasses.replace(
            row,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cache_read_tokens=usage.cache_read_tokens,
            cache_write_tokens=usage.cache_write_tokens,
            response_time_ms=response_time_ms,
        ),
    )
    return BilledCompletion(completion, cost, response_time_ms, provider_seconds)


# The usage row of a stream whose client left before it ended says so.
CLIENT_GONE = "the client disconnected before the stream ended"
# Roughly four characters to a token in the providers' tokenizers for English text: only for a
# stream that ended before the provider reported its usage, and the row says it is an estimate.
_CHARACTERS_PER_TOKEN = 4


async def open_billed_stream(
    client: aiohttp.ClientSession,
    data: DataAccess,
    row: UsageRecord,
    base_url: str,
    api_key: str,
    request: CompletionRequest,
    *,
    seconds: float | None = None,
) -> BilledStream:
    """Open a streamed call to `row.provider`: once this returns, the provider is streaming and
    nothing has reached the caller yet. A failure to open is recorded like complete_and_record's;
    the open stream's row is written by `BilledStream.finish`, exactly once."""
    stream = open_stream(client, row.provider, base_url, api_key, request, seconds=seconds)
    started = time.perf_counter()
    try:
        await stream.__aenter__()
    except _REJECTED_BEFORE_SENDING:
        raise
    except ProviderError as exc:
        await _record(data, dataclasses.replace(row, response_time_ms=_ms(started), error_message=exc.message))
        raise
    except asyncio.CancelledError:
        abandoned = dataclasses.replace(
            row, response_time_ms=_ms(started), error_message="request cancelled before the provider answered"
        )
        with contextlib.suppress(DatabaseUnavailable):
            await _record(data, abandoned)
        raise
    return BilledStream(stream, data, row, request, started)


class BilledStream:
    """An open provider stream; `relay` passes it on and writes its row, exactly once."""

    def __init__(
        self, stream: ProviderStream, data: DataAccess, row: UsageRecord, request: CompletionRequest, started: float
    ) -> None:
        self._stream = stream
        self._data = data
        self._row = row
        self._request = request
        self._started = started
        # Time to the provider's first answer: what the attempt took before streaming began.
        self.provider_seconds = time.perf_counter() - started
        self.response_time_ms = round(self.provider_seconds * 1000)
        self._recorded = False

    async def relay(self) -> AsyncGenerator[str | BilledCompletion | GatewayError, None]:
        """The text as it arrives, then one ending: the completion, billed (its row committed), or
        the error that ended the stream (the provider's, or why the row could not be written).

        However the consumer stops (the client gone included; close this generator with
        `contextlib.aclosing`), the upstream response is closed and the row still written."""
        failure: GatewayError | None = None
        ending = CLIENT_GONE
        try:
            try:
                async for delta in self._stream:
                    yield delta.content
            except ProviderError as exc:
                failure = exc
            try:
                billed = await self._finish(None if failure is None else failure.message)
            except GatewayError as exc:  # no row, no completion: as a non-streamed call's 503 or 404
                failure = failure or exc
            yield billed if failure is None else failure
        except Exception:
            ending = "gateway error during the stream"
            raise
        finally:
            if not self._recorded:
                await self._finish(ending)

    async def close(self) -> None:
        """Write the row unless it is written: the stream was not relayed to its end (the client
        went away, or the answer was never sent at all)."""
        if not self._recorded:
            await self._finish(CLIENT_GONE)

    async def _finish(self, error_message: str | None) -> BilledCompletion:
        """Stop reading and commit the row: the provider's usage, or (when it reported none) an
        estimate from the text sent and received, marked usage_estimated."""
        self._recorded = True
        await self._stream.aclose()
        response_time_ms = _ms(self._started)
        usage, estimated = self._stream.usage, False
        if usage is None:
            usage, estimated = self._estimated_usage(), True
        row = dataclasses.replace(
            self._row,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cache_read_tokens=usage.cache_read_tokens,
            cache_write_tokens=usage.cache_write_tokens,
            response_time_ms=response_time_ms,
            error_message=error_message,
            usage_estimated=estimated,
        )
        cost = await _record(self._data, row)
        completion = Completion(self._stream.text, self._stream.model, usage)
        return BilledCompletion(completion, cost, response_time_ms, self.provider_seconds)

    def _estimated_usage(self) -> Usage:
        sent = sum(len(m.content) for m in self._request.messages) + len(self._request.system or "")
        return Usage(
            input_tokens=math.ceil(sent / _CHARACTERS_PER_TOKEN),
            output_tokens=math.ceil(len(self._stream.text) / _CHARACTERS_PER_TOKEN),
        )


async def _record(data: DataAccess, row: UsageRecord) -> float | None:
    row = _storable(row)
    try:
        return await _insert(data, row)
    except DatabaseUnavailable:
        raise
    except Exception:
        if row.run_id is None and row.processor_id is None:
            raise DatabaseUnavailable(_WITHHELD) from None
    # The database refused the row, which its references explain: the run or the processor was
    # deleted during the call (both were checked before it). The call happened, so it is billed
    # without them, and the caller gets a 404 instead of the content.
    detached = dataclasses.replace(
        row,
        run_id=None,
        processor_id=None,
        error_message=row.error_message or "recorded without run_id and processor_id, which the database refused",
    )
    try:
        await _insert(data, detached)
    except Exception:
        raise DatabaseUnavailable(_WITHHELD) from None
    raise NotFoundError("the run or the processor was deleted during the call; the call was billed without it")


async def _insert(data: DataAccess, row: UsageRecord) -> float | None:
    try:
        # A client going away does not cancel the write of a call already made: every adapter's
        # record_usage finishes the write even if its caller is cancelled.
        return await data.record_usage(row)
    except Exception as exc:
        logger.error(
            "usage row not recorded (organization %s, %s %s): %s",
            row.organization_id,
            row.provider,
            row.model_name,
            type(exc).__name__,
        )
        raise


def _storable(row: UsageRecord) -> UsageRecord:
    """The row with its outside text (a provider's error message above all) made storable: a call
    that happened must never be unbillable because of what someone else's text contains."""
    texts = (row.model_name, row.operation_id, row.error_message)
    if all(text is None or (len(text) <= STORED_TEXT_MAX and unstorable(text) is None) for text in texts):
        return row  # the usual case, without a copy on the hot path
    return dataclasses.replace(
        row,
        model_name=storable(row.model_name),
        operation_id=None if row.operation_id is None else storable(row.operation_id),
        error_message=None if row.error_message is None else storable(row.error_message),
    )


def _ms(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)
