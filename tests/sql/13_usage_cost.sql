-- Cost of a provider call, computed at insert from the catalog's list prices (USD per million
-- tokens) when the writer leaves estimated_cost null:
--   (input − cache_read − cache_write) × in + cache_read × cache_read_price
--   + cache_write × cache_write_price + output × out,
-- a null cache price billing those tokens at the input price. Unknown prices give a null cost
-- (unknown), never 0. Rows are written as the gateway writes them: as the service role.
begin;
select plan(15);

-- Fixtures ------------------------------------------------------------------------------------
select tests.create_organization('Acme') as acme \gset

-- Catalog rows owned by this test: one with all four prices (the worked example), one that
-- prices cached tokens like any other input.
insert into public.llm_global_settings (
  provider, model_name, display_name, cost_per_million_input_tokens, cost_per_million_output_tokens,
  cost_per_million_cache_read_tokens, cost_per_million_cache_write_tokens
) values
  ('openai', 'cost-probe-model', 'Cost probe', 2.00, 8.00, 0.20, 2.50),
  ('mistral', 'cost-probe-uncached', 'Cost probe without cache prices', 1.00, 3.00, null, null);

-- A catalog row's prices, failing loudly if the seed stops pricing a model a case relies on
-- (a null expected cost would otherwise compare equal to a null actual cost).
create function pg_temp.prices(p_provider text, p_model text)
returns table (input numeric, output numeric, cache_read numeric, cache_write numeric)
language plpgsql
as $$
begin
  return query
  select g.cost_per_million_input_tokens, g.cost_per_million_output_tokens,
         g.cost_per_million_cache_read_tokens, g.cost_per_million_cache_write_tokens
  from public.llm_global_settings as g
  where g.provider = p_provider and g.model_name = p_model
    and g.cost_per_million_input_tokens is not null and g.cost_per_million_output_tokens is not null;
  if not found then
    raise exception 'the catalog has no input and output price for % %', p_provider, p_model;
  end if;
end
$$;

create function pg_temp.cost_of(p_operation_id text)
returns numeric
language sql
as $$
  select u.estimated_cost from public.llm_usage_logs as u where u.operation_id = p_operation_id
$$;

-- The gateway logs calls ------------------------------------------------------------------------
select tests.authenticate_as_service_role();
insert into public.llm_usage_logs
  (organization_id, operation_id, provider, model_name, input_tokens, cache_read_tokens, cache_write_tokens, output_tokens)
values
  (:'acme', 'worked-example', 'openai', 'cost-probe-model', 120000, 20000, 10000, 4000),
  (:'acme', 'anthropic-cached', 'anthropic', 'claude-sonnet-4-5', 10000, 2000, 1000, 500),
  (:'acme', 'openai-cache-write', 'openai', 'gpt-4o', 50000, 30000, 5000, 1200),
  (:'acme', 'uncached-prices', 'mistral', 'cost-probe-uncached', 10000, 4000, 1000, 500),
  (:'acme', 'gemini-plain', 'google', 'gemini-2.5-pro', 200000, 0, 0, 8000),
  (:'acme', 'one-token', 'openai', 'gpt-4o-mini', 1, 0, 0, 1),
  (:'acme', 'llama-unpriced', 'meta', 'Llama-4-Maverick-17B-128E-Instruct-FP8', 3000, 0, 0, 700),
  (:'acme', 'not-in-catalog', 'openai', 'gpt-9-preview', 3000, 0, 0, 700);

