-- The usage dashboard's summary and the processor page's estimate. The summary reads hourly
-- rollups for whole hours and usage rows for the partial hours at either end; every figure is
-- checked against the same sums taken straight from llm_usage_logs. Members read their own
-- organization only.
begin;
select plan(17);

select tests.create_fixture_table();
select tests.create_cast();
with p as (
  insert into public.processors (organization_id, name, configuration)
  values (pg_temp.id('org_a'), 'Summarize', '{"llm_profile": "fast"}') returning id
)
insert into fx select 'proc_a', p.id from p;
update public.organizations
set llm_configuration = '{"default_profile": "fast", "profiles": {"fast": {"provider": "openai", "model": "gpt-4o-mini", "settings": {"max_tokens": 500}}, "open": {"provider": "meta", "model": "Llama-4-Scout-17B-16E-Instruct-FP8"}}}'
where id = pg_temp.id('org_a');
with p as (
  insert into public.processors (organization_id, name, configuration)
  values (pg_temp.id('org_a'), 'Open model', '{"llm_profile": "open"}') returning id
)
insert into fx select 'proc_open', p.id from p;

-- Usage over two days, as the gateway writes it (as the service role, one batch per statement).
select tests.authenticate_as_service_role();
insert into public.llm_usage_logs
  (organization_id, processor_id, user_id, provider, model_name, input_tokens, output_tokens, cache_read_tokens,
   error_message, created_at)
select pg_temp.id('org_a'), case when n % 3 = 0 then pg_temp.id('proc_a') end,
       case when n % 2 = 0 then pg_temp.id('member_a') else pg_temp.id('admin_a') end,
       case when n % 4 = 0 then 'anthropic' else 'openai' end,
       case when n % 4 = 0 then 'claude-haiku-4-5' else 'gpt-4o-mini' end,
       100 + n, 10 + n % 7, n % 5, case when n % 10 = 0 then 'HTTP 529' end,
       timestamptz '2026-11-03 08:00:00Z' + n * interval '7 minutes 13 seconds'
from generate_series(1, 400) as n;
insert into public.llm_usage_logs (organization_id, provider, model_name, input_tokens, output_tokens, created_at)
values (pg_temp.id('org_b'), 'openai', 'gpt-4o-mini', 999, 99, timestamptz '2026-11-03 12:00:00Z');

-- The same figures straight from the usage rows, for any range and grouping.
create function pg_temp.direct(p_from timestamptz, p_to timestamptz, p_group_by text)
returns table (bucket text, calls bigint, failed_calls bigint, input_tokens bigint, output_tokens bigint,
               cache_read_tokens bigint, cache_write_tokens bigint, cost numeric)
language sql
as $$
  select case p_group_by
           when 'day' then to_char(u.created_at at time zone 'UTC', 'YYYY-MM-DD')
           when 'model' then u.provider || '/' || u.model_name
           when 'processor' then u.processor_id::text
           else u.user_id::text
         end,
         count(*), count(*) filter (where u.error_message is not null), sum(u.input_tokens)::bigint,
         sum(u.output_tokens)::bigint, sum(u.cache_read_tokens)::bigint, sum(u.cache_write_tokens)::bigint,
         coalesce(sum(u.estimated_cost), 0)
  from public.llm_usage_logs as u
  where u.organization_id = pg_temp.id('org_a') and u.created_at >= p_from and u.created_at < p_to
  group by 1 order by 1
$$;
grant execute on function pg_temp.direct(timestamptz, timestamptz, text) to authenticated;

select tests.clear_authentication();
select tests.authenticate_as(pg_temp.id('member_a'));

-- Summary -----------------------------------------------------------------------------------------

select results_eq(
  format($$select * from public.get_llm_usage_summary(%L, %L, %L)$$, '2026-11-03 10:30:00Z', '2026-11-04 09:45:00Z', g.name),
  format($$select * from pg_temp.direct(%L, %L, %L)$$, '2026-11-03 10:30:00Z', '2026-11-04 09:45:00Z', g.name),
  format('the summary by %s over partial hours at both ends equals the usage rows'' sums', g.name)
)
from unnest(array['day', 'model', 'processor', 'user']) as g (name);

