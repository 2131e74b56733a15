-- Fallbacks: write-time validation of profile and processor `fallbacks` (unknown profile, model
-- not active in the catalog, cycle: SQLSTATE 22023 naming the JSON path), and their resolution
-- into `fallbacks` of get_effective_llm_config: order (depth first), settings, api_key_source,
-- what is left out, and that the processor's list replaces its profile's.
begin;
select plan(21);

-- Fixtures ------------------------------------------------------------------------------------
insert into public.llm_global_settings
  (provider, model_name, display_name, model_category, is_active, configuration, capabilities)
values
  ('mistral', 'test-fallback-model', 'Test Fallback Model', null, true, '{"temperature": 0.4}', '{"context_window": 32000}'),
  ('google', 'test-retired-model', 'Test Retired Model', null, false, '{}', '{}');

select tests.create_organization('Acme', '{
  "default_profile": "primary",
  "profiles": {
    "primary": {"provider": "openai", "model": "gpt-4o-mini", "fallbacks": ["second", {"provider": "mistral", "model": "test-fallback-model"}]},
    "second": {"provider": "anthropic", "model": "claude-haiku-4-5", "settings": {"max_tokens": 300}, "fallbacks": ["third"]},
    "third": {"provider": "google", "model": "gemini-2.5-flash"},
    "lonely": {"provider": "openai", "model": "gpt-4o"}
  }
}') as acme \gset
-- Scratch: an organization whose configuration the validation cases overwrite.
select tests.create_organization('Scratch') as scratch \gset
select tests.create_user('admin@acme.test', :'acme') as acme_admin \gset
select tests.add_member(:'acme', :'acme_admin', 'admin');
select tests.create_user('member@acme.test', :'acme') as acme_member \gset
select tests.add_member(:'acme', :'acme_member', 'member');

insert into public.processors (organization_id, name, configuration) values
  (:'acme', 'Own fallbacks', '{"llm_profile": "lonely", "settings_override": {"temperature": 0}, "fallbacks": ["third", "primary"]}')
returning id as own_fallbacks \gset
insert into public.processors (organization_id, name, configuration) values
  (:'acme', 'Profile fallbacks', '{"llm_profile": "second"}')
returning id as profile_fallbacks \gset

create function pg_temp.set_profiles(p_config text)
returns text
language sql
as $$
  select format('update public.organizations set llm_configuration = %L where name = %L', p_config, 'Scratch')
$$;

