-- Budgets, their spend, reservations and alerts: owners and admins set budgets, members read
-- them; spend is counted with each usage row (a budget created mid-period starts from what its
-- scope already spent); hard budgets refuse what would not fit (PT402) and release expired
-- reservations; each threshold alerts once per period. Rows are written as the gateway writes
-- them: as the service role.
begin;
select plan(48);

select tests.create_fixture_table();
select tests.create_cast();
with p as (insert into public.processors (organization_id, name) values (pg_temp.id('org_a'), 'Summarize') returning id)
insert into fx select 'proc_a', p.id from p;
with p as (insert into public.processors (organization_id, name) values (pg_temp.id('org_b'), 'Triage') returning id)
insert into fx select 'proc_b', p.id from p;

-- A catalog row with round prices: $1 in, $2 out, $0.10 cache read, $3 cache write per million.
insert into public.llm_global_settings (
  provider, model_name, display_name, cost_per_million_input_tokens, cost_per_million_output_tokens,
  cost_per_million_cache_read_tokens, cost_per_million_cache_write_tokens
) values ('openai', 'budget-probe', 'Budget probe', 1, 2, 0.1, 3);

-- Usage as the gateway writes it; cost set by the writer where a test needs a round number.
create function pg_temp.spend(p_org text, p_usd numeric, p_processor text default null, p_at timestamptz default now())
returns void
language sql
as $$
  insert into public.llm_usage_logs (organization_id, processor_id, provider, model_name, input_tokens,
                                     output_tokens, estimated_cost, created_at)
  values (pg_temp.id(p_org), pg_temp.id(p_processor), 'openai', 'budget-probe', 1, 1, p_usd, p_at)
$$;

create function pg_temp.status(p_budget text)
returns table (spent numeric, reserved numeric, remaining numeric)
language sql
as $$
  select s.spent_usd, s.reserved_usd, s.remaining_usd
  from public.get_llm_budget_status_for_org(pg_temp.id('org_a')) as s where s.budget_id = pg_temp.id(p_budget)
$$;

-- Structure and privileges ---------------------------------------------------------------------

select results_eq(
  $$select format('%s: %s to %s', policyname collate "default", cmd, roles) from pg_catalog.pg_policies
    where schemaname = 'public' and tablename in ('llm_budgets', 'llm_budget_alerts') order by tablename, policyname$$,
  array['Members can read their organization''s budget alerts: SELECT to {authenticated}',
        'Members can read their organization''s budgets: SELECT to {authenticated}',
        'Org admins can create budgets: INSERT to {authenticated}',
        'Org admins can delete budgets: DELETE to {authenticated}',
        'Org admins can update budgets: UPDATE to {authenticated}'],
  'budgets have one policy per command and alerts one for reading, all for signed-in users'
);
select table_privs_are('public', 'llm_budgets', 'anon', array[]::text[], 'anon has no access to budgets');
select table_privs_are('public', 'llm_budget_alerts', 'anon', array[]::text[], 'anon has no access to alerts');
select table_privs_are('public', 'llm_budget_alerts', 'authenticated', array['SELECT'],
  'signed-in users only read alerts');
select table_privs_are('public', 'llm_budget_alerts', 'service_role', array['SELECT'],
  'alerts are written by the database alone, even for the service role');
select is(
  (select array_agg(c.column_name::text order by c.column_name) from information_schema.column_privileges as c
   where c.table_schema = 'public' and c.table_name = 'llm_budgets' and c.grantee = 'authenticated'
     and c.privilege_type = 'UPDATE'),
  array['alert_thresholds', 'hard', 'limit_usd'],
  'signed-in admins change a budget''s limit, hardness and thresholds only'
);
select results_eq(
  $$select r.rolname::text collate "default", has_function_privilege(r.rolname, 'public.reserve_llm_budget(uuid,uuid,text,text,integer,integer,integer)', 'EXECUTE'),
           has_function_privilege(r.rolname, 'public.get_llm_budget_status()', 'EXECUTE'),
           has_function_privilege(r.rolname, 'public.get_llm_budget_status_for_org(uuid)', 'EXECUTE'),
           has_function_privilege(r.rolname, 'public.get_llm_usage_summary(timestamptz,timestamptz,text)', 'EXECUTE'),
           has_function_privilege(r.rolname, 'public.estimate_llm_cost(uuid,integer,integer)', 'EXECUTE')
    from pg_catalog.pg_roles as r where r.rolname in ('anon', 'authenticated', 'service_role') order by 1$$,
  $$values ('anon', false, false, false, false, false),
           ('authenticated', false, true, false, true, true),
           ('service_role', true, false, true, false, false)$$,
  'reserving is the gateway''s, status and usage reads are members'', the _for_org status the service role''s'
);
select is(
  (select count(*)::int from pg_catalog.pg_class as c
   where c.relnamespace = 'private'::regnamespace and c.relkind = 'r'
     and (has_table_privilege('authenticated', c.oid, 'SELECT') or has_table_privilege('service_role', c.oid, 'SELECT')
          or has_table_privilege('anon', c.oid, 'SELECT'))),
  0,
  'no API role reads a private table (counters, reservations, rollup) directly'
);

