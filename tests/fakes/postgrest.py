"""A fake Supabase REST API (PostgREST) over a real test database.

A real HTTP server on 127.0.0.1 that speaks the part of PostgREST's protocol the gateway uses,
and runs every request in one transaction in the database as the token's role with
`request.jwt.claims` set to its payload, as PostgREST does after logging in as `authenticator`:

- `POST /rest/v1/rpc/<fn>` with a JSON object calls `public.<fn>(name := value, ...)` by
  parameter names (omitted ones take their defaults); a scalar or jsonb result comes back as
  bare JSON, `setof`/`table` as an array, `void` as 204.
- `POST /rest/v1/<table>` inserts one object or an array (`Prefer: return=representation`
  answers the rows, `?select=a,b` narrows them); `GET /rest/v1/<table>?select=&limit=&col=eq.v`
  reads.
- Supabase's API gateway in front: an `apikey` header signed with the project secret is required.
- Tokens are HS256 JWTs checked against `jwt_secret`: none → `anon`; invalid → 401 PGRST301;
  expired → 401 PGRST303.
- Errors are `{code, message, details, hint}` with exactly the status table of PostgREST's
  docs/references/errors.rst (every row, see `status_for`), plus `PTxyz` → HTTP xyz (docs: "Raise
  errors with HTTP Status Codes"; a `PT` code without a status number → 500, as PostgREST's own
  code does); connection errors → 503 PGRST001.

    with FakePostgrest(db.dsn(), JWT_SECRET) as fake:   # or: async with ...
        ...  # SUPABASE_URL = fake.url
        fake.requests[0].headers["authorization"]
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass
from typing import Any, LiteralString

import jwt
import psycopg
from aiohttp import web
from psycopg import sql
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from tests.fakes.background import BackgroundServer

_CLAIMS = web.RequestKey("claims", dict[str, Any])
_BODY = web.RequestKey("body", object)
_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*")
_STATUS_BY_CODE = {
    "23503": 409,
    "23505": 409,
    "25006": 405,
    "42883": 404,
    "42P01": 404,
    "42P17": 500,
    "53400": 500,
    "P0001": 400,
}
_STATUS_BY_CLASS = {
    "08": 503,
    "09": 500,
    "0L": 403,
    "0P": 403,
    "25": 500,
    "28": 403,
    "2D": 500,
    "38": 500,
    "39": 500,
    "3B": 500,
    "40": 500,
    "53": 503,
    "54": 500,
    "55": 500,
    "57": 500,
    "58": 500,
    "F0": 500,
    "HV": 500,
    "P0": 500,
    "XX": 500,
}


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: str
    headers: dict[str, str]  # lowercased names
    body: Any


@dataclass(frozen=True)
class _Function:
    params: dict[str, str]  # input parameter name → SQL type
    required: frozenset[str]
    returns_set: bool
    returns_void: bool


class _Reply(Exception):
    """Ends a request with a PostgREST-style error response."""

    def __init__(self, status: int, code: str, message: str, details: str | None = None, hint: str | None = None):
        super().__init__(message)
        self.status = status
        # Supabase's API gateway answers without a code; PostgREST always has one.
        self.body = (
            {"code": code, "message": message, "details": details, "hint": hint}
            if code
            else {"message": message, "hint": hint}
        )


def status_for(sqlstate: str, role: str) -> int:
    """PostgREST's HTTP status for a PostgreSQL error."""
    if sqlstate == "42501":
        return 401 if role == "anon" else 403
    if sqlstate.startswith("PT"):
        return int(sqlstate[2:]) if sqlstate[2:].isdigit() else 500
    return _STATUS_BY_CODE.get(sqlstate) or _STATUS_BY_CLASS.get(sqlstate[:2], 400)


def _db_reply(exc: psycopg.Error, role: str) -> _Reply:
    if exc.sqlstate is None:  # the connection itself failed
        return _Reply(503, "PGRST001", "Database client error. Retrying the connection.")
    diag = exc.diag
    return _Reply(
        status_for(exc.sqlstate, role), exc.sqlstate, diag.message_primary or "", diag.message_detail, diag.message_hint
    )


