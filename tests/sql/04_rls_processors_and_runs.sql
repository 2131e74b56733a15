-- RLS and grants of public.processors and public.runs: members read their organization's
-- processors and runs; owners and admins create, change and delete processors, only in their
-- own organization; runs are written by the service role only; anon gets nothing. Deleting a
-- processor keeps its runs and usage rows (processor_id set to null).
begin;
select plan(54);

-- Fixture: tests.create_cast() (organization A: owner, admin, member; bystander organization B:
-- admin; a stranger whose token names A), plus two processors, a run and a usage row in A and a
-- processor and a run in B.
select tests.create_fixture_table();

do $$
declare
  v_org_a uuid;
  v_org_b uuid;
begin
  perform tests.create_cast();
  v_org_a := pg_temp.id('org_a');
  v_org_b := pg_temp.id('org_b');

  with p as (
    insert into public.processors (organization_id, name, configuration) values
      (v_org_a, 'proc_a1', '{"llm_profile": "fast"}'),
      (v_org_a, 'proc_a2', '{}'),
      (v_org_b, 'proc_b1', '{"llm_profile": "powerful", "settings_override": {"temperature": 0.1}}')
    returning name, id
  )
  insert into fx select p.name, p.id from p;

  with r as (
    insert into public.runs (organization_id, processor_id, status) values
      (v_org_a, pg_temp.id('proc_a1'), 'completed'),
      (v_org_b, pg_temp.id('proc_b1'), 'completed')
    returning case organization_id when v_org_a then 'run_a1' else 'run_b1' end as name, id
  )
  insert into fx select r.name, r.id from r;

  insert into public.llm_usage_logs (organization_id, processor_id, run_id, provider, model_name, input_tokens, output_tokens)
  values (v_org_a, pg_temp.id('proc_a1'), pg_temp.id('run_a1'), 'openai', 'gpt-4o-mini', 1000, 200);
end
$$;

-- Structure -------------------------------------------------------------------------------------

select results_eq(
  $$select format('%s: %s to %s', policyname collate "default", cmd, roles) from pg_catalog.pg_policies
    where schemaname = 'public' and tablename = 'processors' order by policyname$$,
  array['Members can read their organization''s processors: SELECT to {authenticated}',
        'Org admins can create processors: INSERT to {authenticated}',
        'Org admins can delete processors: DELETE to {authenticated}',
        'Org admins can update processors: UPDATE to {authenticated}'],
  'processors has one policy per command, all for signed-in users only'
);
select results_eq(
  $$select format('%s: %s to %s', policyname collate "default", cmd, roles) from pg_catalog.pg_policies
    where schemaname = 'public' and tablename = 'runs' order by policyname$$,
  array['Members can read their organization''s runs: SELECT to {authenticated}'],
  'runs has only a select policy, for signed-in users only'
);

-- anon ------------------------------------------------------------------------------------------

select tests.authenticate_as_anon();

select throws_ok($$select * from public.processors$$, '42501', null, 'anon cannot read processors');
select throws_ok($$insert into public.processors (organization_id, name) values (pg_temp.id('org_a'), 'anon')$$,
  '42501', null, 'anon cannot create a processor');
select throws_ok($$update public.processors set name = 'pwned'$$, '42501', null, 'anon cannot change a processor');
select throws_ok($$delete from public.processors$$, '42501', null, 'anon cannot delete a processor');
select throws_ok($$select * from public.runs$$, '42501', null, 'anon cannot read runs');
select throws_ok($$insert into public.runs (organization_id) values (pg_temp.id('org_a'))$$, '42501', null,
  'anon cannot create a run');
select throws_ok($$update public.runs set status = 'failed'$$, '42501', null, 'anon cannot change a run');
select throws_ok($$delete from public.runs$$, '42501', null, 'anon cannot delete a run');

-- Stranger: the token names organization A, but the user is not a member ------------------------

select tests.clear_authentication();
select tests.authenticate_as(pg_temp.id('stranger'));

select is_empty($$select * from public.processors$$,
  'a signed-in non-member whose token names the organization sees none of its processors');
select is_empty($$select * from public.runs$$,
  'a signed-in non-member whose token names the organization sees none of its runs');
select throws_ok($$insert into public.processors (organization_id, name) values (pg_temp.id('org_a'), 'stranger')$$,
  '42501', null, 'a signed-in non-member cannot create a processor in the organization its token names');