-- Who may write budgets ---------------------------------------------------------------------------

select tests.clear_authentication();
select tests.authenticate_as(pg_temp.id('member_a'));
select throws_ok(
  $$insert into public.llm_budgets (organization_id, period, limit_usd) values (pg_temp.id('org_a'), 'month', 10)$$,
  '42501', null, 'a member cannot create a budget'
);
select tests.clear_authentication();
select tests.authenticate_as(pg_temp.id('admin_b'));
select throws_ok(
  $$insert into public.llm_budgets (organization_id, period, limit_usd) values (pg_temp.id('org_a'), 'month', 10)$$,
  '42501', null, 'an admin of another organization cannot create a budget for this one'
);
select tests.authenticate_as_anon();
select throws_ok($$select * from public.llm_budgets$$, '42501', null, 'anon cannot read budgets');

-- Spend before any budget: a budget created mid-period starts from it.
select tests.authenticate_as_service_role();
select pg_temp.spend('org_a', 0.25);
select pg_temp.spend('org_a', 0.5, 'proc_a');
-- An earlier hour of this period where there is one: read back from the hourly rollup.
select pg_temp.spend('org_a', 0.0625, null,
                     greatest(date_trunc('month', now(), 'UTC'), date_trunc('hour', now(), 'UTC') - interval '30 minutes'));
select pg_temp.spend('org_a', 7, null, date_trunc('month', now(), 'UTC') - interval '1 day');  -- last month
select pg_temp.spend('org_b', 3);

select tests.clear_authentication();
select tests.authenticate_as(pg_temp.id('admin_a'));
select lives_ok(
  $$insert into public.llm_budgets (organization_id, period, limit_usd, hard) values (pg_temp.id('org_a'), 'month', 2, true)$$,
  'an admin creates a hard monthly budget for the organization'
);
select lives_ok(
  $$insert into public.llm_budgets (organization_id, processor_id, period, limit_usd, hard, alert_thresholds)
    values (pg_temp.id('org_a'), pg_temp.id('proc_a'), 'day', 1, false, '{0.5,0.8,1.0}')$$,
  'an admin creates a soft daily budget for one processor'
);
select tests.clear_authentication();
insert into fx select 'month_a', b.id from public.llm_budgets as b where b.period = 'month' and b.processor_id is null;
insert into fx select 'day_proc_a', b.id from public.llm_budgets as b where b.period = 'day';
select tests.authenticate_as(pg_temp.id('admin_a'));
select throws_ok(
  $$insert into public.llm_budgets (organization_id, period, limit_usd) values (pg_temp.id('org_a'), 'month', 5)$$,
  '23505', null, 'one budget per scope and period'
);
select throws_ok(
  $$insert into public.llm_budgets (organization_id, processor_id, period, limit_usd)
    values (pg_temp.id('org_a'), pg_temp.id('proc_b'), 'day', 5)$$,
  '23503', null, 'a budget cannot name another organization''s processor'
);

-- Validation, with the path of the offending value.
select throws_ok($$insert into public.llm_budgets (organization_id, period, limit_usd) values (pg_temp.id('org_a'), 'week', 5)$$,
  '22023', 'llm_budgets.period: must be day or month', 'the period is day or month');
select throws_ok($$insert into public.llm_budgets (organization_id, period, limit_usd) values (pg_temp.id('org_a'), 'day', 0)$$,
  '22023', 'llm_budgets.limit_usd: must be a positive amount of USD', 'the limit is positive');
select throws_ok(
  $$insert into public.llm_budgets (organization_id, period, limit_usd, alert_thresholds)
    values (pg_temp.id('org_a'), 'day', 5, '{0.5,-1}')$$,
  '22023', 'llm_budgets.alert_thresholds[1]: must be a fraction of the limit above 0 and at most 10',
  'each threshold is a positive fraction, named by its index'
);
select throws_ok($$update public.llm_budgets set period = 'day' where id = pg_temp.id('month_a')$$,
  '42501', null, 'signed-in admins cannot change a budget''s period');
