-- Usage and cost of every provider call: billing records.
--
-- Objects: public.llm_usage_logs, private.set_usage_estimated_cost() (cost from catalog prices).
-- Rows outlive what they point at (on delete set null) and are append-only for every API role.
-- Grants: members read their organization's rows (RLS); the service role (the gateway) inserts
-- and reads; nobody through the API updates or deletes; anon gets nothing.

create table public.llm_usage_logs (
  id uuid primary key default gen_random_uuid(),
  organization_id uuid references public.organizations (id) on delete set null,
  processor_id uuid references public.processors (id) on delete set null,
  run_id uuid references public.runs (id) on delete set null,
  user_id uuid references auth.users (id) on delete set null,
  operation_id text check (length(operation_id) <= 200),
  provider text not null check (provider = any(private.llm_providers())),
  model_name text not null check (btrim(model_name) <> ''),
  input_tokens integer check (input_tokens >= 0),
  output_tokens integer check (output_tokens >= 0),
  cache_read_tokens integer not null default 0 check (cache_read_tokens >= 0),
  cache_write_tokens integer not null default 0 check (cache_write_tokens >= 0),
  estimated_cost numeric(10, 6) check (estimated_cost >= 0),
  response_time_ms integer check (response_time_ms >= 0),
  error_message text,
  created_at timestamptz not null default now(),
  constraint llm_usage_logs_cache_within_input
  check (cache_read_tokens + cache_write_tokens <= coalesce(input_tokens, 0))
);

comment on table public.llm_usage_logs is 'One row per provider call, success or failure. Append-only billing record.';
comment on column public.llm_usage_logs.input_tokens is 'All input tokens, cached ones included.';
comment on column public.llm_usage_logs.cache_read_tokens is 'Part of input_tokens read from the provider cache.';
comment on column public.llm_usage_logs.cache_write_tokens is 'Part of input_tokens written to the provider cache.';
comment on column public.llm_usage_logs.output_tokens is 'All output tokens, reasoning/thinking included.';
comment on column public.llm_usage_logs.estimated_cost is
'USD at catalog list prices, set at insert when the writer leaves it null; null when the model has no price.';

create index llm_usage_logs_organization_id_created_at_idx on public.llm_usage_logs (organization_id, created_at desc);
create index llm_usage_logs_processor_id_idx on public.llm_usage_logs (processor_id);
create index llm_usage_logs_run_id_idx on public.llm_usage_logs (run_id);
create index llm_usage_logs_user_id_idx on public.llm_usage_logs (user_id);

-- In the database, so every writer prices calls the same way from the catalog.
create function private.set_usage_estimated_cost()
returns trigger
language plpgsql
set search_path = ''  -- empty: the caller's search_path cannot redirect its schema-qualified names
as $$
declare
  v_price public.llm_global_settings;
begin
  if new.estimated_cost is not null or (new.input_tokens is null and new.output_tokens is null) then
    return new;
  end if;
  select g.* into v_price
  from public.llm_global_settings as g
  where g.provider = new.provider and g.model_name = new.model_name;
  if v_price.cost_per_million_input_tokens is null or v_price.cost_per_million_output_tokens is null then
    return new;
  end if;
  new.estimated_cost := round((
    (coalesce(new.input_tokens, 0) - new.cache_read_tokens - new.cache_write_tokens)
    * v_price.cost_per_million_input_tokens
    + new.cache_read_tokens
    * coalesce(v_price.cost_per_million_cache_read_tokens, v_price.cost_per_million_input_tokens)
    + new.cache_write_tokens
    * coalesce(v_price.cost_per_million_cache_write_tokens, v_price.cost_per_million_input_tokens)
    + coalesce(new.output_tokens, 0) * v_price.cost_per_million_output_tokens
  ) / 1000000, 6);
  return new;
end
$$;

create trigger llm_usage_logs_set_estimated_cost
before insert on public.llm_usage_logs
for each row execute function private.set_usage_estimated_cost();

-- RLS on: the API roles see and change only the rows a policy below allows.
alter table public.llm_usage_logs enable row level security;

-- Members see their organization's usage and cost.
create policy "Members can read their organization's usage"
on public.llm_usage_logs for select to authenticated
using (organization_id = (select private.current_org_id()));

-- Undo any default privileges, then grant exactly. Billing rows are append-only for every API
-- role: signed-in users only read; the service role (the gateway) inserts and reads.
revoke all on table public.llm_usage_logs from public, anon, authenticated, service_role;
grant select on table public.llm_usage_logs to authenticated;
grant select, insert on table public.llm_usage_logs to service_role;

-- Trigger function: the trigger invokes it without EXECUTE privilege, so nobody needs a grant.
revoke execute on function private.set_usage_estimated_cost() from public;