-- Validation of organization profiles ---------------------------------------------------------
select throws_like(
  pg_temp.set_profiles('{"profiles": {"a": {"provider": "openai", "model": "gpt-4o-mini", "fallbacks": ["nobody"]}}}'),
  tests.naming('llm_configuration.profiles.a.fallbacks[0]'),
  'a fallback naming an unknown profile is refused, naming its path'
);
select throws_like(
  pg_temp.set_profiles('{"profiles": {"a": {"provider": "openai", "model": "gpt-4o-mini", "fallbacks": [{"provider": "google", "model": "test-retired-model"}]}}}'),
  tests.naming('llm_configuration.profiles.a.fallbacks[0]'),
  'a fallback naming an inactive catalog model is refused'
);
select throws_like(
  pg_temp.set_profiles('{"profiles": {"a": {"provider": "openai", "model": "gpt-4o-mini", "fallbacks": ["a", {"provider": "openai", "model": "gpt-nonexistent"}]}}}'),
  tests.naming('llm_configuration.profiles.a.fallbacks[1]'),
  'a fallback naming a model the catalog does not have is refused, at its own index'
);
select throws_like(
  pg_temp.set_profiles('{"profiles": {"a": {"provider": "openai", "model": "gpt-4o-mini", "fallbacks": [{"provider": "openai", "model": "gpt-4o", "settings": {}}]}}}'),
  tests.naming('llm_configuration.profiles.a.fallbacks[0].settings'),
  'a catalog fallback with a field other than provider and model is refused'
);
select throws_like(
  pg_temp.set_profiles('{"profiles": {"a": {"provider": "openai", "model": "gpt-4o-mini", "fallbacks": "b"}}}'),
  tests.naming('llm_configuration.profiles.a.fallbacks'),
  'fallbacks that are not a list are refused'
);
select throws_like(
  pg_temp.set_profiles('{"profiles": {"a": {"provider": "openai", "model": "gpt-4o-mini", "fallbacks": ["a"]}}}'),
  tests.naming('llm_configuration.profiles.a.fallbacks'),
  'a profile naming itself as a fallback is a cycle'
);
select throws_like(
  pg_temp.set_profiles('{"profiles": {
    "a": {"provider": "openai", "model": "gpt-4o-mini", "fallbacks": ["b"]},
    "b": {"provider": "openai", "model": "gpt-4o", "fallbacks": ["c"]},
    "c": {"provider": "google", "model": "gemini-2.5-flash", "fallbacks": ["a"]}}}'),
  '%a -> b -> c -> a%',
  'a cycle through three profiles is refused, and the error names it'
);
select throws_ok(
  pg_temp.set_profiles('{"profiles": {"a": {"provider": "openai", "model": "gpt-4o-mini", "fallbacks": ["a"]}}}'),
  '22023', null,
  'fallback refusals are SQLSTATE 22023 (HTTP 400 through PostgREST)'
);
select lives_ok(
  pg_temp.set_profiles('{"profiles": {
    "a": {"provider": "openai", "model": "gpt-4o-mini", "fallbacks": ["b", "c"]},
    "b": {"provider": "openai", "model": "gpt-4o", "fallbacks": ["c"]},
    "c": {"provider": "google", "model": "gemini-2.5-flash"}}}'),
  'two paths to the same profile are not a cycle'
);

-- Validation of processor fallbacks, as an org admin writes them ----------------------------
select tests.authenticate_as(:'acme_admin');
select throws_like(
  format('insert into public.processors (organization_id, name, configuration) values (%L, %L, %L)',
         :'acme', 'Bad', '{"fallbacks": ["a"]}'),
  tests.naming('configuration.fallbacks[0]'),
  'a processor fallback naming a profile its organization does not have is refused (Scratch''s "a" is not Acme''s)'
);
select throws_like(
  format('update public.processors set configuration = %L where id = %L',
         '{"llm_profile": "second", "fallbacks": [{"provider": "google", "model": "test-retired-model"}]}', :'profile_fallbacks'),
  tests.naming('configuration.fallbacks[0]'),
  'a processor fallback naming an inactive catalog model is refused'
);
select lives_ok(
  format('insert into public.processors (organization_id, name, configuration) values (%L, %L, %L)',
         :'acme', 'Good', '{"fallbacks": ["third", {"provider": "openai", "model": "gpt-4o"}]}'),
  'an admin writes a processor whose fallbacks name their organization''s profiles and catalog models'
);
select tests.clear_authentication();

-- Resolution ------------------------------------------------------------------------------
select tests.authenticate_as_service_role();
select public.store_org_api_key(:'acme', 'anthropic', 'sk-ant-test-acme-fallback-0000') as acme_anthropic_secret \gset
select tests.clear_authentication();

-- What a fallback target must look like: the catalog row's defaults under the profile's settings.
create function pg_temp.target(p_provider text, p_model text, p_profile text, p_key_source text)
returns jsonb
language sql
as $$
  select jsonb_build_object(
    'provider', p_provider, 'model', p_model,
    'display_name', coalesce(g.display_name, p_model),
    'settings', coalesce(g.configuration, '{}')
    || coalesce((select o.llm_configuration -> 'profiles' -> p_profile -> 'settings'
                 from public.organizations as o where o.name = 'Acme'), '{}'),
    'capabilities', coalesce(g.capabilities, '{}'),
    'profile', p_profile,
    'api_key_source', p_key_source
  )
  from (select) as nothing
  left join public.llm_global_settings as g on g.provider = p_provider and g.model_name = p_model