select is_empty($$update public.processors set name = 'pwned' returning id$$,
  'a signed-in non-member cannot change a processor');
select is_empty($$delete from public.processors returning id$$, 'a signed-in non-member cannot delete a processor');

-- Member ----------------------------------------------------------------------------------------

select tests.clear_authentication();
select tests.authenticate_as(pg_temp.id('member_a'));

select set_eq($$select id from public.processors$$, $$select id from fx where name in ('proc_a1', 'proc_a2')$$,
  'a member reads their organization''s processors and no other');
select results_eq($$select id from public.runs$$, array[pg_temp.id('run_a1')],
  'a member reads their organization''s runs and no other');
select throws_ok($$insert into public.processors (organization_id, name) values (pg_temp.id('org_a'), 'mine')$$,
  '42501', null, 'a member cannot create a processor');
select is_empty($$update public.processors set name = 'renamed' where id = pg_temp.id('proc_a1') returning id$$,
  'a member cannot change a processor');
select is_empty($$delete from public.processors where id = pg_temp.id('proc_a1') returning id$$,
  'a member cannot delete a processor');
select throws_ok($$insert into public.runs (organization_id, processor_id) values (pg_temp.id('org_a'), pg_temp.id('proc_a1'))$$,
  '42501', null, 'a member cannot create a run');
select throws_ok($$update public.runs set status = 'failed' where id = pg_temp.id('run_a1')$$, '42501', null,
  'a member cannot change a run');
select throws_ok($$delete from public.runs where id = pg_temp.id('run_a1')$$, '42501', null,
  'a member cannot delete a run');

-- Admin -----------------------------------------------------------------------------------------

select tests.clear_authentication();
select tests.authenticate_as(pg_temp.id('admin_a'));

select results_eq(
  $$insert into public.processors (organization_id, name, configuration)
    values (pg_temp.id('org_a'), 'admin made', '{"llm_profile": "balanced"}') returning name$$,
  array['admin made'], 'an admin creates a processor in their organization');
select results_eq(
  $$update public.processors set name = 'proc_a2 renamed', configuration = '{"settings_override": {"max_tokens": 512}}'
    where id = pg_temp.id('proc_a2') returning name$$,
  array['proc_a2 renamed'], 'an admin changes a processor''s name and configuration');
select throws_ok(
  $$update public.processors set configuration = '{"api_key": "sk-live-0123456789abcdef"}' where id = pg_temp.id('proc_a2')$$,
  '22023', null, 'an admin cannot put an API key into a processor''s configuration');
select throws_ok(
  $$update public.processors set organization_id = pg_temp.id('org_b') where id = pg_temp.id('proc_a2')$$,
  '42501', null, 'an admin cannot move a processor to another organization');
select throws_ok(
  $$insert into public.processors (organization_id, name) values (pg_temp.id('org_b'), 'planted')$$,
  '42501', null, 'an admin cannot create a processor in another organization');
select is_empty($$update public.processors set name = 'pwned' where id = pg_temp.id('proc_b1') returning id$$,
  'an admin cannot change another organization''s processor');
select is_empty($$delete from public.processors where id = pg_temp.id('proc_b1') returning id$$,
  'an admin cannot delete another organization''s processor');
select results_eq($$delete from public.processors where id = pg_temp.id('proc_a2') returning id$$,
  array[pg_temp.id('proc_a2')], 'an admin deletes a processor of their organization');
select throws_ok($$insert into public.runs (organization_id, processor_id) values (pg_temp.id('org_a'), pg_temp.id('proc_a1'))$$,
  '42501', null, 'an admin cannot create a run (runs are written by the backend)');

-- Owner -----------------------------------------------------------------------------------------

select tests.clear_authentication();
select tests.authenticate_as(pg_temp.id('owner_a'));

select results_eq(
  $$update public.processors set configuration = '{"llm_profile": "powerful"}' where id = pg_temp.id('proc_a1')
    returning configuration ->> 'llm_profile'$$,
  array['powerful'], 'an owner changes a processor''s configuration');
select results_eq($$delete from public.processors where name = 'admin made' returning name$$,
  array['admin made'], 'an owner deletes a processor');

-- Admin of another organization -----------------------------------------------------------------

select tests.clear_authentication();
select tests.authenticate_as(pg_temp.id('admin_b'));

select results_eq($$select id from public.processors$$, array[pg_temp.id('proc_b1')],
  'an admin of another organization reads only their own processors');