select is(
  pg_temp.cost_of('worked-example'),
  0.241000,
  'worked example at $2 in, $8 out, $0.20 cache read, $2.50 cache write per million: '
  || '(120,000 − 20,000 − 10,000) × 2 + 20,000 × 0.20 + 10,000 × 2.50 + 4,000 × 8 = 241,000; / 1,000,000 = $0.241'
);
select is(
  pg_temp.cost_of('anthropic-cached'),
  (select ((7000 * p.input + 2000 * p.cache_read + 1000 * p.cache_write + 500 * p.output) / 1e6)
   from pg_temp.prices('anthropic', 'claude-sonnet-4-5') as p),
  'cache reads and cache writes are billed at their own catalog prices, the rest of the input at the input price'
);
select is(
  pg_temp.cost_of('openai-cache-write'),
  (select (((50000 - 30000 - 5000) * p.input + 30000 * p.cache_read + 5000 * p.input + 1200 * p.output) / 1e6)
   from pg_temp.prices('openai', 'gpt-4o') as p),
  'cache writes of a model without a cache-write price are billed at the input price'
);
select is(
  pg_temp.cost_of('uncached-prices'),
  (select ((10000 * p.input + 500 * p.output) / 1e6) from pg_temp.prices('mistral', 'cost-probe-uncached') as p),
  'with no cache prices at all, every input token is billed at the input price'
);
select is(
  pg_temp.cost_of('gemini-plain'),
  (select ((200000 * p.input + 8000 * p.output) / 1e6) from pg_temp.prices('google', 'gemini-2.5-pro') as p),
  'a call without caching costs input × input price + output × output price'
);
select is(
  pg_temp.cost_of('one-token'),
  (select (1 * p.input + 1 * p.output) / 1e6 from pg_temp.prices('openai', 'gpt-4o-mini') as p),
  'a one-token call is priced exactly, not rounded to the micro-dollar'
);
select is(pg_temp.cost_of('llama-unpriced'), null, 'a model the catalog holds without prices costs null (unknown), not 0');
select is(pg_temp.cost_of('not-in-catalog'), null, 'a model missing from the catalog costs null (unknown), not 0');

-- What the writer says wins.
insert into public.llm_usage_logs
  (organization_id, operation_id, provider, model_name, input_tokens, output_tokens, estimated_cost)
values
  (:'acme', 'negotiated-price', 'anthropic', 'claude-opus-4-5', 10000, 1000, 0.012345),
  (:'acme', 'free-tier', 'google', 'gemini-2.5-flash', 10000, 1000, 0);
select results_eq(
  $$select pg_temp.cost_of('negotiated-price'), pg_temp.cost_of('free-tier')$$,
  $$values (0.012345::numeric, 0::numeric)$$,
  'a cost the writer supplies is kept as given, zero included'
);

-- Failed calls are billing records too.
select lives_ok(
  format($$insert into public.llm_usage_logs
             (organization_id, operation_id, provider, model_name, response_time_ms, error_message)
           values (%L, 'timed-out', 'anthropic', 'claude-sonnet-4-5', 30000, 'upstream timeout after 30 s')$$, :'acme'),
  'a failed call is logged with its error and no token counts'
);
select is(pg_temp.cost_of('timed-out'), null, 'a failed call without token counts has a null cost');

-- The cost is fixed at insert: a later price change does not rewrite history.
select pg_temp.cost_of('anthropic-cached') as cost_before_repricing \gset
update public.llm_global_settings
set cost_per_million_input_tokens = cost_per_million_input_tokens * 2,
    cost_per_million_output_tokens = cost_per_million_output_tokens * 2
where provider = 'anthropic' and model_name = 'claude-sonnet-4-5';
insert into public.llm_usage_logs
  (organization_id, operation_id, provider, model_name, input_tokens, cache_read_tokens, cache_write_tokens, output_tokens)
values (:'acme', 'anthropic-cached-repriced', 'anthropic', 'claude-sonnet-4-5', 10000, 2000, 1000, 500);

select is(pg_temp.cost_of('anthropic-cached'), :'cost_before_repricing'::numeric,
  'a logged cost keeps the price of the day it was logged');
select is(
  pg_temp.cost_of('anthropic-cached-repriced'),
  (select ((7000 * p.input + 2000 * p.cache_read + 1000 * p.cache_write + 500 * p.output) / 1e6)
   from pg_temp.prices('anthropic', 'claude-sonnet-4-5') as p),
  'calls logged after a price change use the new price'
);
select isnt(pg_temp.cost_of('anthropic-cached-repriced'), :'cost_before_repricing'::numeric,
  'the same call costs differently before and after the price change');

-- Nothing above was priced silently at zero.
select is_empty(
  $$select from public.llm_usage_logs where estimated_cost = 0 and operation_id <> 'free-tier'$$,
  'no computed cost is 0: unknown prices stay null'
);

select * from finish();
rollback;
