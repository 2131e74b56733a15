-- RLS and grants of public.llm_usage_logs, the billing record of every provider call: members
-- read their organization's usage; no signed-in user, whatever their role, inserts, updates or
-- deletes a row; the service role (the gateway) inserts and reads but never updates or deletes;
-- anon gets nothing. Rows outlive the processor, run and organization they point at.
begin;
select plan(31);

-- Fixture: organization A (owner, admin, member, and a removed member) with a processor, a run
-- and two usage rows (a success and a failure); bystander organization B (admin) with one row;
-- organization C, to be deleted, with one row; a stranger whose token names A.
select tests.create_fixture_table();

do $$
declare
  v_org_a uuid;
  v_org_b uuid;
  v_org_c uuid := tests.create_organization('Closing Down');
begin
  perform tests.create_cast();
  v_org_a := pg_temp.id('org_a');
  v_org_b := pg_temp.id('org_b');
  insert into fx values ('org_c', v_org_c);

  with p as (insert into public.processors (organization_id, name) values (v_org_a, 'Summarize') returning id)
  insert into fx select 'proc_a', p.id from p;
  with r as (insert into public.runs (organization_id, processor_id) values (v_org_a, pg_temp.id('proc_a')) returning id)
  insert into fx select 'run_a', r.id from r;

  with u as (
    insert into public.llm_usage_logs
      (organization_id, processor_id, run_id, user_id, provider, model_name, input_tokens, output_tokens, error_message)
    values
      (v_org_a, pg_temp.id('proc_a'), pg_temp.id('run_a'), pg_temp.id('member_a'), 'openai', 'gpt-4o-mini', 1200, 300, null),
      (v_org_a, pg_temp.id('proc_a'), pg_temp.id('run_a'), pg_temp.id('member_a'), 'openai', 'gpt-4o-mini', null, null,
       'HTTP 529 overloaded'),
      (v_org_b, null, null, pg_temp.id('admin_b'), 'anthropic', 'claude-haiku-4-5', 500, 50, null),
      (v_org_c, null, null, null, 'mistral', 'mistral-small-latest', 10, 1, null)
    returning id, organization_id, error_message
  )
  insert into fx
  select case
           when u.organization_id = v_org_b then 'usage_b'
           when u.organization_id = v_org_c then 'usage_c'
           when u.error_message is null then 'usage_a_ok'
           else 'usage_a_failed'
         end, u.id
  from u;
end
$$;

-- Structure -------------------------------------------------------------------------------------

select results_eq(
  $$select format('%s: %s to %s', policyname collate "default", cmd, roles) from pg_catalog.pg_policies
    where schemaname = 'public' and tablename = 'llm_usage_logs' order by policyname$$,
  array['Members can read their organization''s usage: SELECT to {authenticated}'],
  'llm_usage_logs has only a select policy, for signed-in users only'
);

-- anon ------------------------------------------------------------------------------------------

select tests.authenticate_as_anon();

select throws_ok($$select * from public.llm_usage_logs$$, '42501', null, 'anon cannot read usage');
select throws_ok(
  $$insert into public.llm_usage_logs (organization_id, provider, model_name) values (pg_temp.id('org_a'), 'openai', 'gpt-4o')$$,
  '42501', null, 'anon cannot log usage');
select throws_ok($$update public.llm_usage_logs set estimated_cost = 0$$, '42501', null, 'anon cannot change usage');
select throws_ok($$delete from public.llm_usage_logs$$, '42501', null, 'anon cannot delete usage');

-- Stranger: the token names organization A, but the user is not a member ------------------------

select tests.clear_authentication();
select tests.authenticate_as(pg_temp.id('stranger'));

select is_empty($$select * from public.llm_usage_logs$$,
  'a signed-in non-member whose token names the organization sees none of its usage');
select throws_ok(
  $$insert into public.llm_usage_logs (organization_id, provider, model_name) values (pg_temp.id('org_a'), 'openai', 'gpt-4o')$$,
  '42501', null, 'a signed-in non-member cannot log usage');
select throws_ok($$update public.llm_usage_logs set estimated_cost = 0$$, '42501', null,
  'a signed-in non-member cannot change usage');
select throws_ok($$delete from public.llm_usage_logs$$, '42501', null, 'a signed-in non-member cannot delete usage');

-- Member ----------------------------------------------------------------------------------------

select tests.clear_authentication();
select tests.authenticate_as(pg_temp.id('member_a'));

select set_eq($$select id from public.llm_usage_logs$$, $$select id from fx where name in ('usage_a_ok', 'usage_a_failed')$$,
  'a member reads their organization''s usage, failed calls included, and no other');
select throws_ok(
  $$insert into public.llm_usage_logs (organization_id, provider, model_name) values (pg_temp.id('org_a'), 'openai', 'gpt-4o')$$,
  '42501', null, 'a member cannot log usage');
select throws_ok($$update public.llm_usage_logs set estimated_cost = 0 where id = pg_temp.id('usage_a_ok')$$, '42501', null,
  'a member cannot change their organization''s usage');
select throws_ok($$delete from public.llm_usage_logs where id = pg_temp.id('usage_a_ok')$$, '42501', null,
  'a member cannot delete their organization''s usage');

-- Admin and owner -------------------------------------------------------------------------------

