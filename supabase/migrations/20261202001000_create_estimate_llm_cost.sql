-- The processor page's cost estimate: what a call of a given size would cost with the
-- processor's effective configuration at catalog prices.
--
-- Objects: public.estimate_llm_cost(p_processor_id, p_input_tokens, p_output_tokens).
-- Output: {provider, model, input_cost, output_cost, total_cost, priced}; p_output_tokens null
-- means the resolved max_tokens; costs are null when unknown (no catalog price, or no output
-- size given and none configured), never 0.
-- Grants: authenticated (their organization's processors); anon nothing.

-- Invoker: resolves as the caller (membership and RLS apply) and reads the catalog, which
-- signed-in users may read.
create function public.estimate_llm_cost(p_processor_id uuid, p_input_tokens integer, p_output_tokens integer default null)
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
  select g.* into v_price from public.llm_global_settings as g
  where g.provider = v_config ->> 'provider' and g.model_name = v_config ->> 'model';
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

comment on function public.estimate_llm_cost(uuid, integer, integer) is
'Estimated USD of a call with the processor''s effective configuration: {provider, model, input_cost, output_cost, total_cost, priced}.';

-- Older projects auto-grant new public functions: revoke, then grant to signed-in members only.
revoke execute on function public.estimate_llm_cost(uuid, integer, integer) from public, anon, authenticated, service_role;
-- Signed-in members estimate for their own organization's processors.
grant execute on function public.estimate_llm_cost(uuid, integer, integer) to authenticated;
