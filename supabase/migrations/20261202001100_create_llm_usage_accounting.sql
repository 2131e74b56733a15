-- One statement trigger accounts each batch of usage rows, in the transaction that writes it:
-- the hourly rollup (the dashboard), the spend of every budget the rows fall under, and the
-- settling of the reservations the rows carry. One trigger, not three: each firing of a
-- statement trigger costs the gateway's usage insert about 0.05 ms.
--
-- Objects: private.account_llm_usage() and its trigger on llm_usage_logs.
-- Grants: none; the trigger function needs no EXECUTE grant.

-- Definer: writes the private rollup and budget counters, which the inserting role (the
-- gateway's service role) cannot. Every step takes its locks in one order for every writer.
create function private.account_llm_usage()
returns trigger
language plpgsql
security definer
set search_path = ''  -- empty: nothing on the caller's search_path can run with the owner's rights
as $$
begin
  insert into private.llm_usage_hourly as h (
    organization_id, hour, dimension, key, calls, failed_calls, input_tokens, output_tokens, cache_read_tokens,
    cache_write_tokens, cost
  )
  select
    u.organization_id, date_trunc('hour', u.created_at, 'UTC'), d.dimension, d.key, count(*),
    count(*) filter (where u.error_message is not null), coalesce(sum(u.input_tokens), 0),
    coalesce(sum(u.output_tokens), 0), sum(u.cache_read_tokens), sum(u.cache_write_tokens),
    coalesce(sum(u.estimated_cost), 0)
  from inserted_usage as u
  cross join lateral (
    values ('model', u.provider || '/' || u.model_name), ('processor', u.processor_id::text),
           ('user', u.user_id::text)
  ) as d (dimension, key)
  where u.organization_id is not null
  group by 1, 2, 3, 4
  order by 1, 3, 2, 4
  on conflict (organization_id, dimension, hour, key) do update
    set calls = h.calls + excluded.calls,
        failed_calls = h.failed_calls + excluded.failed_calls,
        input_tokens = h.input_tokens + excluded.input_tokens,
        output_tokens = h.output_tokens + excluded.output_tokens,
        cache_read_tokens = h.cache_read_tokens + excluded.cache_read_tokens,
        cache_write_tokens = h.cache_write_tokens + excluded.cache_write_tokens,
        cost = h.cost + excluded.cost;

  -- Spend, added to every budget the rows fall under (nothing for organizations without one).
  insert into private.llm_budget_periods as p (budget_id, period_start, spent_usd)
  select b.id, private.llm_budget_period_start(b.period, u.created_at), sum(coalesce(u.estimated_cost, 0))
  from inserted_usage as u
  join public.llm_budgets as b
    on b.organization_id = u.organization_id and (b.processor_id is null or b.processor_id = u.processor_id)
  group by 1, 2
  order by 1, 2
  on conflict (budget_id, period_start) do update set spent_usd = p.spent_usd + excluded.spent_usd;

  -- Reservations replaced by the actual cost above; one released at expiry meanwhile is simply
  -- gone (its amount left the counter then).
  with settled as (
    delete from private.llm_budget_reservations as r
    using inserted_usage as u
    where u.reservation_id is not null and r.id = u.reservation_id
    returning r.budget_id, r.period_start, r.amount_usd
  ),
  per_period as (
    select s.budget_id, s.period_start, sum(s.amount_usd) as amount
    from settled as s group by 1, 2
  )
  update private.llm_budget_periods as p
  set reserved_usd = p.reserved_usd - per_period.amount
  from per_period
  where p.budget_id = per_period.budget_id and p.period_start = per_period.period_start;
  return null;
end
$$;

create trigger llm_usage_logs_account_usage
after insert on public.llm_usage_logs
referencing new table as inserted_usage
for each statement execute function private.account_llm_usage();

-- Trigger function: the trigger invokes it without EXECUTE privilege, so nobody needs a grant.
revoke execute on function private.account_llm_usage() from public;