select tests.authenticate_as_service_role();
select throws_ok($$update public.llm_budgets set period = 'day' where id = pg_temp.id('month_a')$$,
  '22023', null, 'nobody changes a budget''s scope or period: its spend belongs to them');

-- Reading ---------------------------------------------------------------------------------------------

select results_eq(
  $$select spent, reserved, remaining from pg_temp.status('month_a')$$,
  $$values (0.8125::numeric, 0::numeric, 1.1875::numeric)$$,
  'a budget created mid-period starts from this period''s spend of its scope, last month''s left out'
);
select results_eq(
  $$select spent from pg_temp.status('day_proc_a')$$, $$values (0.5::numeric)$$,
  'a processor''s budget counts only that processor''s calls'
);
select pg_temp.spend('org_a', 0.125, 'proc_a');
select results_eq(
  $$select (select spent from pg_temp.status('month_a')), (select spent from pg_temp.status('day_proc_a'))$$,
  $$values (0.9375::numeric, 0.625::numeric)$$,
  'each usage row adds its cost to every budget it falls under'
);
select pg_temp.spend('org_a', 1, null, date_trunc('month', now(), 'UTC') - interval '1 hour');
select results_eq(
  $$select spent from pg_temp.status('month_a')$$, $$values (0.9375::numeric)$$,
  'a row of the previous period counts there, not in the current one'
);
select tests.clear_authentication();
select tests.authenticate_as(pg_temp.id('member_a'));
select results_eq(
  $$select count(*)::int, min(period_start) = date_trunc('month', now(), 'UTC') from public.get_llm_budget_status()
    where period = 'month'$$,
  $$values (1, true)$$,
  'a member reads the organization''s budgets in their current period'
);
select tests.clear_authentication();
select tests.authenticate_as(pg_temp.id('admin_b'));
select is_empty($$select * from public.get_llm_budget_status()$$, 'another organization sees none of these budgets');
select throws_ok($$select * from public.get_llm_budget_status_for_org(pg_temp.id('org_a'))$$, '42501', null,
  'signed-in users cannot read another organization''s status through the service role''s function');

-- Reservations ------------------------------------------------------------------------------------------

select tests.authenticate_as_service_role();
-- 100,000 input tokens at the highest input rate ($3, cache writes) + 50,000 output at $2 = $0.40.
select lives_ok(
  $$select set_config('test.r1', public.reserve_llm_budget(pg_temp.id('org_a'), null, 'openai', 'budget-probe', 100000, 50000)::text, true)$$,
  'a call that fits is reserved'
);
select results_eq($$select reserved, remaining from pg_temp.status('month_a')$$, $$values (0.4::numeric, 0.6625::numeric)$$,
  'the reservation is its worst case, at the highest input rate');
select throws_ok(
  $$select public.reserve_llm_budget(pg_temp.id('org_a'), null, 'openai', 'budget-probe', 200000, 100000)$$,
  'PT402', null, 'a call that does not fit is refused (HTTP 402)'
);
select matches(
  tests.error_of($$select public.reserve_llm_budget(pg_temp.id('org_a'), null, 'openai', 'budget-probe', 200000, 100000)$$)
  ->> 'message',
  'monthly budget .* of 2 USD has 0\.6625 USD left; this call may cost up to 0\.8 USD',
  'the refusal names the budget and what remains'
);
select throws_ok(
  $$select public.reserve_llm_budget(pg_temp.id('org_a'), null, 'meta', 'Llama-4-Scout-17B-16E-Instruct-FP8', 10, 10)$$,
  'PT402', null, 'under a hard budget a model without a price is refused: its cost cannot be bounded'
);
select is(
  public.reserve_llm_budget(pg_temp.id('org_b'), null, 'meta', 'Llama-4-Scout-17B-16E-Instruct-FP8', 10, 10),
  null,
  'without a hard budget nothing is reserved'
);
select is(
  public.reserve_llm_budget(pg_temp.id('org_a'), pg_temp.id('proc_a'), 'openai', 'budget-probe', 0, 0) is not null,
  true,
  'soft budgets do not refuse; the organization''s hard one still reserves'
);

insert into public.llm_usage_logs (organization_id, provider, model_name, input_tokens, output_tokens, reservation_id)
values (pg_temp.id('org_a'), 'openai', 'budget-probe', 100000, 25000, current_setting('test.r1')::uuid);
select results_eq($$select spent, reserved from pg_temp.status('month_a')$$, $$values (1.0875::numeric, 0::numeric)$$,
  'the usage row replaces its reservation with the actual cost ($0.15) in the same transaction');

