-- Organization API keys in Vault: who may store, rotate, list, delete and read them, and that a
-- key is only ever stored encrypted, never echoed, and leaves with its organization.
begin;
select plan(65);

-- Fixtures ------------------------------------------------------------------------------------
-- Acme is the organization under test; Globex is a bystander whose key must stay untouched.
select tests.create_organization('Acme') as acme \gset
select tests.create_organization('Globex') as globex \gset

select tests.create_user('owner@acme.test', :'acme') as acme_owner \gset
select tests.create_user('admin@acme.test', :'acme') as acme_admin \gset
select tests.create_user('member@acme.test', :'acme') as acme_member \gset
select tests.create_user('former-admin@acme.test', :'acme') as former_admin \gset
select tests.create_user('admin@globex.test', :'globex') as globex_admin \gset
select tests.create_user('stranger@nowhere.test') as stranger \gset

select tests.add_member(:'acme', :'acme_owner', 'owner');
select tests.add_member(:'acme', :'acme_admin', 'admin');
select tests.add_member(:'acme', :'acme_member', 'member');
select tests.add_member(:'acme', :'former_admin', 'admin');
select tests.add_member(:'globex', :'globex_admin', 'admin');
-- Removed from Acme, but the access token still carries Acme in app_metadata until it expires.
delete from public.organization_members where organization_id = :'acme' and user_id = :'former_admin';

-- Fake keys, well-formed for the key API (never valid anywhere).
\set acme_openai_key 'sk-test-acme-openai-first-0001'
\set acme_openai_rotated 'sk-test-acme-openai-rotated-9z9Q'
\set acme_anthropic_key 'sk-ant-test-acme-anthropic-7b7B'
\set globex_openai_key 'sk-test-globex-openai-5x5X'

-- Every call of the key API against one organization, with a well-formed provider and key, so
-- that a refusal can only come from who is calling.
create function pg_temp.key_api_calls(p_organization_id uuid)
returns table (action text, call text)
language sql
as $$
  values
    ('store a key', format('select public.store_org_api_key(%L, %L, %L)', p_organization_id, 'openai', 'sk-test-intruder-key-0000')),
    ('delete a key', format('select public.delete_org_api_key(%L, %L)', p_organization_id, 'openai')),
    ('list the keys', format('select * from public.list_org_api_keys(%L)', p_organization_id)),
    ('read a decrypted key', format('select public.get_org_api_key(%L, %L)', p_organization_id, 'openai'))
$$;

-- Globex already has a key, stored by the backend.
select tests.authenticate_as_service_role();
select public.store_org_api_key(:'globex', 'openai', :'globex_openai_key') as globex_openai_secret \gset

-- Grants (erratum 1): the decrypting function is the service role's alone, whatever the
-- project's default privileges; anon reaches none of the key API. Checked as grants, because a
-- call could also fail further in and hide a stray grant.
select tests.clear_authentication();
select function_privs_are('public', 'get_org_api_key', array['uuid', 'text'], 'anon', array[]::text[],
  'anon has no EXECUTE on get_org_api_key');
select function_privs_are('public', 'get_org_api_key', array['uuid', 'text'], 'authenticated', array[]::text[],
  'authenticated has no EXECUTE on get_org_api_key');
select function_privs_are('public', 'get_org_api_key', array['uuid', 'text'], 'service_role', array['EXECUTE'],
  'the service role has EXECUTE on get_org_api_key');
select function_privs_are('public', 'store_org_api_key', array['uuid', 'text', 'text'], 'anon', array[]::text[],
  'anon has no EXECUTE on store_org_api_key');
select function_privs_are('public', 'delete_org_api_key', array['uuid', 'text'], 'anon', array[]::text[],
  'anon has no EXECUTE on delete_org_api_key');
select function_privs_are('public', 'list_org_api_keys', array['uuid'], 'anon', array[]::text[],
  'anon has no EXECUTE on list_org_api_keys');

-- Nobody but the service role and Acme's owners/admins touches Acme's keys -------------------
select tests.authenticate_as_anon();
select throws_ok(c.call, '42501', null, 'anon cannot ' || c.action) from pg_temp.key_api_calls(:'acme') as c;

select tests.clear_authentication();
select tests.authenticate_as(:'stranger');
select throws_ok(c.call, '42501', null, 'a signed-in user of no organization cannot ' || c.action)
from pg_temp.key_api_calls(:'acme') as c;

