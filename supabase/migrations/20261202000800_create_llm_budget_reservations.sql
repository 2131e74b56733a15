-- Reservations: a call under a hard budget first reserves its worst-case cost against every hard
-- budget it falls under, and is refused (PT402, HTTP 402) when one cannot hold it; the usage row
-- replaces the reservation with the actual cost in the transaction that writes it. Concurrent
-- calls therefore cannot overshoot a hard budget. A reservation whose gateway died is released
-- lazily once it expires, by the next reservation against that budget: no scheduler needed.
--
-- Objects: private.llm_budget_reservations, llm_usage_logs.reservation_id,
-- private.reserve_llm_budget() and public.reserve_llm_budget() (service role: the gateway),
-- private.llm_budget_status() and
-- public.get_llm_budget_status() (members) / get_llm_budget_status_for_org() (service role).
-- Grants: reserve and the _for_org status to service_role; get_llm_budget_status to
-- authenticated; anon nothing.

create table private.llm_budget_reservations (
  id uuid not null,
  budget_id uuid not null references public.llm_budgets (id) on delete cascade,
  period_start timestamptz not null,
  amount_usd numeric not null check (amount_usd >= 0),
  expires_at timestamptz not null,
  primary key (id, budget_id)
);

comment on table private.llm_budget_reservations is
'Worst-case costs of calls in flight under hard budgets; replaced by the actual cost when the usage row is written.';

create index llm_budget_reservations_budget_id_period_start_expires_at_idx
on private.llm_budget_reservations (budget_id, period_start, expires_at);

alter table public.llm_usage_logs add column reservation_id uuid;

comment on column public.llm_usage_logs.reservation_id is
'The budget reservation this call settles (calls under a hard budget); null otherwise.';

-- Definer: reserves in the private counters for the gateway (service role), checked inside.
-- Prices the call at the highest input rate that could apply (cache writes can cost more than
-- plain input) and the output price; a model without a catalog price cannot be bounded, so it
-- is refused under a hard budget. Budgets are locked in id order: concurrent reservations queue.
create function private.reserve_llm_budget(
  p_organization_id uuid,
  p_processor_id uuid,
  p_provider text,
  p_model text,
  p_max_input_tokens integer,
  p_max_output_tokens integer,
  p_seconds integer
)
returns uuid
language plpgsql
volatile
security definer
set search_path = ''  -- empty: nothing on the caller's search_path can run with the owner's rights
as $$
declare
  v_id uuid := gen_random_uuid();
  v_amount numeric;
  v_price public.llm_global_settings;
  v_budget public.llm_budgets;
  v_start timestamptz;
  v_period private.llm_budget_periods;
  v_released numeric;
  v_remaining numeric;
begin
  if not coalesce(auth.role() = 'service_role', false) then
    raise exception using errcode = '42501', message = 'only the service role may reserve budget';
  end if;
  if p_max_input_tokens is null or p_max_input_tokens < 0 or p_max_output_tokens is null or p_max_output_tokens < 0 then
    raise exception using errcode = '22023', message = 'p_max_input_tokens, p_max_output_tokens: must be 0 or more';
  end if;
  if p_seconds is null or p_seconds <= 0 then
    raise exception using errcode = '22023', message = 'p_seconds: must be positive';
  end if;

  for v_budget in
    select b.* from public.llm_budgets as b
    where b.organization_id = p_organization_id and b.hard
      and (b.processor_id is null or b.processor_id = p_processor_id)
    order by b.id
  loop
    if v_amount is null then
      select g.* into v_price from public.llm_global_settings as g
      where g.provider = p_provider and g.model_name = p_model;
      if v_price.cost_per_million_input_tokens is null or v_price.cost_per_million_output_tokens is null then
        raise exception using
          errcode = 'PT402',
          message = format('%s/%s has no catalog price, so its cost cannot be bounded under a hard budget',
                           p_provider, p_model),
          hint = 'Price the model in llm_global_settings, or use a priced model.';
      end if;
      v_amount := (
        p_max_input_tokens * greatest(v_price.cost_per_million_input_tokens,
                                      coalesce(v_price.cost_per_million_cache_write_tokens, 0),
                                      coalesce(v_price.cost_per_million_cache_read_tokens, 0))
        + p_max_output_tokens * v_price.cost_per_million_output_tokens
      ) / 1000000;
    end if;

    v_start := private.llm_budget_period_start(v_budget.period, now());
    insert into private.llm_budget_periods (budget_id, period_start) values (v_budget.id, v_start)
    on conflict (budget_id, period_start) do nothing;
    select p.* into v_period from private.llm_budget_periods as p
    where p.budget_id = v_budget.id and p.period_start = v_start
    for update;

    with released as (
      delete from private.llm_budget_reservations as r
      where r.budget_id = v_budget.id and r.period_start = v_start and r.expires_at <= now()
      returning r.amount_usd
    )
    select coalesce(sum(released.amount_usd), 0) into v_released from released;

    v_remaining := v_budget.limit_usd - v_period.spent_usd - (v_period.reserved_usd - v_released);
    if v_amount > v_remaining then
      raise exception using
        errcode = 'PT402',
        message = format(
          'the %s %s budget %s of %s USD has %s USD left; this call may cost up to %s USD',
          case when v_budget.processor_id is null then 'organization''s' else 'processor''s' end,
          case v_budget.period when 'day' then 'daily' else 'monthly' end,
          v_budget.id, trim_scale(v_budget.limit_usd), trim_scale(greatest(v_remaining, 0)), trim_scale(v_amount)
        ),
        hint = 'An owner or admin can raise the budget; or wait for the next period.';
    end if;

    insert into private.llm_budget_reservations (id, budget_id, period_start, amount_usd, expires_at)
    values (v_id, v_budget.id, v_start, v_amount, now() + make_interval(secs => p_seconds));
    update private.llm_budget_periods as p
    set reserved_usd = p.reserved_usd - v_released + v_amount
    where p.budget_id = v_budget.id and p.period_start = v_start;
  end loop;

  return case when v_amount is null then null else v_id end;
