-- RLS and grants of public.llm_global_settings, the model catalog: every signed-in user reads
-- all of it (it is not organization data); nobody but the service role writes it, not even an
-- organization's owner; anon gets nothing.
begin;
select plan(27);

-- Fixture: organization A (owner, admin, member, and a removed member), organization B (admin),
-- a stranger whose token names A, a user in no organization, and one catalog row of our own.
select tests.create_fixture_table();

do $$
declare
  v_org_a uuid;
  v_org_b uuid;
begin
  perform tests.create_cast();
  v_org_a := pg_temp.id('org_a');
  v_org_b := pg_temp.id('org_b');

  -- A model of our own, the default if the seed has none, so that a second default is a conflict.
  insert into public.llm_global_settings (provider, model_name, display_name, is_default, cost_per_million_input_tokens)
  values ('mistral', 'catalog-test-model', 'Catalog Test Model',
          not exists (select from public.llm_global_settings where is_default), 1.25);
  perform set_config('test.catalog_size', (select count(*) from public.llm_global_settings)::text, true);
end
$$;

-- The catalog size as the table owner sees it: what every signed-in user must see too.
create function pg_temp.catalog_size() returns bigint language sql stable
as $$ select current_setting('test.catalog_size')::bigint $$;

-- Structure -------------------------------------------------------------------------------------

select results_eq(
  $$select format('%s: %s to %s', policyname collate "default", cmd, roles) from pg_catalog.pg_policies
    where schemaname = 'public' and tablename = 'llm_global_settings' order by policyname$$,
  array['Signed-in users can read the model catalog: SELECT to {authenticated}'],
  'llm_global_settings has only a select policy, for signed-in users only (not anon)'
);

-- anon ------------------------------------------------------------------------------------------

select tests.authenticate_as_anon();

select throws_ok($$select * from public.llm_global_settings$$, '42501', null, 'anon cannot read the model catalog');
select throws_ok(
  $$insert into public.llm_global_settings (provider, model_name, display_name) values ('openai', 'anon-model', 'Anon')$$,
  '42501', null, 'anon cannot add a model');
select throws_ok($$update public.llm_global_settings set cost_per_million_input_tokens = 0$$, '42501', null,
  'anon cannot change prices');
select throws_ok($$delete from public.llm_global_settings$$, '42501', null, 'anon cannot delete models');

-- Signed-in users without an organization -------------------------------------------------------

select tests.clear_authentication();
select tests.authenticate_as(pg_temp.id('stranger'));

select is((select count(*) from public.llm_global_settings), pg_temp.catalog_size(),
  'a signed-in non-member reads the whole catalog (it is not organization data)');

select tests.clear_authentication();
select tests.authenticate_as(pg_temp.id('no_org'));

select is((select count(*) from public.llm_global_settings), pg_temp.catalog_size(),
  'a signed-in user in no organization reads the whole catalog');

-- Member ----------------------------------------------------------------------------------------

select tests.clear_authentication();
select tests.authenticate_as(pg_temp.id('member_a'));

select is((select count(*) from public.llm_global_settings), pg_temp.catalog_size(),
  'a member reads the whole catalog');
select throws_ok(
  $$insert into public.llm_global_settings (provider, model_name, display_name) values ('openai', 'member-model', 'Member')$$,
  '42501', null, 'a member cannot add a model');
select throws_ok(
  $$update public.llm_global_settings set cost_per_million_input_tokens = 0 where model_name = 'catalog-test-model'$$,
  '42501', null, 'a member cannot change prices');
select throws_ok($$delete from public.llm_global_settings where model_name = 'catalog-test-model'$$, '42501', null,
  'a member cannot delete a model');

-- Admin and owner -------------------------------------------------------------------------------

select tests.clear_authentication();
select tests.authenticate_as(pg_temp.id('admin_a'));

select throws_ok(
  $$insert into public.llm_global_settings (provider, model_name, display_name) values ('openai', 'admin-model', 'Admin')$$,
  '42501', null, 'an admin cannot add a model to the global catalog');
select throws_ok(
  $$update public.llm_global_settings set is_default = true where model_name = 'catalog-test-model'$$,
  '42501', null, 'an admin cannot change the global default model');
select throws_ok($$delete from public.llm_global_settings where model_name = 'catalog-test-model'$$, '42501', null,
  'an admin cannot delete a model');

select tests.clear_authentication();
select tests.authenticate_as(pg_temp.id('owner_a'));

select throws_ok(
  $$update public.llm_global_settings set cost_per_million_output_tokens = 0 where model_name = 'catalog-test-model'$$,
  '42501', null, 'an owner cannot change prices');

-- Members of another organization, removed members ----------------------------------------------

select tests.clear_authentication();
select tests.authenticate_as(pg_temp.id('admin_b'));

select is((select count(*) from public.llm_global_settings), pg_temp.catalog_size(),
  'a user of another organization reads the same catalog');

select tests.clear_authentication();
select tests.authenticate_as(pg_temp.id('former_a'));

select is((select count(*) from public.llm_global_settings), pg_temp.catalog_size(),
  'a removed member, still signed in, reads the catalog like any signed-in user');

-- Service role ----------------------------------------------------------------------------------

select tests.clear_authentication();
select tests.authenticate_as_service_role();

select is((select count(*) from public.llm_global_settings), pg_temp.catalog_size(),
  'the service role reads the whole catalog');
select results_eq(
  $$insert into public.llm_global_settings (provider, model_name, display_name, model_category)
    values ('openai', 'service-model', 'Service Model', 'fast') returning model_name$$,
  array['service-model'], 'the service role adds a model');
select results_eq(
  $$update public.llm_global_settings set cost_per_million_input_tokens = 0.5 where model_name = 'service-model'
    returning cost_per_million_input_tokens$$,
  array[0.5::numeric], 'the service role sets prices');
select throws_ok(
  $$insert into public.llm_global_settings (provider, model_name, display_name)
    values ('mistral', 'catalog-test-model', 'Duplicate')$$,
  '23505', null, 'the service role cannot list a provider''s model twice');
select throws_ok(
  $$update public.llm_global_settings set is_default = true where model_name = 'service-model'$$,
  '23505', null, 'the service role cannot make a second model the default');
select throws_ok(
  $$insert into public.llm_global_settings (provider, model_name, display_name) values ('acme-ai', 'x-1', 'X 1')$$,
  '23514', null, 'the catalog rejects an unsupported provider');
select throws_ok(
  $$update public.llm_global_settings set is_active = false where is_default$$,
  '23514', null, 'the default model cannot be deactivated');
select throws_ok(
  $$update public.llm_global_settings set configuration = '{"api_key": "sk-live-0123456789abcdef"}'
    where model_name = 'service-model'$$,
  '22023', null, 'the catalog''s default settings cannot hold an API key');
select results_eq($$delete from public.llm_global_settings where model_name = 'service-model' returning model_name$$,
  array['service-model'], 'the service role deletes a model');

-- What changed, seen by the table owner ---------------------------------------------------------

select tests.clear_authentication();

select results_eq(
  $$select cost_per_million_input_tokens, cost_per_million_output_tokens from public.llm_global_settings
    where model_name = 'catalog-test-model'$$,
  $$values (1.25::numeric(10, 4), null::numeric(10, 4))$$,
  'the denied writes left the catalog unchanged'
);

select * from finish();
rollback;
