"""DataAccess straight to Postgres through a psycopg async pool (`DATABASE_URL`).

Safe behind Supabase's transaction-mode pooler (Supavisor/PgBouncer): nothing is prepared
server-side and every call is a single transaction that sets its own role and JWT claims
(transaction-local, as PostgREST does), so no session state outlives it.

Most calls are one round trip: the role prelude and the function call travel as one
multi-statement simple query (client-side parameter binding), which PostgreSQL runs as one
implicit transaction: an error anywhere rolls back all of it. Usage rows are group-committed:
the rows of concurrent calls go in one insert (see group_commit.py).
"""

from __future__ import annotations

import dataclasses
import json
import time
import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import Any, Final

import psycopg
from psycopg import AsyncClientCursor
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool

from gateway.data.errors import database_error, unavailable
from gateway.data.group_commit import GroupCommit
from gateway.data.types import (
    RUN_NOT_FOUND,
    BudgetReservation,
    Caller,
    EffectiveConfig,
    KeyInfo,
    ModelChoice,
    ResolvedCall,
    UsageRecord,
)
from gateway.errors import BudgetExceeded, GatewayError, NotFoundError
from gateway.metrics import Metrics

Pool = AsyncConnectionPool[psycopg.AsyncConnection[TupleRow]]

APPLICATION_NAME = "llm-gateway"

# Parameters 1 and 2 of every call: the JWT claims and the statement timeout. One statement,
# as PostgREST's own: set_config('role', ..., true) is SET LOCAL ROLE.
_PRELUDE: Final[dict[str, str]] = {
    role: f"select set_config('role', '{role}', true), set_config('request.jwt.claims', %s, true), "
    "set_config('statement_timeout', %s, true); "
    for role in ("authenticated", "service_role")
}
_SERVICE_CLAIMS: Final = json.dumps({"role": "service_role"})
# Follows `select set_config('gateway.effective_config', <config call>::text, true)` in
# resolve_call; the configuration holds no secret, and the setting ends with the transaction. As
# the service role: the organization's key of each target that uses one, whether the run (if any) is
# one of the organization's, and whether a hard budget applies.
_CALL_AS_SERVICE: Final = (
    "::text, true); "
    "select set_config('role', 'service_role', true), set_config('request.jwt.claims', %s, true); "
    "select call.c, "
    "(select jsonb_object_agg(t.provider, public.get_org_api_key(call.org, t.provider))"
    " from (select distinct target ->> 'provider' as provider"
    " from jsonb_array_elements(jsonb_build_array(call.c) || (call.c -> 'fallbacks')) as target"
    " where target ->> 'api_key_source' = 'organization') as t), "
    "call.run_id is null"
    " or exists (select from public.runs as r where r.id = call.run_id and r.organization_id = call.org), "
    "exists (select from public.llm_budgets as b where b.organization_id = call.org and b.hard"
    " and (b.processor_id is null or b.processor_id = call.processor_id)) "
    "from (select current_setting('gateway.effective_config')::jsonb as c, %s::uuid as org, %s::uuid as run_id,"
    " %s::uuid as processor_id) as call"
)
# Concurrent calls' reservations in one round trip (group commit): the budget's counter row is
# locked once per batch instead of once per call.
_RESERVE: Final = "select call_index, reservation_id, refusal from public.reserve_llm_budgets(%s::jsonb)"
_USAGE_COLUMNS: Final = tuple(f.name for f in dataclasses.fields(UsageRecord))
# The gateway picks each row's id, which matches RETURNING's rows to the batch's callers
# (RETURNING promises no order). Bound values, not one JSON parameter through
# jsonb_populate_recordset: that measured 0.03-0.08 ms more server time per single-row insert.
_INSERT_USAGE: Final = f"insert into public.llm_usage_logs (id, {', '.join(_USAGE_COLUMNS)}) values "
_USAGE_ROW: Final = f"({', '.join(['%s'] * (len(_USAGE_COLUMNS) + 1))})"