end
$$;

-- Invoker: only the service role may call it; the definer checks again.
create function public.reserve_llm_budget(
  p_organization_id uuid,
  p_processor_id uuid,
  p_provider text,
  p_model text,
  p_max_input_tokens integer,
  p_max_output_tokens integer,
  p_seconds integer default 600
)
returns uuid
language sql
volatile
set search_path = ''  -- empty: the caller's search_path cannot redirect its schema-qualified names
as $$
  select private.reserve_llm_budget(
    p_organization_id, p_processor_id, p_provider, p_model, p_max_input_tokens, p_max_output_tokens, p_seconds
  )
$$;

comment on function public.reserve_llm_budget(uuid, uuid, text, text, integer, integer, integer) is
'Reserves a call''s worst-case cost against the hard budgets it falls under (PT402 if one cannot hold it); null when none applies. Service role only.';

-- Definer: reads the private counters; the service role, or a member of exactly that organization.
-- Reservations past their expiry no longer count (they are released at the next reservation).
create function private.llm_budget_status(p_organization_id uuid)
returns table (
  budget_id uuid, processor_id uuid, period text, period_start timestamptz, limit_usd numeric,
  spent_usd numeric, reserved_usd numeric, remaining_usd numeric, hard boolean
)
language plpgsql
stable
security definer
set search_path = ''  -- empty: nothing on the caller's search_path can run with the owner's rights
as $$
begin
  if not (coalesce(auth.role() = 'service_role', false) or p_organization_id = private.current_org_id()) then
    raise exception using errcode = '42501', message = 'only members of the organization may read its budgets';
  end if;
  return query
  select b.id, b.processor_id, b.period, s.period_start, b.limit_usd::numeric, s.spent, s.reserved,
         greatest(b.limit_usd - s.spent - s.reserved, 0), b.hard
  from public.llm_budgets as b
  cross join lateral (
    select private.llm_budget_period_start(b.period, now()) as period_start
  ) as now_period
  left join private.llm_budget_periods as p on p.budget_id = b.id and p.period_start = now_period.period_start
  cross join lateral (
    select now_period.period_start, coalesce(p.spent_usd, 0) as spent,
           coalesce((select sum(r.amount_usd) from private.llm_budget_reservations as r
                     where r.budget_id = b.id and r.period_start = now_period.period_start
                       and r.expires_at > now()), 0) as reserved
  ) as s
  where b.organization_id = p_organization_id
  order by b.processor_id nulls first, b.period;
end
$$;

-- Invoker: the caller's own organization; the definer checks membership again.
create function public.get_llm_budget_status()
returns table (
  budget_id uuid, processor_id uuid, period text, period_start timestamptz, limit_usd numeric,
  spent_usd numeric, reserved_usd numeric, remaining_usd numeric, hard boolean
)
language plpgsql
stable
set search_path = ''  -- empty: the caller's search_path cannot redirect its schema-qualified names
as $$
begin
  return query select * from private.llm_budget_status(private.required_org_id());
end
$$;

