-- The usage dashboard's read: calls, tokens and cost per hour, kept as usage rows are written,
-- so a 30-day summary reads about 720 hourly rows per bucket instead of every usage row.
--
-- Objects: private.required_org_id() (the caller's organization, or 42501),
-- private.llm_usage_hourly (per organization and UTC hour, one row per model, per processor and
-- per user: each grouping reads only its own rows, however many processors, users and models
-- combine; the few models of an hour also give its total; kept by private.account_llm_usage(),
-- a later migration),
-- private.llm_usage_summary() and the public get_llm_usage_summary().
-- The rollup lives in private: only the summary functions read it, each for one organization.
-- Grants: get_llm_usage_summary to authenticated (their organization); nothing to anon.

create table private.llm_usage_hourly (
  organization_id uuid not null references public.organizations (id) on delete cascade,
  hour timestamptz not null,
  dimension text not null check (dimension in ('model', 'processor', 'user')),
  -- provider/model_name, or the processor's or user's id (null: none).
  key text,
  calls bigint not null,
  failed_calls bigint not null,
  input_tokens bigint not null,
  output_tokens bigint not null,
  cache_read_tokens bigint not null,
  cache_write_tokens bigint not null,
  cost numeric not null,
  constraint llm_usage_hourly_one_row_per_bucket
  unique nulls not distinct (organization_id, dimension, hour, key)
);

comment on table private.llm_usage_hourly is
'llm_usage_logs summed per organization, UTC hour and one of: model, processor, user; cost sums the known costs.';

-- Invoker: current_org_id() for functions that serve the caller's own organization, or 42501.
create function private.required_org_id()
returns uuid
language plpgsql
stable
set search_path = ''  -- empty: the caller's search_path cannot redirect its schema-qualified names
as $$
declare
  v_organization_id uuid := private.current_org_id();
begin
  if v_organization_id is null then
    raise exception using
      errcode = '42501',
      message = 'the caller belongs to no organization',
      hint = 'The token needs app_metadata.organization_id of an organization the user is a member of.';
  end if;
  return v_organization_id;
end
$$;

-- Definer: reads the private rollup and every usage row of the organization (past RLS), so it
-- checks the caller itself: the service role, or a member of exactly that organization.
-- Whole hours come from the rollup, the partial hours at either end from the usage rows.
create function private.llm_usage_summary(
  p_organization_id uuid, p_from timestamptz, p_to timestamptz, p_group_by text
)
returns table (
  bucket text, calls bigint, failed_calls bigint, input_tokens bigint, output_tokens bigint,
  cache_read_tokens bigint, cache_write_tokens bigint, cost numeric
)
language plpgsql
stable
security definer
set search_path = ''  -- empty: nothing on the caller's search_path can run with the owner's rights
as $$
declare
  v_first_hour timestamptz := date_trunc('hour', p_from, 'UTC');
  v_last_hour timestamptz := date_trunc('hour', p_to, 'UTC');
begin
  if not (coalesce(auth.role() = 'service_role', false) or p_organization_id = private.current_org_id()) then
    raise exception using errcode = '42501', message = 'only members of the organization may read its usage';
  end if;
  if p_from is null or p_to is null or p_from >= p_to then
    raise exception using errcode = '22023', message = 'p_from: must be before p_to';
  end if;
  if p_group_by is null or p_group_by not in ('day', 'model', 'processor', 'user') then
    raise exception using
      errcode = '22023',
      message = format('p_group_by: unknown grouping %L', p_group_by),
      hint = 'Expected one of: day, model, processor, user.';
  end if;
  if v_first_hour < p_from then
    v_first_hour := v_first_hour + interval '1 hour';
  end if;
  if v_first_hour > v_last_hour then  -- the range lies inside one hour
    v_first_hour := p_to;
    v_last_hour := p_to;
  end if;

  return query
  with usage as (
    select h.hour as at, h.key, h.calls, h.failed_calls, h.input_tokens, h.output_tokens, h.cache_read_tokens,
           h.cache_write_tokens, h.cost
    from private.llm_usage_hourly as h
    where h.organization_id = p_organization_id
      and h.dimension = case p_group_by when 'day' then 'model' else p_group_by end
      and h.hour >= v_first_hour and h.hour < v_last_hour
    union all
    select u.created_at,
           case p_group_by
             when 'processor' then u.processor_id::text
             when 'user' then u.user_id::text
             else u.provider || '/' || u.model_name
           end,
           1, (u.error_message is not null)::int, coalesce(u.input_tokens, 0), coalesce(u.output_tokens, 0),
           u.cache_read_tokens, u.cache_write_tokens, coalesce(u.estimated_cost, 0)
    from public.llm_usage_logs as u
    where u.organization_id = p_organization_id
      and ((u.created_at >= p_from and u.created_at < v_first_hour)
           or (u.created_at >= v_last_hour and u.created_at < p_to))
  )
  select
    case when p_group_by = 'day' then to_char(usage.at at time zone 'UTC', 'YYYY-MM-DD') else usage.key end,
    sum(usage.calls)::bigint, sum(usage.failed_calls)::bigint, sum(usage.input_tokens)::bigint,
    sum(usage.output_tokens)::bigint, sum(usage.cache_read_tokens)::bigint,
    sum(usage.cache_write_tokens)::bigint, sum(usage.cost)
  from usage
  group by 1
  order by 1;
end
$$;

-- Invoker: the caller's own organization; the definer above checks membership again.
create function public.get_llm_usage_summary(p_from timestamptz, p_to timestamptz, p_group_by text default 'day')
returns table (
  bucket text, calls bigint, failed_calls bigint, input_tokens bigint, output_tokens bigint,
  cache_read_tokens bigint, cache_write_tokens bigint, cost numeric
)
language plpgsql
stable
set search_path = ''  -- empty: the caller's search_path cannot redirect its schema-qualified names
as $$
begin
  return query select * from private.llm_usage_summary(private.required_org_id(), p_from, p_to, p_group_by);
end
$$;

comment on function public.get_llm_usage_summary(timestamptz, timestamptz, text) is
'The caller''s organization''s usage in [p_from, p_to) by day (UTC, YYYY-MM-DD), model (provider/model), processor or user.';

-- Signed-in callers run it through the public functions of their own organization.
revoke execute on function private.required_org_id() from public;
grant execute on function private.required_org_id() to authenticated;
-- The rollup is private; no API role reads or writes it directly.
revoke all on table private.llm_usage_hourly from public, anon, authenticated, service_role;
-- The public wrapper runs it as the signed-in caller; the service role may read any organization.
revoke execute on function private.llm_usage_summary(uuid, timestamptz, timestamptz, text) from public;
grant execute on function private.llm_usage_summary(uuid, timestamptz, timestamptz, text) to authenticated, service_role;
-- Older projects auto-grant new public functions; signed-in members read their organization's.
revoke execute on function public.get_llm_usage_summary(timestamptz, timestamptz, text)
from public, anon, authenticated, service_role;
grant execute on function public.get_llm_usage_summary(timestamptz, timestamptz, text) to authenticated;