select results_eq($$select id from public.runs$$, array[pg_temp.id('run_b1')],
  'an admin of another organization reads only their own runs');
select is_empty($$update public.processors set name = 'pwned' where id = pg_temp.id('proc_a1') returning id$$,
  'an admin of another organization cannot change this organization''s processor');
select is_empty($$delete from public.processors where id = pg_temp.id('proc_a1') returning id$$,
  'an admin of another organization cannot delete this organization''s processor');
select throws_ok($$insert into public.processors (organization_id, name) values (pg_temp.id('org_a'), 'planted')$$,
  '42501', null, 'an admin of another organization cannot create a processor here');

-- user_metadata never grants anything -----------------------------------------------------------

select tests.clear_authentication();
select tests.authenticate_as(pg_temp.id('admin_b'), jsonb_build_object('organization_id', pg_temp.id('org_a')));

select results_eq($$select distinct organization_id from public.processors$$, array[pg_temp.id('org_b')],
  'user_metadata naming another organization does not reveal its processors');
select throws_ok($$insert into public.processors (organization_id, name) values (pg_temp.id('org_a'), 'planted')$$,
  '42501', null, 'user_metadata naming another organization does not let an admin create processors there');

-- A removed member's token is still valid, but membership is gone --------------------------------

select tests.clear_authentication();
delete from public.organization_members where user_id = pg_temp.id('member_a');
select tests.authenticate_as(pg_temp.id('member_a'));

select is_empty($$select * from public.processors$$, 'a removed member with a still-valid token sees no processor');
select is_empty($$select * from public.runs$$, 'a removed member with a still-valid token sees no run');

-- Service role ----------------------------------------------------------------------------------

select tests.clear_authentication();
select tests.authenticate_as_service_role();

select ok(
  (select count(distinct organization_id) from public.processors
   where organization_id in (pg_temp.id('org_a'), pg_temp.id('org_b'))) = 2,
  'the service role reads the processors of every organization'
);
select results_eq(
  $$insert into public.processors (organization_id, name) values (pg_temp.id('org_a'), 'service made') returning name$$,
  array['service made'], 'the service role creates a processor');
select results_eq(
  $$update public.processors set name = 'service renamed' where name = 'service made' returning name$$,
  array['service renamed'], 'the service role changes any processor');
select results_eq(
  $$insert into public.runs (organization_id, processor_id) values (pg_temp.id('org_a'), pg_temp.id('proc_a1')) returning status$$,
  array['pending'], 'the service role creates a run');
select results_eq(
  $$update public.runs set status = 'running' where status = 'pending' and organization_id = pg_temp.id('org_a') returning status$$,
  array['running'], 'the service role changes a run');
select results_eq(
  $$delete from public.runs where status = 'running' and organization_id = pg_temp.id('org_a') returning status$$,
  array['running'], 'the service role deletes a run');
select results_eq($$delete from public.processors where name = 'service renamed' returning name$$,
  array['service renamed'], 'the service role deletes a processor');

-- Deleting a processor keeps its history --------------------------------------------------------

select tests.clear_authentication();
select tests.authenticate_as(pg_temp.id('admin_a'));

select results_eq($$delete from public.processors where id = pg_temp.id('proc_a1') returning id$$,
  array[pg_temp.id('proc_a1')], 'an admin deletes a processor that has runs and usage');
select results_eq($$select processor_id from public.runs where id = pg_temp.id('run_a1')$$, array[null::uuid],
  'the deleted processor''s run survives with processor_id set to null');
select results_eq(
  $$select processor_id, run_id, input_tokens from public.llm_usage_logs where organization_id = pg_temp.id('org_a')$$,
  $$values (null::uuid, pg_temp.id('run_a1'), 1000)$$,
  'the deleted processor''s usage survives (billing history) with processor_id set to null'
);

-- What changed, seen by the table owner ---------------------------------------------------------

select tests.clear_authentication();

select results_eq(
  $$select p.name, p.configuration, r.status
    from public.processors as p join public.runs as r on r.processor_id = p.id
    where p.organization_id = pg_temp.id('org_b')$$,
  $$values ('proc_b1', '{"llm_profile": "powerful", "settings_override": {"temperature": 0.1}}'::jsonb, 'completed')$$,
  'the bystander organization''s processor and run are unchanged'
);

select * from finish();
rollback;