class _Server:
    """Request handling; lives in the server thread's event loop."""

    def __init__(self, dsn: str, jwt_secret: str, record: list[RecordedRequest], lock: threading.Lock) -> None:
        self._dsn, self._secret = dsn, jwt_secret
        self._record, self._lock = record, lock
        self._functions: dict[str, list[_Function]] = {}
        self._pool: AsyncConnectionPool[psycopg.AsyncConnection[TupleRow]] | None = None

    async def open(self, _app: web.Application) -> None:
        # Connects as postgres, which (like PostgREST's authenticator) may switch to the API roles.
        self._pool = AsyncConnectionPool(
            self._dsn, min_size=1, max_size=8, timeout=2.0, open=False, kwargs={"autocommit": True}
        )
        await self._pool.open(wait=False)

    async def close(self, _app: web.Application) -> None:
        if self._pool is not None:
            await self._pool.close()

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware])
        app.on_startup.append(self.open)
        app.on_cleanup.append(self.close)
        app.router.add_post("/rest/v1/rpc/{function}", self._rpc)
        app.router.add_post("/rest/v1/{table}", self._insert)
        app.router.add_get("/rest/v1/{table}", self._select)
        return app

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        with self._lock:
            self._record.append(
                RecordedRequest(
                    request.method,
                    request.path,
                    request.query_string,
                    {k.lower(): v for k, v in request.headers.items()},
                    body,
                )
            )
        try:
            if isinstance(body, str):
                raise _Reply(400, "PGRST102", "Empty or invalid json")
            self._check_api_key(request)
            request[_CLAIMS] = self._claims(request)
            request[_BODY] = body
            response: web.StreamResponse = await handler(request)
            return response
        except _Reply as reply:
            headers = {}
            if reply.body.get("code") in ("PGRST301", "PGRST303"):
                headers["WWW-Authenticate"] = f'Bearer error="invalid_token", error_description="{reply}"'
            return web.json_response(reply.body, status=reply.status, headers=headers)

    def _check_api_key(self, request: web.Request) -> None:
        # Supabase's API gateway rejects requests without a project key before PostgREST sees them.
        key = request.headers.get("apikey")
        if not key:
            raise _Reply(
                401, "", "No API key found in request", hint="No `apikey` request header or url param was found."
            )
        try:
            jwt.decode(key, self._secret, algorithms=["HS256"], options={"verify_aud": False})
        except jwt.InvalidTokenError:
            raise _Reply(
                401, "", "Invalid API key", hint="Double check your Supabase `anon` or `service_role` API key."
            ) from None

    def _claims(self, request: web.Request) -> dict[str, Any]:
        header = request.headers.get("Authorization")
        if not header:
            return {"role": "anon"}
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise _Reply(401, "PGRST301", "No suitable key or wrong key type")
        try:
            claims: dict[str, Any] = jwt.decode(
                token, self._secret, algorithms=["HS256"], options={"verify_aud": False}
            )
        except jwt.ExpiredSignatureError:
            raise _Reply(401, "PGRST303", "JWT expired") from None
        except jwt.InvalidTokenError:
            raise _Reply(401, "PGRST301", "JWT could not be decoded or its signature is invalid") from None
        return {**claims, "role": claims.get("role") or "anon"}

    async def _in_transaction(self, request: web.Request, query: sql.Composed, params: tuple[Any, ...]) -> str | None:
        """Run `query` as PostgREST would: one transaction as the token's role; its text result."""
        assert self._pool is not None
        claims = request[_CLAIMS]
        try:
            async with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
                await cur.execute(sql.SQL("set local role {}").format(sql.Identifier(claims["role"])))
                await cur.execute(
                    "select set_config('request.jwt.claims', %s, true), set_config('request.method', %s, true), "
                    "set_config('request.path', %s, true), set_config('request.headers', %s, true)",
                    (
                        json.dumps(claims),
                        request.method,
                        request.path,
                        json.dumps({k.lower(): v for k, v in request.headers.items()}),
                    ),
                )
                await cur.execute(query, params)
                row = await cur.fetchone() if cur.description else None
                return None if row is None or row[0] is None else str(row[0])
        except PoolTimeout:
            raise _Reply(503, "PGRST000", "Could not connect with the database") from None
        except psycopg.Error as exc:
            raise _db_reply(exc, claims["role"]) from None

    async def _schema(self, query: LiteralString, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        """Catalog reads as postgres, like PostgREST's schema cache (privileges apply at call time)."""
        assert self._pool is not None
        try:
            async with self._pool.connection() as conn, conn.cursor() as cur:
                await cur.execute(query, params)
                return await cur.fetchall()
        except psycopg.OperationalError:  # PoolTimeout included
            raise _Reply(503, "PGRST002", "Could not query the database for the schema cache. Retrying.") from None

    async def _overloads(self, name: str) -> list[_Function]:
        if name not in self._functions:
            rows = await self._schema(
                """
                select coalesce(p.proargnames, '{}'), coalesce(p.proargmodes::text[], '{}'),
                  array(select format_type(t, null) from unnest(coalesce(p.proallargtypes, p.proargtypes::oid[])) as t),
                  p.pronargs, p.pronargdefaults, p.proretset, p.prorettype = 'void'::regtype
                from pg_proc as p join pg_namespace as n on n.oid = p.pronamespace
                where n.nspname = 'public' and p.proname = %s and p.prokind = 'f'
                """,
                (name,),
            )
            overloads = []
            for names, modes, types, nargs, ndefaults, returns_set, returns_void in rows:
                inputs = [
                    (arg, type_)
                    for i, (arg, type_) in enumerate(zip(names, types, strict=False))
                    if not modes or modes[i] in ("i", "b", "v")
                ]
                params = dict(inputs)
                required = frozenset(arg for arg, _ in inputs[: nargs - ndefaults])
                overloads.append(_Function(params, required, returns_set, returns_void))
            self._functions[name] = overloads
        return self._functions[name]

    async def _rpc(self, request: web.Request) -> web.Response:
        name = request.match_info["function"]
        args = {} if request[_BODY] is None else request[_BODY]
        if not isinstance(args, dict):
            raise _Reply(400, "PGRST102", "Expected a JSON object of named arguments")
        function = next((f for f in await self._overloads(name) if f.required <= args.keys() <= f.params.keys()), None)
        if function is None:
            signature = ", ".join(sorted(args))
            raise _Reply(
                404,
                "PGRST202",
                f"Could not find the function public.{name}({signature}) in the schema cache",
                hint="If a new function was created in the database with this name and parameters, "
                "try reloading the schema cache.",
            )
        # Arguments go through json_to_record, so each is parsed by its parameter's type (22P02...).
        record = sql.SQL(", ").join(
            sql.SQL("{} {}").format(sql.Identifier(arg), sql.SQL(function.params[arg])) for arg in args
        )
        call = sql.SQL("public.{}({})").format(
            sql.Identifier(name),
            sql.SQL(", ").join(sql.SQL("{} := _.{}").format(sql.Identifier(a), sql.Identifier(a)) for a in args),
        )
        source = sql.SQL("json_to_record(%s::json) as _({})").format(record) if args else sql.SQL("(select) as _")
        if function.returns_set:
            query = sql.SQL("select coalesce(jsonb_agg(to_jsonb(r)), '[]')::text from {}, lateral {} as r")
        elif function.returns_void:
            query = sql.SQL("select {1} from {0}")
        else:
            query = sql.SQL("select to_jsonb({1})::text from {0}")
        result = await self._in_transaction(request, query.format(source, call), (json.dumps(args),) if args else ())
        if function.returns_void:
            return web.Response(status=204)
        return web.Response(text=result or "null", content_type="application/json")

    async def _table(self, request: web.Request) -> sql.Identifier:
        table = request.match_info["table"]
        [(exists,)] = await self._schema("select to_regclass(format('public.%%I', %s::text)) is not null", (table,))
        if not exists:
            raise _Reply(404, "PGRST205", f"Could not find the table 'public.{table}' in the schema cache")
        return sql.Identifier(table)

    def _selection(self, request: web.Request, source: str) -> sql.Composable:
        """The `select` query parameter as a jsonb row built from `source` (plain columns only)."""
        columns = request.query.get("select", "*")
        if columns == "*":
            return sql.SQL("to_jsonb({})").format(sql.Identifier(source))
        names = columns.split(",")
        if not all(_IDENTIFIER.fullmatch(n) for n in names):
            raise _Reply(400, "PGRST100", f"the fake PostgREST selects plain columns only: {columns!r}")
        return sql.SQL("jsonb_build_object({})").format(
            sql.SQL(", ").join(
                sql.SQL("{}, {}.{}").format(sql.Literal(n), sql.Identifier(source), sql.Identifier(n)) for n in names
            )
        )

    async def _insert(self, request: web.Request) -> web.Response:
        table = await self._table(request)
        body = request[_BODY]
        given = body if isinstance(body, list) else [body]
        rows: list[dict[str, Any]] = [row for row in given if isinstance(row, dict)]
        if not rows or len(rows) != len(given):
            raise _Reply(400, "PGRST102", "Expected a JSON object or an array of objects")
        names = request.query["columns"].split(",") if "columns" in request.query else list(rows[0])
        if any(row.keys() != set(names) for row in rows) and "columns" not in request.query:
            raise _Reply(400, "PGRST102", "All object keys must match")
        # Only the given columns are inserted, so the others take their defaults.
        columns = sql.SQL(", ").join(map(sql.Identifier, names))
        insert = sql.SQL(
            "insert into public.{t} ({c}) select {c} from jsonb_populate_recordset(null::public.{t}, %s::jsonb)"
        ).format(t=table, c=columns)
        representation = "return=representation" in request.headers.get("Prefer", "")
        if representation:
            query = sql.SQL("with ins as ({} returning *) select coalesce(jsonb_agg({}), '[]')::text from ins").format(
                insert, self._selection(request, "ins")
            )
        else:
            query = insert
        result = await self._in_transaction(request, query, (json.dumps(rows),))
        if representation:
            return web.Response(status=201, text=result, content_type="application/json")
        return web.Response(status=201)

    async def _select(self, request: web.Request) -> web.Response:
        table = await self._table(request)
        filters = {name: value for name, value in request.query.items() if name not in ("select", "limit")}
        if not all(_IDENTIFIER.fullmatch(name) and value.startswith("eq.") for name, value in filters.items()):
            raise _Reply(400, "PGRST100", f"the fake PostgREST filters with column=eq.value only: {filters}")
        limit = request.query.get("limit")
        if limit is not None and not limit.isdigit():
            raise _Reply(400, "PGRST100", f"invalid limit {limit!r}")
        # column=eq.value compares the column's text form, as PostgREST casts the value to its type.
        where = sql.SQL(" and ").join(
            [sql.SQL("{}::text = %s").format(sql.Identifier(name)) for name in filters] or [sql.SQL("true")]
        )
        query = sql.SQL(
            "select coalesce(jsonb_agg({}), '[]')::text from (select * from public.{} where {} limit %s) as r"
        ).format(self._selection(request, "r"), table, where)
        params = (*(value.removeprefix("eq.") for value in filters.values()), None if limit is None else int(limit))
        result = await self._in_transaction(request, query, params)
        return web.Response(text=result, content_type="application/json")


class FakePostgrest(BackgroundServer):
    """The fake REST API on a 127.0.0.1 port, served from a background thread with its own loop.

    `url` is the SUPABASE_URL to give a client; `requests` lists what it received.
    """

    thread_name = "fake-postgrest"

    def __init__(self, dsn: str, jwt_secret: str, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)
        self._dsn, self._secret = dsn, jwt_secret
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self.port}"

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def build_app(self) -> web.Application:
        return _Server(self._dsn, self._secret, self._requests, self._lock).app()