$$;

select tests.authenticate_as(:'acme_member');
select is(
  public.get_effective_llm_config() -> 'fallbacks',
  jsonb_build_array(
    pg_temp.target('anthropic', 'claude-haiku-4-5', 'second', 'organization'),
    pg_temp.target('google', 'gemini-2.5-flash', 'third', 'system'),
    pg_temp.target('mistral', 'test-fallback-model', null, 'system')
  ),
  'the default profile''s fallbacks resolve depth first: a fallback profile''s own fallbacks come right after it'
);
select is(
  public.get_effective_llm_config() - 'fallbacks',
  jsonb_build_object(
    'provider', 'openai', 'model', 'gpt-4o-mini', 'profile', 'primary', 'source', 'organization',
    'api_key_source', 'system', 'display_name', 'GPT-4o mini'
  ) || jsonb_build_object(
    'settings', (select configuration from public.llm_global_settings where model_name = 'gpt-4o-mini'),
    'capabilities', (select capabilities from public.llm_global_settings where model_name = 'gpt-4o-mini')
  ),
  'the existing keys keep their meaning: they describe the primary target'
);
select is(
  public.get_effective_llm_config(:'own_fallbacks') -> 'fallbacks',
  jsonb_build_array(
    pg_temp.target('google', 'gemini-2.5-flash', 'third', 'system'),
    pg_temp.target('openai', 'gpt-4o-mini', 'primary', 'system'),
    pg_temp.target('anthropic', 'claude-haiku-4-5', 'second', 'organization'),
    pg_temp.target('mistral', 'test-fallback-model', null, 'system')
  ),
  'a processor''s fallbacks replace its profile''s; a target met twice is tried once, where it first comes'
);
select is(
  public.get_effective_llm_config(:'own_fallbacks') -> 'settings' ->> 'temperature',
  '0',
  'the processor''s settings_override applies to its primary target (and, above, to none of the fallbacks)'
);
select is(
  public.get_effective_llm_config(:'profile_fallbacks') -> 'fallbacks',
  jsonb_build_array(pg_temp.target('google', 'gemini-2.5-flash', 'third', 'system')),
  'a processor without fallbacks of its own uses its profile''s'
);

select public.get_effective_llm_config(:'own_fallbacks') as member_view \gset
select tests.clear_authentication();
select tests.authenticate_as_service_role();
select is(
  public.get_effective_llm_config_for_org(:'acme', :'own_fallbacks'),
  :'member_view'::jsonb,
  'the service role resolves the same fallbacks as a member'
);
select tests.clear_authentication();

update public.llm_global_settings set is_active = false where model_name = 'test-fallback-model';
update public.processors set configuration = '{"llm_profile": "lonely", "fallbacks": [{"provider": "openai", "model": "gpt-4o"}]}'
where id = :'profile_fallbacks';
select tests.authenticate_as(:'acme_member');
select is(
  public.get_effective_llm_config() -> 'fallbacks',
  jsonb_build_array(
    pg_temp.target('anthropic', 'claude-haiku-4-5', 'second', 'organization'),
    pg_temp.target('google', 'gemini-2.5-flash', 'third', 'system')
  ),
  'a catalog model deactivated since it was named is left out'
);
select is(
  public.get_effective_llm_config(:'profile_fallbacks') -> 'fallbacks',
  '[]'::jsonb,
  'a fallback that repeats the primary target''s provider and model is left out'
);
select is(
  public.get_effective_llm_config(:'own_fallbacks') -> 'fallbacks' -> 0 -> 'settings',
  pg_temp.target('google', 'gemini-2.5-flash', 'third', 'system') -> 'settings',
  'a fallback profile brings its own settings, not the processor''s overrides'
);
select tests.clear_authentication();

select * from finish();
rollback;