select tests.clear_authentication();
select tests.authenticate_as(:'acme_member');
select throws_ok(c.call, '42501', null, 'a plain member of the organization cannot ' || c.action)
from pg_temp.key_api_calls(:'acme') as c;

select tests.clear_authentication();
select tests.authenticate_as(:'globex_admin');
select throws_ok(c.call, '42501', null, 'an admin of another organization cannot ' || c.action)
from pg_temp.key_api_calls(:'acme') as c;

select tests.clear_authentication();
select tests.authenticate_as(:'former_admin');
select throws_ok(c.call, '42501', null, 'a removed admin whose token still names the organization cannot ' || c.action)
from pg_temp.key_api_calls(:'acme') as c;

-- user_metadata is editable by the user: claiming to be Acme's owner there counts for nothing.
select tests.clear_authentication();
select tests.authenticate_as(:'stranger', jsonb_build_object('organization_id', :'acme', 'role', 'owner'));
select throws_ok(c.call, '42501', null, 'a user claiming ownership in user_metadata cannot ' || c.action)
from pg_temp.key_api_calls(:'acme') as c;

-- Owners and admins manage their organization's keys ----------------------------------------
select tests.clear_authentication();
select tests.authenticate_as(:'acme_owner');
select public.store_org_api_key(:'acme', 'openai', :'acme_openai_key') as acme_openai_secret \gset
select isnt(:'acme_openai_secret'::uuid, null, 'an owner stores a key and gets its secret id back');
select results_eq(
  format('select provider, key_hint from public.list_org_api_keys(%L)', :'acme'),
  $$values ('openai', '0001')$$,
  'an owner lists the organization''s keys'
);

select tests.clear_authentication();
select tests.authenticate_as(:'acme_admin');
select public.store_org_api_key(:'acme', 'anthropic', :'acme_anthropic_key') as acme_anthropic_secret \gset
select isnt(:'acme_anthropic_secret'::uuid, null, 'an admin stores a key for another provider');
select isnt(:'acme_anthropic_secret'::uuid, :'acme_openai_secret'::uuid, 'each provider''s key is its own secret');
select is(
  public.store_org_api_key(:'acme', 'openai', :'acme_openai_rotated'),
  :'acme_openai_secret'::uuid,
  'rotating a key updates the existing secret instead of adding one'
);
select results_eq(
  format('select provider, key_hint from public.list_org_api_keys(%L)', :'acme'),
  $$values ('anthropic', '7b7B'), ('openai', '9z9Q')$$,
  'the list shows each provider with the last four characters of its current key, by provider'
);
select is(
  (select count(*) from public.list_org_api_keys(:'acme') as k where k.updated_at is null),
  0::bigint,
  'the list tells when each key was last set'
);
select throws_ok(
  format('select public.get_org_api_key(%L, %L)', :'acme', 'openai'),
  '42501', null,
  'even an admin of the organization cannot read a decrypted key'
);
select throws_ok('select count(*) from vault.secrets', '42501', null, 'an admin cannot read Vault directly');
select throws_ok(
  format('select public.store_org_api_key(%L, %L, %L)', gen_random_uuid(), 'openai', :'acme_openai_key'),
  '42501', null,
  'an admin cannot store a key for an organization that does not exist (no hint that it does not)'
);

-- Bad input is refused without echoing the key.
select throws_ok(
  format('select public.store_org_api_key(%L, %L, %L)', :'acme', 'cohere', :'acme_openai_key'),
  '22023', null,
  'an unknown provider is an invalid parameter'
);
select is(
  strpos(tests.error_of(format('select public.store_org_api_key(%L, %L, %L)', :'acme', 'cohere', :'acme_openai_key'))::text,
         :'acme_openai_key'),
  0,
  'the unknown-provider error (message, detail, hint) does not contain the key'
);
select throws_ok(
  format('select public.store_org_api_key(%L, %L, %L)', :'acme', 'openai', 'sk-test pasted with spaces'),
  '22023', null,
  'a key with spaces is malformed'
);
select is(
  strpos(tests.error_of(format('select public.store_org_api_key(%L, %L, %L)', :'acme', 'openai', 'sk-test pasted with spaces'))::text,
         'sk-test pasted with spaces'),
  0,
  'the malformed-key error (message, detail, hint) does not contain the key'
);
select throws_ok(
  format('select public.store_org_api_key(%L, %L, %L)', :'acme', 'openai', 'sk-1'),
  '22023', null,
  'a key too short to be real is malformed'
);
select throws_ok(
  format('select public.store_org_api_key(%L, %L, null)', :'acme', 'openai'),
  '22023', null,
  'a null key is malformed'
);
select throws_ok(
  format('select public.delete_org_api_key(%L, %L)', :'acme', 'cohere'),
  '22023', null,
  'deleting the key of an unknown provider is an invalid parameter'
);

