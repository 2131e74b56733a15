-- Calls to a custom provider are priced from its model's own prices, like catalog models from
-- the catalog: usage rows, budget reservations and the processor page's estimate. Unpriced means
-- NULL cost (and refusal under a hard budget), as for the catalog. A deactivated custom provider
-- still prices its listed models (a call may finish after the change); a model or provider
-- deleted since leaves the cost NULL.
--
-- Objects: private.custom_model_prices (new), private.set_usage_estimated_cost,
-- private.reserve_llm_budget and public.estimate_llm_cost (replaced: the catalog path is
-- unchanged, `custom:<name>` providers read their model's prices).
-- Grants: the replaced functions keep theirs; the new helper runs as their callers.

-- Invoker: members read their organization's custom providers (RLS); the service role and the
-- definer reservation function read every one. plpgsql rather than SQL: its plan is re-checked
-- when the role changes within a transaction.
create function private.custom_model_prices(p_organization_id uuid, p_provider text, p_model text)
returns table (input_price numeric, output_price numeric)
language plpgsql
stable
set search_path = ''  -- empty: the caller's search_path cannot redirect its schema-qualified names
as $$
begin
  return query
  select (m.value ->> 'cost_per_million_input_tokens')::numeric, (m.value ->> 'cost_per_million_output_tokens')::numeric
  from public.llm_custom_providers as c
  cross join lateral jsonb_array_elements(c.models) as m(value)
  where c.organization_id = p_organization_id and 'custom:' || c.name = p_provider and m.value ->> 'model_name' = p_model;
end
$$;

-- Trigger function, as before: every writer prices calls the same way.
create or replace function private.set_usage_estimated_cost()
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
  if new.provider like 'custom:%' then
    select p.input_price, p.output_price into v_price.cost_per_million_input_tokens, v_price.cost_per_million_output_tokens
    from private.custom_model_prices(new.organization_id, new.provider, new.model_name) as p;
  else
    select g.* into v_price
    from public.llm_global_settings as g
    where g.provider = new.provider and g.model_name = new.model_name;
  end if;
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
  ) / 1000000, 12);
  return new;
end
$$;

-- Definer, as before: reserves in the private counters for the gateway (service role), checked
-- inside; only the price lookup changes.
create or replace function private.reserve_llm_budget(
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
      if p_provider like 'custom:%' then
        select p.input_price, p.output_price into v_price.cost_per_million_input_tokens, v_price.cost_per_million_output_tokens
        from private.custom_model_prices(p_organization_id, p_provider, p_model) as p;
      else
        select g.* into v_price from public.llm_global_settings as g
        where g.provider = p_provider and g.model_name = p_model;
      end if;
      if v_price.cost_per_million_input_tokens is null or v_price.cost_per_million_output_tokens is null then
        raise exception using
          errcode = 'PT402',
          message = format('%s/%s has no price, so its cost cannot be bounded under a hard budget',
                           p_provider, p_model),
          hint = 'Price the model (in llm_global_settings, or in its custom provider''s models), or use a priced model.';
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

-- Invoker, as before: resolves as the caller (membership and RLS apply); reads the catalog or
-- the organization's custom provider, which signed-in members may read.
create or replace function public.estimate_llm_cost(p_processor_id uuid, p_input_tokens integer, p_output_tokens integer default null)
returns jsonb
language plpgsql
stable
set search_path = ''  -- empty: the caller's search_path cannot redirect its schema-qualified names
as $$
declare
  v_config jsonb;
  v_price public.llm_global_settings;
  v_output_tokens integer := p_output_tokens;
  v_input_cost numeric;
  v_output_cost numeric;
begin
  if p_input_tokens is null or p_input_tokens < 0 then
    raise exception using errcode = '22023', message = 'p_input_tokens: must be 0 or more';
  end if;
  if p_output_tokens < 0 then
    raise exception using errcode = '22023', message = 'p_output_tokens: must be 0 or more';
  end if;
  v_config := public.get_effective_llm_config(p_processor_id);
  if v_output_tokens is null and jsonb_typeof(v_config -> 'settings' -> 'max_tokens') = 'number' then
    v_output_tokens := (v_config -> 'settings' ->> 'max_tokens')::integer;
  end if;
  if v_config ->> 'provider' like 'custom:%' then
    select p.input_price, p.output_price into v_price.cost_per_million_input_tokens, v_price.cost_per_million_output_tokens
    from private.custom_model_prices(private.current_org_id(), v_config ->> 'provider', v_config ->> 'model') as p;
  else
    select g.* into v_price from public.llm_global_settings as g
    where g.provider = v_config ->> 'provider' and g.model_name = v_config ->> 'model';
  end if;
  v_input_cost := p_input_tokens * v_price.cost_per_million_input_tokens / 1000000;
  v_output_cost := v_output_tokens * v_price.cost_per_million_output_tokens / 1000000;
  return jsonb_build_object(
    'provider', v_config ->> 'provider',
    'model', v_config ->> 'model',
    'input_tokens', p_input_tokens,
    'output_tokens', v_output_tokens,
    'input_cost', v_input_cost,
    'output_cost', v_output_cost,
    'total_cost', v_input_cost + v_output_cost,
    'priced', v_price.cost_per_million_input_tokens is not null and v_price.cost_per_million_output_tokens is not null
  );
end
$$;

-- Undo what older projects auto-grant (PUBLIC and every API role); the grant below names who needs it.
revoke execute on function private.custom_model_prices(uuid, text, text) from public, anon, authenticated, service_role;
-- Run as their callers by the usage cost trigger (service role), the estimate (signed-in members)
-- and the reservation function (its owner, who needs no grant).
grant execute on function private.custom_model_prices(uuid, text, text) to authenticated, service_role;
