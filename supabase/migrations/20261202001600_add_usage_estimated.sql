-- A streamed call whose client went away before the provider reported its usage is still billed:
-- its token counts are then the gateway's estimate from the text sent and received, and this
-- column says so.
--
-- Objects: llm_usage_logs.usage_estimated.
-- Grants: none change (the service role inserts every column; members read them).

alter table public.llm_usage_logs
add column usage_estimated boolean not null default false;

comment on column public.llm_usage_logs.usage_estimated is
'The token counts are the gateway''s estimate (a stream ended before the provider reported usage), not the provider''s.';