select is(public.delete_org_api_key(:'acme', 'anthropic'), true, 'an admin deletes a stored key: true');
select is(public.delete_org_api_key(:'acme', 'anthropic'), false, 'deleting a key that is not there: false');
select results_eq(
  format('select provider from public.list_org_api_keys(%L)', :'acme'),
  $$values ('openai')$$,
  'a deleted key is no longer listed'
);

-- The service role (the gateway and the backend) manages and reads any organization's keys --
select tests.authenticate_as_service_role();
select is(public.get_org_api_key(:'acme', 'openai'), :'acme_openai_rotated', 'the service role reads the current decrypted key');
select is(public.get_org_api_key(:'acme', 'anthropic'), null, 'a deleted key reads as null');
select is(public.get_org_api_key(:'acme', 'google'), null, 'a key never stored reads as null');
select is(public.get_org_api_key(:'globex', 'openai'), :'globex_openai_key', 'the bystander''s key is unchanged by all of the above');
select throws_ok(
  format('select public.get_org_api_key(%L, %L)', :'acme', 'cohere'),
  '22023', null,
  'reading the key of an unknown provider is an invalid parameter'
);
select results_eq(
  format('select provider, key_hint from public.list_org_api_keys(%L)', :'globex'),
  $$values ('openai', '5x5X')$$,
  'the service role lists any organization''s keys'
);
select isnt(
  public.store_org_api_key(:'acme', 'google', 'AIzaTestAcmeGoogleKey0000000000000042'),
  null,
  'the service role stores a key for any organization'
);
select is(public.delete_org_api_key(:'acme', 'google'), true, 'the service role deletes a key');
select throws_ok(
  format('select public.store_org_api_key(%L, %L, %L)', gen_random_uuid(), 'openai', :'acme_openai_key'),
  'PT404', null,
  'the service role storing a key for an unknown organization gets not found'
);
select throws_ok(
  format('select public.delete_org_api_key(%L, %L)', gen_random_uuid(), 'openai'),
  'PT404', null,
  'the service role deleting a key of an unknown organization gets not found'
);
select results_eq(
  format($$select d.decrypted_secret from vault.decrypted_secrets as d where d.decrypted_secret in (%L, %L)$$,
         :'acme_openai_key', :'acme_openai_rotated'),
  format('values (%L)', :'acme_openai_rotated'),
  'after rotation Vault holds the new key once and the old key nowhere'
);
select is(
  (select d.decrypted_secret from vault.decrypted_secrets as d where d.id = :'acme_openai_secret'),
  :'acme_openai_rotated',
  'vault.decrypted_secrets decrypts the key for the service role'
);

-- At rest --------------------------------------------------------------------------------------
select tests.clear_authentication();
select is_empty(
  format(
    $$select from vault.secrets as s, unnest(array[%L, %L, %L, %L]) as k (key)
      where strpos(s.secret, k.key) > 0 or strpos(s.name, k.key) > 0 or strpos(s.description, k.key) > 0$$,
    :'acme_openai_key', :'acme_openai_rotated', :'acme_anthropic_key', :'globex_openai_key'
  ),
  'no stored secret, name or description equals or contains a key: Vault holds ciphertext only'
);

-- Deleting an organization deletes its keys --------------------------------------------------
select tests.authenticate_as_service_role();
delete from public.organizations where id = :'acme';
select is_empty(
  format('select from vault.secrets where id = %L', :'acme_openai_secret'),
  'deleting an organization removes its secrets from Vault'
);
select isnt_empty(
  format('select from vault.secrets where id = %L', :'globex_openai_secret'),
  'deleting one organization leaves other organizations'' secrets in place'
);

select * from finish();
rollback;