select lives_ok(
  $$select set_config('test.r2', public.reserve_llm_budget(pg_temp.id('org_a'), null, 'openai', 'budget-probe', 300000, 0, 60)::text, true)$$,
  'another reservation ($0.90)'
);
select throws_ok(
  $$select public.reserve_llm_budget(pg_temp.id('org_a'), null, 'openai', 'budget-probe', 100000, 0)$$,
  'PT402', null, 'while it holds, the remaining $0.0125 cannot take a $0.30 call'
);
select tests.clear_authentication();
update private.llm_budget_reservations set expires_at = now() - interval '1 second' where id = current_setting('test.r2')::uuid;
select tests.authenticate_as_service_role();
select isnt(
  public.reserve_llm_budget(pg_temp.id('org_a'), null, 'openai', 'budget-probe', 100000, 0),
  null,
  'an expired reservation (its gateway died) is released by the next reservation'
);
select results_eq($$select reserved from pg_temp.status('month_a')$$, $$values (0.3::numeric)$$,
  'only the live reservation remains');

select results_eq(
  format($$select reservation_id is not null, refusal is not null, coalesce(refusal like '%%USD left%%', false)
           from public.reserve_llm_budgets(%L) order by call_index$$,
         jsonb_build_array(
           jsonb_build_object('organization_id', pg_temp.id('org_a'), 'provider', 'openai', 'model', 'budget-probe',
                              'max_input_tokens', 1, 'max_output_tokens', 1, 'seconds', 60),
           jsonb_build_object('organization_id', pg_temp.id('org_a'), 'provider', 'openai', 'model', 'budget-probe',
                              'max_input_tokens', 10000000, 'max_output_tokens', 0, 'seconds', 60),
           jsonb_build_object('organization_id', pg_temp.id('org_b'), 'provider', 'openai', 'model', 'budget-probe',
                              'max_input_tokens', 10000000, 'max_output_tokens', 0, 'seconds', 60))),
  $$values (true, false, false), (false, true, true), (false, false, false)$$,
  'a batch reserves or refuses each call on its own, in order; a call without a hard budget reserves nothing'
);

-- Alerts --------------------------------------------------------------------------------------------------

-- The soft daily processor budget ($1) has spent $0.625: past 0.5 since it was created.
select results_eq(
  $$select threshold from public.llm_budget_alerts where budget_id = pg_temp.id('day_proc_a') order by threshold$$,
  $$values (0.5::numeric)$$,
  'a threshold already crossed when the budget is created alerts at once'
);
select pg_temp.spend('org_a', 0.125, 'proc_a');
select pg_temp.spend('org_a', 0.125, 'proc_a');
select results_eq(
  $$select threshold, spent_usd from public.llm_budget_alerts where budget_id = pg_temp.id('day_proc_a') order by threshold$$,
  $$values (0.5::numeric, 0.5::numeric), (0.8::numeric, 0.875::numeric)$$,
  'crossing 0.8 alerts once, with the spend at that moment; 0.5 does not alert again'
);
select pg_temp.spend('org_a', 1, 'proc_a');
select results_eq(
  $$select count(*)::int from public.llm_budget_alerts where budget_id = pg_temp.id('day_proc_a') and threshold = 1.0$$,
  $$values (1)$$,
  'a soft budget alerts at its limit and does not refuse'
);
select tests.clear_authentication();
select tests.authenticate_as(pg_temp.id('member_a'));
select is((select count(*)::int from public.llm_budget_alerts where budget_id = pg_temp.id('day_proc_a')), 3,
  'members read their organization''s alerts');
select throws_ok(
  $$insert into public.llm_budget_alerts (budget_id, organization_id, period_start, threshold, spent_usd)
    values (pg_temp.id('month_a'), pg_temp.id('org_a'), now(), 0.1, 0)$$,
  '42501', null, 'nobody forges an alert'
);
select tests.clear_authentication();
select tests.authenticate_as(pg_temp.id('admin_b'));
select is_empty($$select * from public.llm_budget_alerts$$, 'another organization sees none of these alerts');

-- Deleting ---------------------------------------------------------------------------------------------------

select tests.clear_authentication();
select tests.authenticate_as(pg_temp.id('admin_a'));
select lives_ok($$delete from public.llm_budgets where id = pg_temp.id('day_proc_a')$$, 'an admin deletes a budget');
select tests.clear_authentication();
select is(
  (select count(*)::int from private.llm_budget_periods where budget_id = pg_temp.id('day_proc_a'))
  + (select count(*)::int from public.llm_budget_alerts where budget_id = pg_temp.id('day_proc_a')),
  0,
  'its counters and alerts go with it'
);

select * from finish();
rollback;