select tests.clear_authentication();
select tests.authenticate_as(pg_temp.id('admin_a'));

select throws_ok(
  $$insert into public.llm_usage_logs (organization_id, provider, model_name) values (pg_temp.id('org_a'), 'openai', 'gpt-4o')$$,
  '42501', null, 'an admin cannot log usage');
select throws_ok($$update public.llm_usage_logs set estimated_cost = 0 where id = pg_temp.id('usage_a_ok')$$, '42501', null,
  'an admin cannot change their organization''s usage');
select throws_ok($$delete from public.llm_usage_logs where id = pg_temp.id('usage_a_failed')$$, '42501', null,
  'an admin cannot delete their organization''s failed calls');

select tests.clear_authentication();
select tests.authenticate_as(pg_temp.id('owner_a'));

select throws_ok($$update public.llm_usage_logs set input_tokens = 0 where id = pg_temp.id('usage_a_ok')$$, '42501', null,
  'an owner cannot change their organization''s usage');
select throws_ok($$delete from public.llm_usage_logs where organization_id = pg_temp.id('org_a')$$, '42501', null,
  'an owner cannot delete their organization''s usage');

-- Admin of another organization -----------------------------------------------------------------

select tests.clear_authentication();
select tests.authenticate_as(pg_temp.id('admin_b'));

select results_eq($$select id from public.llm_usage_logs$$, array[pg_temp.id('usage_b')],
  'a member of another organization reads only their own usage, not this organization''s');

-- user_metadata never grants anything -----------------------------------------------------------

select tests.clear_authentication();
select tests.authenticate_as(pg_temp.id('admin_b'), jsonb_build_object('organization_id', pg_temp.id('org_a')));

select results_eq($$select id from public.llm_usage_logs$$, array[pg_temp.id('usage_b')],
  'user_metadata naming another organization does not reveal its usage');

select tests.clear_authentication();
select tests.authenticate_as(pg_temp.id('no_org'), jsonb_build_object('organization_id', pg_temp.id('org_a')));

select is_empty($$select * from public.llm_usage_logs$$,
  'a user whose only claim to an organization is user_metadata sees no usage');

-- A removed member's token is still valid, but membership is gone --------------------------------

select tests.clear_authentication();
select tests.authenticate_as(pg_temp.id('former_a'));

select is_empty($$select * from public.llm_usage_logs$$, 'a removed member with a still-valid token sees no usage');

-- Service role ----------------------------------------------------------------------------------

select tests.clear_authentication();
select tests.authenticate_as_service_role();

select is(
  (select count(*) from public.llm_usage_logs
   where organization_id in (pg_temp.id('org_a'), pg_temp.id('org_b'), pg_temp.id('org_c'))),
  4::bigint, 'the service role reads the usage of every organization'
);
select results_eq(
  $$insert into public.llm_usage_logs (organization_id, processor_id, run_id, provider, model_name, input_tokens, output_tokens)
    values (pg_temp.id('org_a'), pg_temp.id('proc_a'), pg_temp.id('run_a'), 'openai', 'gpt-4o-mini', 100, 10)
    returning organization_id$$,
  array[pg_temp.id('org_a')], 'the service role logs a call');
select results_eq(
  $$insert into public.llm_usage_logs (organization_id, provider, model_name, error_message)
    values (pg_temp.id('org_a'), 'openai', 'gpt-4o-mini', 'timeout after 60s') returning error_message$$,
  array['timeout after 60s'], 'the service role logs a failed call');
select throws_ok($$update public.llm_usage_logs set estimated_cost = 0 where id = pg_temp.id('usage_a_ok')$$, '42501', null,
  'the service role cannot change usage (billing records are append-only)');
select throws_ok($$delete from public.llm_usage_logs where id = pg_temp.id('usage_a_ok')$$, '42501', null,
  'the service role cannot delete usage (billing records are append-only)');

-- Usage outlives what it points at (deletions by the service role) ------------------------------

delete from public.processors where id = pg_temp.id('proc_a');
select results_eq(
  $$select count(*), count(processor_id), count(run_id) from public.llm_usage_logs where organization_id = pg_temp.id('org_a')$$,
  $$values (4::bigint, 0::bigint, 3::bigint)$$,
  'deleting a processor keeps its usage rows, with processor_id set to null'
);

delete from public.runs where id = pg_temp.id('run_a');
select results_eq(
  $$select count(*), count(run_id) from public.llm_usage_logs where organization_id = pg_temp.id('org_a')$$,
  $$values (4::bigint, 0::bigint)$$,
  'deleting a run keeps its usage rows, with run_id set to null'
);

delete from public.organizations where id = pg_temp.id('org_c');
select results_eq($$select organization_id from public.llm_usage_logs where id = pg_temp.id('usage_c')$$, array[null::uuid],
  'deleting an organization keeps its usage rows, with organization_id set to null');

-- What changed, seen by the table owner ---------------------------------------------------------

select tests.clear_authentication();

select results_eq(
  $$select organization_id, provider, model_name, input_tokens, output_tokens from public.llm_usage_logs
    where id = pg_temp.id('usage_b')$$,
  $$values (pg_temp.id('org_b'), 'anthropic', 'claude-haiku-4-5', 500, 50)$$,
  'the bystander organization''s usage is unchanged'
);

select * from finish();
rollback;
