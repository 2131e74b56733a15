-- RLS and grants of public.organizations, identity by identity: members read their own
-- organization; owners and admins change its name and llm_configuration; nobody signed in creates
-- or deletes one; the service role manages all; anon gets nothing.
begin;
select plan(34);

-- Fixture: tests.create_cast() (organization A with owner, admin, member and a removed member;
-- bystander organization B with an admin and an llm_configuration; a stranger whose token names A
-- without membership; a user whose token names no organization).
-- Ids are random; pg_temp.id(name) looks them up for every role.
select tests.create_fixture_table();

select tests.create_cast();
update public.organizations
set llm_configuration = '{"default_profile": "fast", "profiles": {"fast": {"provider": "openai", "model": "gpt-4o-mini"}}}'
where id = pg_temp.id('org_b');

-- Structure -------------------------------------------------------------------------------------

select results_eq(
  $$select format('%s: %s to %s', policyname collate "default", cmd, roles) from pg_catalog.pg_policies
    where schemaname = 'public' and tablename = 'organizations' order by policyname$$,
  array['Members can read their organization: SELECT to {authenticated}',
        'Org admins can update their organization: UPDATE to {authenticated}'],
  'organizations has one select and one update policy, both for signed-in users only'
);

-- anon ------------------------------------------------------------------------------------------

select tests.authenticate_as_anon();

select throws_ok($$select * from public.organizations$$, '42501', null, 'anon cannot read organizations');
select throws_ok($$insert into public.organizations (name) values ('Anon Inc')$$, '42501', null,
  'anon cannot create an organization');
select throws_ok($$update public.organizations set name = 'Pwned'$$, '42501', null,
  'anon cannot rename an organization');
select throws_ok($$delete from public.organizations$$, '42501', null, 'anon cannot delete an organization');

-- Stranger: the token names organization A, but the user is not a member ------------------------

select tests.clear_authentication();
select tests.authenticate_as(pg_temp.id('stranger'));

select is_empty($$select * from public.organizations$$,
  'a signed-in non-member whose token names the organization sees no organization');
select is_empty($$update public.organizations set name = 'Pwned' where id = pg_temp.id('org_a') returning id$$,
  'a signed-in non-member cannot rename the organization its token names');
select throws_ok($$delete from public.organizations where id = pg_temp.id('org_a')$$, '42501', null,
  'a signed-in non-member cannot delete an organization');

-- Member ----------------------------------------------------------------------------------------

select tests.clear_authentication();
select tests.authenticate_as(pg_temp.id('member_a'));

select results_eq($$select id from public.organizations$$, array[pg_temp.id('org_a')],
  'a member reads their own organization and no other');
select is_empty($$update public.organizations set name = 'Renamed' where id = pg_temp.id('org_a') returning id$$,
  'a member cannot rename their organization');
select is_empty(
  $$update public.organizations set llm_configuration = null where id = pg_temp.id('org_a') returning id$$,
  'a member cannot change their organization''s llm_configuration'
);
select throws_ok($$insert into public.organizations (name) values ('Side Project')$$, '42501', null,
  'a member cannot create an organization');

-- Admin -----------------------------------------------------------------------------------------

select tests.clear_authentication();
select tests.authenticate_as(pg_temp.id('admin_a'));

select results_eq(
  $$update public.organizations
    set llm_configuration = '{"default_profile": "fast", "profiles": {"fast": {"provider": "anthropic", "model": "claude-haiku-4-5"}}}'
    where id = pg_temp.id('org_a') returning id$$,
  array[pg_temp.id('org_a')],
  'an admin changes their organization''s llm_configuration'
);
select throws_ok(
  $$update public.organizations
    set llm_configuration = '{"profiles": {"fast": {"provider": "openai", "model": "gpt-4o", "api_key": "sk-live-0123456789abcdef"}}}'
    where id = pg_temp.id('org_a')$$,
  '22023', null,
  'an admin cannot put an API key into llm_configuration'
);
select is_empty(
  $$update public.organizations set llm_configuration = null where id = pg_temp.id('org_b') returning id$$,
  'an admin cannot change another organization''s llm_configuration'
);
select throws_ok($$update public.organizations set created_at = now() where id = pg_temp.id('org_a')$$,
  '42501', null, 'an admin can change only name and llm_configuration');
