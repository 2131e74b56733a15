"""A call's worst case, reserved against the hard budgets it falls under before it is made.

Input tokens are bounded above by the UTF-8 bytes of every text sent (a tokenizer never needs
more tokens than bytes) plus a fixed allowance per message for the role markers and separators a
provider adds. Output tokens are bounded by the max_tokens sent, which a call under a hard budget
always sends: the configured one, or OUTPUT_CAP_TOKENS when none is configured. The database
prices the bound at the highest input rate that could apply and refuses (402) what does not fit.
"""

from __future__ import annotations

import dataclasses
import uuid

from gateway.data import BudgetReservation, DataAccess
from gateway.providers import CompletionRequest

MESSAGE_ALLOWANCE_TOKENS = 16
# Sent as max_tokens under a hard budget when the configuration sets none (Anthropic's default
# here too), so that the output has a bound to reserve.
OUTPUT_CAP_TOKENS = 4096
# A reservation outlives the longest a call can take; then it is released if never settled.
RESERVATION_MARGIN_SECONDS = 60


def max_input_tokens(request: CompletionRequest) -> int:
    texts = [message.content for message in request.messages]
    if request.system is not None:
        texts.append(request.system)
    return sum(len(text.encode("utf-8")) for text in texts) + MESSAGE_ALLOWANCE_TOKENS * len(texts)


def with_output_bound(request: CompletionRequest) -> CompletionRequest:
    """The request with an explicit max_tokens."""
    if isinstance(request.settings.get("max_tokens"), int):
        return request
    return dataclasses.replace(request, settings={**request.settings, "max_tokens": OUTPUT_CAP_TOKENS})


async def reserve(
    data: DataAccess,
    organization_id: uuid.UUID,
    processor_id: uuid.UUID | None,
    provider: str,
    request: CompletionRequest,
    call_seconds: float,
) -> tuple[CompletionRequest, uuid.UUID | None]:
    """The request to send (bounded) and its reservation; BudgetExceeded when one cannot hold it."""
    bounded = with_output_bound(request)
    reservation_id = await data.reserve_budget(
        BudgetReservation(
            organization_id=organization_id,
            processor_id=processor_id,
            provider=provider,
            model=request.model,
            max_input_tokens=max_input_tokens(bounded),
            max_output_tokens=int(bounded.settings["max_tokens"]),
            seconds=int(call_seconds) + RESERVATION_MARGIN_SECONDS,
        )
    )
    return bounded, reservation_id