comment on function public.get_llm_budget_status() is
'Each budget of the caller''s organization in its current period: spent, reserved and remaining USD.';

-- Invoker: only the service role may call it; the definer checks again.
create function public.get_llm_budget_status_for_org(p_organization_id uuid)
returns table (
  budget_id uuid, processor_id uuid, period text, period_start timestamptz, limit_usd numeric,
  spent_usd numeric, reserved_usd numeric, remaining_usd numeric, hard boolean
)
language sql
stable
set search_path = ''  -- empty: the caller's search_path cannot redirect its schema-qualified names
as $$
  select * from private.llm_budget_status(p_organization_id)
$$;

comment on function public.get_llm_budget_status_for_org(uuid) is
'get_llm_budget_status for an explicit organization. Service role only.';

-- The reservations are private; only the definer functions of these migrations touch them.
revoke all on table private.llm_budget_reservations from public, anon, authenticated, service_role;
-- The public wrappers run these as their caller (each checks who that is).
revoke execute on function private.reserve_llm_budget(uuid, uuid, text, text, integer, integer, integer),
  private.llm_budget_status(uuid) from public;
grant execute on function private.reserve_llm_budget(uuid, uuid, text, text, integer, integer, integer) to service_role;
grant execute on function private.llm_budget_status(uuid) to authenticated, service_role;
-- Older projects auto-grant new public functions: revoke, then grant each to exactly its callers.
revoke execute on function public.reserve_llm_budget(uuid, uuid, text, text, integer, integer, integer),
  public.get_llm_budget_status(), public.get_llm_budget_status_for_org(uuid)
from public, anon, authenticated, service_role;
-- The gateway reserves for any organization it serves.
grant execute on function public.reserve_llm_budget(uuid, uuid, text, text, integer, integer, integer) to service_role;
-- Signed-in members read their organization's budget status.
grant execute on function public.get_llm_budget_status() to authenticated;
-- The service role reads any organization's (background work, alerts).
grant execute on function public.get_llm_budget_status_for_org(uuid) to service_role;

-- Definer: reserve_llm_budget for many calls in one round trip, as a gateway batches the
-- reservations of its concurrent calls: each call is reserved or refused on its own (a refusal
-- undoes only that call's reservations), in order, so the batch takes each counter's lock once.
create function private.reserve_llm_budgets(p_calls jsonb)
returns table (call_index integer, reservation_id uuid, refusal text)
language plpgsql
volatile
security definer
set search_path = ''  -- empty: nothing on the caller's search_path can run with the owner's rights
as $$
declare
  v_call record;
begin
  if not coalesce(auth.role() = 'service_role', false) then
    raise exception using errcode = '42501', message = 'only the service role may reserve budget';
  end if;
  for v_call in
    select c.ordinality::integer as n, c.value as call
    from jsonb_array_elements(coalesce(p_calls, '[]')) with ordinality as c
  loop
    call_index := v_call.n;
    reservation_id := null;
    refusal := null;
    begin
      reservation_id := private.reserve_llm_budget(
        (v_call.call ->> 'organization_id')::uuid, (v_call.call ->> 'processor_id')::uuid,
        v_call.call ->> 'provider', v_call.call ->> 'model', (v_call.call ->> 'max_input_tokens')::integer,
        (v_call.call ->> 'max_output_tokens')::integer, (v_call.call ->> 'seconds')::integer
      );
    exception when sqlstate 'PT402' then
      refusal := sqlerrm;
    end;
    return next;
  end loop;
end
$$;

-- Invoker: only the service role may call it; the definer checks again.
create function public.reserve_llm_budgets(p_calls jsonb)
returns table (call_index integer, reservation_id uuid, refusal text)
language sql
volatile
set search_path = ''  -- empty: the caller's search_path cannot redirect its schema-qualified names
as $$
  select * from private.reserve_llm_budgets(p_calls)
$$;

comment on function public.reserve_llm_budgets(jsonb) is
'reserve_llm_budget for a batch: [{organization_id, processor_id, provider, model, max_input_tokens, max_output_tokens, seconds}] → one row per call (1-based), a reservation id or the refusal. Service role only.';

-- The public wrapper runs it as the service role.
revoke execute on function private.reserve_llm_budgets(jsonb) from public;
grant execute on function private.reserve_llm_budgets(jsonb) to service_role;
-- Older projects auto-grant new public functions; the gateway (service role) alone reserves.
revoke execute on function public.reserve_llm_budgets(jsonb) from public, anon, authenticated, service_role;
grant execute on function public.reserve_llm_budgets(jsonb) to service_role;