select throws_ok($$delete from public.organizations where id = pg_temp.id('org_a')$$, '42501', null,
  'an admin cannot delete their organization');
select throws_ok($$insert into public.organizations (name) values ('Spin-off')$$, '42501', null,
  'an admin cannot create an organization');

-- Owner -----------------------------------------------------------------------------------------

select tests.clear_authentication();
select tests.authenticate_as(pg_temp.id('owner_a'));

select results_eq($$update public.organizations set name = 'Acme Renamed' where id = pg_temp.id('org_a') returning name$$,
  array['Acme Renamed'], 'an owner renames their organization');
select throws_ok($$delete from public.organizations where id = pg_temp.id('org_a')$$, '42501', null,
  'an owner cannot delete their organization through the API');

-- Admin of another organization -----------------------------------------------------------------

select tests.clear_authentication();
select tests.authenticate_as(pg_temp.id('admin_b'));

select results_eq($$select id from public.organizations$$, array[pg_temp.id('org_b')],
  'an admin of another organization reads only their own organization');
select is_empty($$update public.organizations set name = 'Pwned' where id = pg_temp.id('org_a') returning id$$,
  'an admin of another organization cannot rename this one');

-- user_metadata never grants anything -----------------------------------------------------------

select tests.clear_authentication();
select tests.authenticate_as(pg_temp.id('admin_b'), jsonb_build_object('organization_id', pg_temp.id('org_a')));

select results_eq($$select id from public.organizations$$, array[pg_temp.id('org_b')],
  'user_metadata naming another organization does not let an admin read it');

select tests.clear_authentication();
select tests.authenticate_as(pg_temp.id('no_org'), jsonb_build_object('organization_id', pg_temp.id('org_a')));

select is_empty($$select * from public.organizations$$,
  'a user whose only claim to an organization is user_metadata sees nothing');
select is_empty($$update public.organizations set name = 'Pwned' where id = pg_temp.id('org_a') returning id$$,
  'a user whose only claim to an organization is user_metadata cannot rename it');

-- A removed admin's token is still valid, but membership is gone ---------------------------------

select tests.clear_authentication();
select tests.authenticate_as(pg_temp.id('owner_a'));
select lives_ok(
  $$delete from public.organization_members where user_id = pg_temp.id('admin_a')$$,
  'the owner removes the admin from the organization'
);

select tests.clear_authentication();
select tests.authenticate_as(pg_temp.id('admin_a'));

select is_empty($$select * from public.organizations$$,
  'a removed admin with a still-valid token no longer sees the organization');
select is_empty(
  $$update public.organizations set llm_configuration = null where id = pg_temp.id('org_a') returning id$$,
  'a removed admin with a still-valid token can no longer change llm_configuration'
);

-- Service role ----------------------------------------------------------------------------------

select tests.authenticate_as_service_role();

select ok(
  (select count(*) from public.organizations where id in (pg_temp.id('org_a'), pg_temp.id('org_b'))) = 2,
  'the service role reads every organization'
);
select results_eq($$insert into public.organizations (name) values ('New Co') returning name$$,
  array['New Co'], 'the service role creates an organization');
select results_eq($$update public.organizations set name = 'New Co Ltd' where name = 'New Co' returning name$$,
  array['New Co Ltd'], 'the service role renames any organization');
select results_eq($$delete from public.organizations where name = 'New Co Ltd' returning name$$,
  array['New Co Ltd'], 'the service role deletes an organization');

-- What changed, seen by the table owner ---------------------------------------------------------

select tests.clear_authentication();

select results_eq(
  $$select name, llm_configuration from public.organizations where id = pg_temp.id('org_b')$$,
  $$values ('Bystander', '{"default_profile": "fast", "profiles": {"fast": {"provider": "openai", "model": "gpt-4o-mini"}}}'::jsonb)$$,
  'the bystander organization is unchanged'
);
select results_eq(
  $$select name, llm_configuration ->> 'default_profile', llm_configuration #>> '{profiles,fast,model}'
    from public.organizations where id = pg_temp.id('org_a')$$,
  $$values ('Acme Renamed', 'fast', 'claude-haiku-4-5')$$,
  'organization A holds exactly the owner''s name and the admin''s configuration'
);

select * from finish();
rollback;
