-- Each provider call of a request has its own usage row: a retried request writes one row per
-- attempt, and these columns tie them together.
--
-- Objects: llm_usage_logs.request_id (shared by the attempts of one request: the gateway's
-- X-Request-Id) and llm_usage_logs.attempt (1, 2, ...).
-- Grants: none change (the service role inserts every column; members read them).

alter table public.llm_usage_logs
add column request_id uuid,
add column attempt integer check (attempt >= 1);

comment on column public.llm_usage_logs.request_id is 'The request this call was an attempt of (X-Request-Id); null for rows written outside the gateway.';
comment on column public.llm_usage_logs.attempt is 'Which attempt of its request this call was: 1, 2, ...';

create index llm_usage_logs_request_id_idx on public.llm_usage_logs (request_id);