select results_eq(
  $$select * from public.get_llm_usage_summary('2026-11-01', '2026-12-01')$$,
  $$select * from pg_temp.direct('2026-11-01', '2026-12-01', 'day')$$,
  'a month by day (the default grouping) equals the usage rows'' sums, failed calls counted apart'
);
select results_eq(
  $$select * from public.get_llm_usage_summary('2026-11-03 12:05:00Z', '2026-11-03 12:50:00Z', 'model')$$,
  $$select * from pg_temp.direct('2026-11-03 12:05:00Z', '2026-11-03 12:50:00Z', 'model')$$,
  'a range inside one hour reads the usage rows alone'
);
select is(
  (select sum(calls)::int from public.get_llm_usage_summary('2026-11-01', '2026-12-01', 'model')),
  400,
  'another organization''s calls are not in the summary'
);
select throws_ok($$select * from public.get_llm_usage_summary('2026-11-02', '2026-11-01')$$, '22023', null,
  'p_from after p_to is refused');
select throws_ok($$select * from public.get_llm_usage_summary('2026-11-01', '2026-11-02', 'week')$$, '22023', null,
  'an unknown grouping is refused');
select throws_ok(
  format($$select * from private.llm_usage_summary(%L, '2026-11-01', '2026-12-01', 'day')$$, pg_temp.id('org_b')),
  '42501', null, 'a member cannot read another organization''s summary through the private function');
select tests.clear_authentication();
select tests.authenticate_as(pg_temp.id('stranger'));
select throws_ok($$select * from public.get_llm_usage_summary('2026-11-01', '2026-12-01')$$, '42501', null,
  'a signed-in user who is no member reads no summary');
select tests.clear_authentication();
select tests.authenticate_as(pg_temp.id('admin_b'));
select is(
  (select sum(calls)::int from public.get_llm_usage_summary('2026-11-01', '2026-12-01', 'model')),
  1,
  'each organization reads its own usage only'
);

-- Estimate ----------------------------------------------------------------------------------------

select tests.clear_authentication();
select tests.authenticate_as(pg_temp.id('member_a'));
select is(
  public.estimate_llm_cost(pg_temp.id('proc_a'), 2000),
  (select jsonb_build_object(
     'provider', 'openai', 'model', 'gpt-4o-mini', 'input_tokens', 2000, 'output_tokens', 500,
     'input_cost', 2000 * g.cost_per_million_input_tokens / 1000000,
     'output_cost', 500 * g.cost_per_million_output_tokens / 1000000,
     'total_cost', (2000 * g.cost_per_million_input_tokens + 500 * g.cost_per_million_output_tokens) / 1000000,
     'priced', true)
   from public.llm_global_settings as g where g.provider = 'openai' and g.model_name = 'gpt-4o-mini'),
  'without an output size the estimate uses the resolved max_tokens, at catalog prices'
);
select is(
  (public.estimate_llm_cost(pg_temp.id('proc_a'), 2000, 10) ->> 'output_tokens')::int,
  10,
  'a given output size wins over max_tokens'
);
select is(
  public.estimate_llm_cost(pg_temp.id('proc_open'), 2000, 10) - 'output_tokens' - 'input_tokens',
  '{"provider": "meta", "model": "Llama-4-Scout-17B-16E-Instruct-FP8", "input_cost": null, "output_cost": null, "total_cost": null, "priced": false}'::jsonb,
  'an unpriced model is estimated as unknown (null), never 0'
);
select throws_ok(format('select public.estimate_llm_cost(%L, -1)', pg_temp.id('proc_a')), '22023', null,
  'a negative token count is refused');
select tests.clear_authentication();
select tests.authenticate_as(pg_temp.id('admin_b'));
select throws_ok(format('select public.estimate_llm_cost(%L, 100)', pg_temp.id('proc_a')), 'PT404', null,
  'another organization''s processor cannot be estimated');

select * from finish();
rollback;