class PostgresDataAccess:
    """Build with `await PostgresDataAccess.connect(database_url)`; `await close()` at shutdown."""

    def __init__(self, pool: Pool, *, statement_timeout_ms: int = 5000, metrics: Metrics | None = None) -> None:
        self.pool = pool
        self._metrics = metrics
        self._statement_timeout = f"{statement_timeout_ms}ms"
        self._usage: GroupCommit[UsageRecord, float | None] = GroupCommit(self._insert_usage)
        self._reservations: GroupCommit[BudgetReservation, uuid.UUID | None] = GroupCommit(self._reserve_batch)

    @classmethod
    async def connect(
        cls,
        database_url: str,
        *,
        min_size: int = 1,
        max_size: int = 10,
        pool_timeout: float = 5.0,
        connect_timeout: int = 5,
        statement_timeout_ms: int = 5000,
        metrics: Metrics | None = None,
    ) -> PostgresDataAccess:
        """Open the pool without waiting for the database, so the app starts (and /ready says
        503) while it is down. `pool_timeout` bounds the wait for a connection in each call."""
        pool: Pool = AsyncConnectionPool(
            database_url,
            min_size=min_size,
            max_size=max_size,
            timeout=pool_timeout,
            open=False,
            name="gateway",
            # prepare_threshold=None: a transaction-mode pooler may hand each transaction to a
            # different server connection, where a prepared statement would not exist.
            kwargs={
                "autocommit": True,
                "prepare_threshold": None,
                "connect_timeout": connect_timeout,
                # Tells the gateway's connections apart in pg_stat_activity.
                "application_name": APPLICATION_NAME,
            },
        )
        await pool.open(wait=False)
        return cls(pool, statement_timeout_ms=statement_timeout_ms, metrics=metrics)

    async def close(self) -> None:
        await self._reservations.drain()
        await self._usage.drain()
        await self.pool.close()

    async def ping(self) -> None:
        try:
            async with self.pool.connection() as conn:
                await conn.execute("select 1")
        except psycopg.Error as exc:
            raise _mapped(exc) from exc

    async def effective_config(
        self, caller: Caller, organization_id: uuid.UUID, processor_id: uuid.UUID | None
    ) -> EffectiveConfig:
        """A signed-in caller's organization comes from its token (the database's check);
        `organization_id` is used for the service role only."""
        rows = await self._call(
            caller, "select " + _config_query(caller, None), _config_params(caller, organization_id, processor_id, None)
        )
        return EffectiveConfig.from_json(rows[0][0])

    async def resolve_call(
        self,
        caller: Caller,
        organization_id: uuid.UUID,
        processor_id: uuid.UUID | None,
        run_id: uuid.UUID | None,
        model: str | None = None,
    ) -> ResolvedCall:
        """One round trip: resolve as the caller, keep the result in a transaction-local setting,
        switch to the service role, read the key only if the organization's is the one to use,
        check the run and look for a hard budget."""
        rows = await self._call(
            caller,
            "select set_config('gateway.effective_config', " + _config_query(caller, model) + _CALL_AS_SERVICE,
            (
                *_config_params(caller, organization_id, processor_id, model),
                _SERVICE_CLAIMS,
                organization_id,
                run_id,
                processor_id,
            ),
        )
        config, keys, run_of_organization, hard_budget = rows[0]
        if not run_of_organization:
            raise NotFoundError(RUN_NOT_FOUND)
        return ResolvedCall(EffectiveConfig.from_json(config), keys or {}, hard_budget)

    async def list_models(self, caller: Caller, organization_id: uuid.UUID) -> list[ModelChoice]:
        if caller.role == "service_role":
            rows = await self._call(caller, "select * from public.list_llm_models_for_org(%s)", (organization_id,))
        else:
            rows = await self._call(caller, "select * from public.list_llm_models()", ())
        return [ModelChoice(*row) for row in rows]

    async def reserve_budget(self, reservation: BudgetReservation) -> uuid.UUID | None:
        return await self._reservations.submit(reservation)

    async def _reserve_batch(self, reservations: Sequence[BudgetReservation]) -> list[uuid.UUID | Exception | None]:
        calls = [
            {**dataclasses.asdict(r), "organization_id": str(r.organization_id), "processor_id": _text(r.processor_id)}
            for r in reservations
        ]
        rows = await self._run("service_role", _SERVICE_CLAIMS, _RESERVE, (json.dumps(calls),))
        outcomes: dict[int, uuid.UUID | Exception | None] = {
            index: BudgetExceeded(refusal) if refusal is not None else reservation_id
            for index, reservation_id, refusal in rows
        }
        return [outcomes[n] for n in range(1, len(reservations) + 1)]

    async def org_api_key(self, organization_id: uuid.UUID, provider: str) -> str | None:
        rows = await self._run(
            "service_role", _SERVICE_CLAIMS, "select public.get_org_api_key(%s, %s)", (organization_id, provider)
        )
        key: str | None = rows[0][0]
        return key

    async def record_usage(self, record: UsageRecord) -> float | None:
        # Group commit writes a submitted row whether or not its caller still waits.
        return await self._usage.submit(record)

    async def _insert_usage(self, records: Sequence[UsageRecord]) -> list[float | Exception | None]:
        """One insert of all `records`. A row the database refuses rolls back the whole batch, so
        then each goes again on its own, and only that row's caller gets the error."""
        started = time.perf_counter()
        try:
            costs: list[float | Exception | None] = list(await self._insert_rows(records))
            if (metrics := self._metrics) is not None:
                metrics.usage_batch_size.observe(len(records))
                metrics.usage_commit.observe(time.perf_counter() - started)
                stats = self.pool.get_stats()
                metrics.db_pool_in_use.set(stats["pool_size"] - stats["pool_available"])
            return costs
        except psycopg.Error as exc:
            # Only a refused row (integrity or data error, classes 23 and 22) is worth isolating.
            if len(records) == 1 or exc.sqlstate is None or exc.sqlstate[:2] not in ("22", "23"):
                return [_mapped(exc) for _ in records]
        outcomes: list[float | Exception | None] = []
        for record in records:
            try:
                outcomes.extend(await self._insert_rows([record]))
            except psycopg.Error as exc:
                outcomes.append(_mapped(exc))
        return outcomes

    async def _insert_rows(self, records: Sequence[UsageRecord]) -> list[float | None]:
        ids = [uuid.uuid4() for _ in records]
        values = [
            value
            for id_, record in zip(ids, records, strict=True)
            for value in (id_, *(getattr(record, column) for column in _USAGE_COLUMNS))
        ]
        query = _INSERT_USAGE + ", ".join([_USAGE_ROW] * len(records)) + " returning id, estimated_cost"
        rows = await self._run_unmapped("service_role", _SERVICE_CLAIMS, query, values)
        costs: dict[uuid.UUID, Decimal | None] = {id_: cost for id_, cost in rows}
        return [None if (cost := costs[id_]) is None else float(cost) for id_ in ids]

    async def store_key(self, caller: Caller, organization_id: uuid.UUID, provider: str, api_key: str) -> None:
        # The key is bound server-side (extended protocol), never spliced into the query text,
        # so a failing call cannot put it in the server log; that costs BEGIN + 2 + COMMIT round
        # trips, fine for an admin action.
        try:
            async with self.pool.connection() as conn, conn.transaction():
                await AsyncClientCursor(conn).execute(_PRELUDE[caller.role], (_claims(caller), self._statement_timeout))
                await conn.execute("select public.store_org_api_key(%s, %s, %s)", (organization_id, provider, api_key))
        except psycopg.Error as exc:
            raise _mapped(exc, secret=api_key) from None

    async def delete_key(self, caller: Caller, organization_id: uuid.UUID, provider: str) -> bool:
        rows = await self._call(caller, "select public.delete_org_api_key(%s, %s)", (organization_id, provider))
        return bool(rows[0][0])

    async def list_keys(self, caller: Caller, organization_id: uuid.UUID) -> list[KeyInfo]:
        rows = await self._call(
            caller, "select provider, key_hint, updated_at from public.list_org_api_keys(%s)", (organization_id,)
        )
        return [KeyInfo(provider, key_hint, updated_at) for provider, key_hint, updated_at in rows]

    async def _call(self, caller: Caller, query: str, params: Sequence[object]) -> list[tuple[Any, ...]]:
        return await self._run(caller.role, _claims(caller), query, params)

    async def _run(self, role: str, claims: str, query: str, params: Sequence[object]) -> list[tuple[Any, ...]]:
        """One round trip, one transaction: prelude + `query`; the rows of `query`."""
        try:
            return await self._run_unmapped(role, claims, query, params)
        except psycopg.Error as exc:
            raise _mapped(exc) from exc

    async def _run_unmapped(
        self, role: str, claims: str, query: str, params: Sequence[object]
    ) -> list[tuple[Any, ...]]:
        async with self.pool.connection() as conn, AsyncClientCursor(conn) as cur:
            await cur.execute(_PRELUDE[role] + query, (claims, self._statement_timeout, *params))
            while cur.nextset():
                pass
            return await cur.fetchall()


def _config_query(caller: Caller, model: str | None) -> str:
    if model is not None:
        if caller.role == "service_role":
            return "public.get_llm_config_for_model_for_org(%s, %s)"
        return "public.get_llm_config_for_model(%s)"
    if caller.role == "service_role":
        return "public.get_effective_llm_config_for_org(%s, %s)"
    return "public.get_effective_llm_config(%s)"


def _config_params(
    caller: Caller, organization_id: uuid.UUID, processor_id: uuid.UUID | None, model: str | None
) -> tuple[uuid.UUID | str | None, ...]:
    choice = model if model is not None else processor_id
    return (organization_id, choice) if caller.role == "service_role" else (choice,)


def _text(value: uuid.UUID | None) -> str | None:
    return None if value is None else str(value)


def _claims(caller: Caller) -> str:
    # PostgREST's claims are the JWT payload, whose `role` chose the role; keep them in step.
    return json.dumps({**caller.claims, "role": caller.role})


def _mapped(exc: psycopg.Error, *, secret: str | None = None) -> GatewayError:
    # No SQLSTATE: the connection failed or broke (PoolTimeout included).
    if exc.sqlstate is None and isinstance(exc, psycopg.OperationalError):
        return unavailable()
    return database_error(exc.sqlstate, exc.diag.message_primary, exc.diag.message_hint, secret=secret)
