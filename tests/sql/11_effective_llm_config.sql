-- Resolution of the effective LLM configuration: who may resolve for which organization, each
-- tier of processor → organization → global, how settings merge, the output shape, and that the
-- user-facing and service-role functions give the same answer.
begin;
select plan(41);

-- Fixtures ------------------------------------------------------------------------------------
-- Catalog rows owned by this test, so that merges and picks have known inputs:
-- a tuned model with defaults of its own, and the 'specialized' category (empty in the seed)
-- holding a retired model that sorts first and one active model.
insert into public.llm_global_settings
  (provider, model_name, display_name, model_category, is_active, configuration, capabilities)
values
  ('openai', 'test-tuned-model', 'Test Tuned Model', null, true,
   '{"temperature": 0.9, "top_p": 0.8, "max_tokens": 1000}', '{"context_window": 64000, "supports_tools": true}'),
  ('mistral', 'a-retired-specialist', 'A Retired Specialist', 'specialized', false, '{}', '{}'),
  ('mistral', 'b-specialist', 'B Specialist', 'specialized', true, '{"temperature": 0.3, "top_k": 40}', '{"domain": "legal"}');

-- Acme: three profiles, one of them named like a catalog category, one on a model the catalog
-- does not know.
select tests.create_organization('Acme', '{
  "default_profile": "everyday",
  "profiles": {
    "everyday": {"provider": "openai", "model": "test-tuned-model", "settings": {"temperature": 0.2}},
    "frontier": {"provider": "openai", "model": "gpt-9-preview", "settings": {"max_tokens": 2048}},
    "powerful": {"provider": "anthropic", "model": "claude-opus-4-5"}
  }
}') as acme \gset
-- Initech: no LLM configuration at all. Umbrella: profiles but no default profile.
select tests.create_organization('Initech') as initech \gset
select tests.create_organization('Umbrella', '{
  "profiles": {"cheap": {"provider": "google", "model": "gemini-2.5-flash"}}
}') as umbrella \gset
-- Globex: a bystander with a default profile of its own.
select tests.create_organization('Globex', '{
  "default_profile": "house",
  "profiles": {"house": {"provider": "mistral", "model": "mistral-small-latest"}}
}') as globex \gset

insert into public.processors (organization_id, name, configuration) values
  (:'acme', 'Org profile with override', '{"llm_profile": "everyday", "settings_override": {"max_tokens": 500}}')
returning id as acme_profiled \gset
insert into public.processors (organization_id, name, configuration) values
  (:'acme', 'Model outside the catalog', '{"llm_profile": "frontier"}')
returning id as acme_uncatalogued \gset
insert into public.processors (organization_id, name, configuration) values
  (:'acme', 'Org profile named like a category', '{"llm_profile": "powerful"}')
returning id as acme_powerful \gset
insert into public.processors (organization_id, name, configuration) values
  (:'acme', 'Catalog category', '{"llm_profile": "specialized", "settings_override": {"temperature": 0.1}}')
returning id as acme_category \gset
insert into public.processors (organization_id, name, configuration) values
  (:'acme', 'Profile nobody defines', '{"llm_profile": "experimental", "settings_override": {"seed": 7}}')
returning id as acme_unknown_profile \gset
insert into public.processors (organization_id, name, configuration) values
  (:'acme', 'No profile', '{"prompt_template": "Summarise: {{text}}"}')
returning id as acme_plain \gset
insert into public.processors (organization_id, name, configuration) values
  (:'initech', 'Initech override', '{"llm_profile": "experimental", "settings_override": {"temperature": 0}}')
returning id as initech_override \gset
insert into public.processors (organization_id, name, configuration) values
  (:'umbrella', 'Umbrella cheap', '{"llm_profile": "cheap"}')
returning id as umbrella_cheap \gset
insert into public.processors (organization_id, name, configuration) values
  (:'globex', 'Globex secret sauce', '{"llm_profile": "house"}')
returning id as globex_processor \gset

select tests.create_user('member@acme.test', :'acme') as acme_member \gset
select tests.create_user('member@initech.test', :'initech') as initech_member \gset
select tests.create_user('member@umbrella.test', :'umbrella') as umbrella_member \gset
-- A member of both Acme and Globex whose token names Globex.
select tests.create_user('consultant@globex.test', :'globex') as consultant \gset
select tests.create_user('stranger@nowhere.test') as stranger \gset
-- A token naming Acme, of a user who is not (or no longer) a member of it.
select tests.create_user('outsider@acme.test', :'acme') as outsider \gset

select tests.add_member(:'acme', :'acme_member', 'member');
select tests.add_member(:'initech', :'initech_member', 'member');
select tests.add_member(:'umbrella', :'umbrella_member', 'member');
select tests.add_member(:'acme', :'consultant', 'member');
select tests.add_member(:'globex', :'consultant', 'member');

-- The normalized result for a catalog model, as resolution must build it from the catalog row.
create function pg_temp.from_catalog(p_provider text, p_model text, p_extra jsonb)
returns jsonb
language sql
as $$
  select jsonb_build_object(
    'provider', g.provider, 'model', g.model_name, 'display_name', g.display_name,
    'settings', g.configuration, 'capabilities', g.capabilities, 'fallbacks', '[]'::jsonb
  ) || p_extra
  from public.llm_global_settings as g
  where g.provider = p_provider and g.model_name = p_model
$$;

-- Who may resolve, and for which organization ---------------------------------------------
select tests.authenticate_as_anon();
select throws_ok('select public.get_effective_llm_config()', '42501', null, 'anon cannot resolve a configuration');
select throws_ok(format('select public.get_effective_llm_config_for_org(%L)', :'acme'), '42501', null,
  'anon cannot resolve for an explicit organization');

select tests.clear_authentication();
select tests.authenticate_as(:'stranger');
select throws_ok('select public.get_effective_llm_config()', '42501', null,
  'a signed-in user whose token names no organization cannot resolve');

select tests.clear_authentication();
select tests.authenticate_as(:'stranger', jsonb_build_object('organization_id', :'acme'));
select throws_ok('select public.get_effective_llm_config()', '42501', null,
  'naming an organization in user_metadata does not make it the caller''s');

select tests.clear_authentication();
select tests.authenticate_as(:'outsider');
select throws_ok('select public.get_effective_llm_config()', '42501', null,
  'a token naming an organization the user is not a member of resolves nothing');

select tests.clear_authentication();
select tests.authenticate_as(:'acme_member');
select throws_ok(format('select public.get_effective_llm_config_for_org(%L)', :'acme'), '42501', null,
  'a member cannot use the service role''s variant, even for their own organization');
select throws_ok(format('select public.get_effective_llm_config(%L)', :'globex_processor'), 'PT404', null,
  'a member asking for another organization''s processor gets not found');
select is(
  tests.error_of(format('select public.get_effective_llm_config(%L)', :'globex_processor')),
  tests.error_of(format('select public.get_effective_llm_config(%L)', gen_random_uuid())),
  'another organization''s processor fails exactly like one that does not exist'
);

select tests.clear_authentication();
select tests.authenticate_as(:'consultant');
select is(
  public.get_effective_llm_config() ->> 'profile',
  'house',
  'a member of two organizations resolves for the one their token names'
);
select throws_ok(format('select public.get_effective_llm_config(%L)', :'acme_plain'), 'PT404', null,
  'a member of two organizations resolves only processors of the one their token names');

select tests.authenticate_as_service_role();
select throws_ok('select public.get_effective_llm_config()', '42501', null,
  'the service role has no organization of its own to resolve for');
select throws_ok(format('select public.get_effective_llm_config_for_org(%L)', gen_random_uuid()), 'PT404', null,
  'the service role resolving for an unknown organization gets not found');
select throws_ok(format('select public.get_effective_llm_config_for_org(%L, %L)', :'acme', :'globex_processor'), 'PT404', null,
  'the service role asking for a processor under the wrong organization gets not found');

-- Tier 1: the processor's profile -------------------------------------------------------------
select tests.clear_authentication();
select tests.authenticate_as(:'acme_member');
select is(
  public.get_effective_llm_config(:'acme_profiled') -> 'settings',
  '{"temperature": 0.2, "top_p": 0.8, "max_tokens": 500}'::jsonb,
  'settings merge key by key: catalog top_p kept, the profile''s temperature over the catalog''s, the processor''s max_tokens over both'
);
select is(
  public.get_effective_llm_config(:'acme_profiled') - 'settings',
  '{"provider": "openai", "model": "test-tuned-model", "display_name": "Test Tuned Model",
    "capabilities": {"context_window": 64000, "supports_tools": true},
    "profile": "everyday", "source": "processor", "api_key_source": "system", "fallbacks": []}'::jsonb,
  'a processor naming one of the org''s profiles gets that profile, with the catalog''s name and capabilities'
);
select is(
  public.get_effective_llm_config(:'acme_uncatalogued'),
  '{"provider": "openai", "model": "gpt-9-preview", "display_name": "gpt-9-preview",
    "settings": {"max_tokens": 2048}, "capabilities": {},
    "profile": "frontier", "source": "processor", "api_key_source": "system", "fallbacks": []}'::jsonb,
  'a model the catalog does not know is named by its id, with no capabilities and only the profile''s settings'
);
select is(
  public.get_effective_llm_config(:'acme_powerful'),
  pg_temp.from_catalog('anthropic', 'claude-opus-4-5',
    '{"profile": "powerful", "source": "processor", "api_key_source": "system"}'),
  'the org''s own profile wins over the catalog category of the same name'
);
select is(
  public.get_effective_llm_config(:'acme_category'),
  pg_temp.from_catalog('mistral', 'b-specialist',
    '{"profile": "specialized", "source": "processor", "api_key_source": "system"}')
    || '{"settings": {"temperature": 0.1, "top_k": 40}}',
  'a profile the org lacks falls back to the active catalog model of that category, overrides applied'
);

-- Tier 2: the organization's default profile ------------------------------------------------
select is(
  public.get_effective_llm_config(:'acme_unknown_profile'),
  pg_temp.from_catalog('openai', 'test-tuned-model',
    '{"profile": "everyday", "source": "organization", "api_key_source": "system"}')
    || '{"settings": {"temperature": 0.2, "top_p": 0.8, "max_tokens": 1000, "seed": 7}}',
  'a profile neither the org nor the catalog knows falls back to the org''s default profile, overrides applied'
);
select is(
  public.get_effective_llm_config(:'acme_plain'),
  pg_temp.from_catalog('openai', 'test-tuned-model',
    '{"profile": "everyday", "source": "organization", "api_key_source": "system"}')
    || '{"settings": {"temperature": 0.2, "top_p": 0.8, "max_tokens": 1000}}',
  'a processor without a profile gets the org''s default profile; its other configuration is ignored'
);
select is(
  public.get_effective_llm_config(),
  public.get_effective_llm_config(:'acme_plain'),
  'without a processor the org''s default profile applies'
);

-- Tier 3: the global default ------------------------------------------------------------------
select tests.clear_authentication();
select tests.authenticate_as(:'initech_member');
select is(
  public.get_effective_llm_config(),
  (select pg_temp.from_catalog(g.provider, g.model_name, '{"profile": null, "source": "global", "api_key_source": "system"}')
   from public.llm_global_settings as g where g.is_default),
  'an org without LLM configuration gets the catalog''s default model, with no profile'
);
select is(
  public.get_effective_llm_config(:'initech_override'),
  (select pg_temp.from_catalog(g.provider, g.model_name, '{"profile": null, "source": "global", "api_key_source": "system"}')
     || jsonb_build_object('settings', g.configuration || '{"temperature": 0}')
   from public.llm_global_settings as g where g.is_default),
  'a processor falling through to the global default still applies its overrides'
);

select tests.clear_authentication();
select tests.authenticate_as(:'umbrella_member');
select is(
  public.get_effective_llm_config() ->> 'source',
  'global',
  'an org with profiles but no default profile falls back to the global default'
);
select is(
  public.get_effective_llm_config(:'umbrella_cheap'),
  pg_temp.from_catalog('google', 'gemini-2.5-flash', '{"profile": "cheap", "source": "processor", "api_key_source": "system"}'),
  'such an org''s processors still get the profile they name'
);

-- The output ------------------------------------------------------------------------------------
select tests.clear_authentication();
select tests.authenticate_as(:'acme_member');
select results_eq(
  $$select distinct array(select jsonb_object_keys(r.config) order by 1)
    from (select public.get_effective_llm_config(p.id) as config
          from (select id from public.processors union all select null) as p) as r$$,
  $$values (array['api_key_source', 'capabilities', 'display_name', 'fallbacks', 'model', 'profile', 'provider', 'settings', 'source'])$$,
  'every result, whatever the tier, has exactly the nine documented keys'
);

-- api_key_source: the org's own key for the resolved provider, else the system's --------------
select tests.authenticate_as_service_role();
\set acme_openai_key 'sk-test-acme-openai-resolution-1111'
select public.store_org_api_key(:'acme', 'openai', :'acme_openai_key') as acme_openai_secret \gset
select public.store_org_api_key(:'globex', 'anthropic', 'sk-ant-test-globex-anthropic-2222') as globex_anthropic_secret \gset

select tests.clear_authentication();
select tests.authenticate_as(:'acme_member');
select is(
  public.get_effective_llm_config(:'acme_profiled') ->> 'api_key_source',
  'organization',
  'a resolved provider the org has a key for uses the org''s key'
);
select is(
  public.get_effective_llm_config(:'acme_powerful') ->> 'api_key_source',
  'system',
  'a resolved provider the org has no key for uses the system key, whoever else has one'
);
select is(
  (select count(*) from public.processors as p
   where strpos(public.get_effective_llm_config(p.id)::text, :'acme_openai_key') > 0
      or strpos(public.get_effective_llm_config(p.id)::text, :'acme_openai_secret') > 0),
  0::bigint,
  'no result carries the org''s key or its secret id'
);

select tests.authenticate_as_service_role();
select is(
  public.get_effective_llm_config_for_org(:'acme', :'acme_profiled') ->> 'api_key_source',
  'organization',
  'the service role sees the same key source for the org'
);
select is(
  public.get_effective_llm_config_for_org(:'globex', :'globex_processor') ->> 'api_key_source',
  'system',
  'a key for another provider does not count for the resolved one'
);
select public.delete_org_api_key(:'acme', 'openai') as deleted \gset
select is(
  public.get_effective_llm_config_for_org(:'acme', :'acme_profiled') ->> 'api_key_source',
  'system',
  'once the org''s key is deleted the system key is used again'
);
select public.store_org_api_key(:'acme', 'openai', :'acme_openai_key') as acme_openai_secret \gset

-- Both functions agree --------------------------------------------------------------------------
-- Each member resolves every processor of their org and none; the service role must get the
-- same answers for that org.
create function pg_temp.all_resolutions(p_organization_id uuid, p_as_service_role boolean)
returns jsonb
language plpgsql
as $$
declare
  v_result jsonb := '{}';
  v_processor_id uuid;
  v_config jsonb;
begin
  for v_processor_id in
    select id from public.processors where organization_id = p_organization_id union all select null
  loop
    -- Separate statements: each role may execute only the function granted to it.
    if p_as_service_role then
      v_config := public.get_effective_llm_config_for_org(p_organization_id, v_processor_id);
    else
      v_config := public.get_effective_llm_config(v_processor_id);
    end if;
    v_result := v_result || jsonb_build_object(coalesce(v_processor_id::text, 'no processor'), v_config);
  end loop;
  return v_result;
end
$$;

select tests.clear_authentication();
select tests.authenticate_as(:'acme_member');
select pg_temp.all_resolutions(:'acme', false) as acme_by_member \gset
select tests.clear_authentication();
select tests.authenticate_as(:'initech_member');
select pg_temp.all_resolutions(:'initech', false) as initech_by_member \gset
select tests.clear_authentication();
select tests.authenticate_as(:'umbrella_member');
select pg_temp.all_resolutions(:'umbrella', false) as umbrella_by_member \gset

select tests.authenticate_as_service_role();
select is(pg_temp.all_resolutions(:'acme', true), :'acme_by_member'::jsonb,
  'both functions agree for every processor of an org with profiles and a stored key');
select is(pg_temp.all_resolutions(:'initech', true), :'initech_by_member'::jsonb,
  'both functions agree for an org that falls through to the global default');
select is(pg_temp.all_resolutions(:'umbrella', true), :'umbrella_by_member'::jsonb,
  'both functions agree for an org with profiles but no default profile');
select is((select count(*) from jsonb_object_keys(:'acme_by_member'::jsonb)), 7::bigint,
  'the comparison covered all six of Acme''s processors and the no-processor case');

-- The catalog's default decides the fallbacks -------------------------------------------------
-- Move the global default into 'specialized': it now comes first there, ahead of a model that
-- sorts before it, and becomes the global tier's answer.
select tests.clear_authentication();
update public.llm_global_settings set is_default = false where is_default;
insert into public.llm_global_settings
  (provider, model_name, display_name, model_category, is_default, configuration, capabilities)
values ('mistral', 'z-specialist', 'Z Specialist', 'specialized', true, '{"temperature": 0.4}', '{"domain": "medical"}');

select tests.authenticate_as(:'acme_member');
select is(
  public.get_effective_llm_config(:'acme_category') ->> 'model',
  'z-specialist',
  'in the category fallback the default model comes first'
);
select tests.clear_authentication();
select tests.authenticate_as(:'initech_member');
select is(
  public.get_effective_llm_config(),
  pg_temp.from_catalog('mistral', 'z-specialist', '{"profile": null, "source": "global", "api_key_source": "system"}'),
  'the global tier follows whichever model the catalog marks as default'
);

-- No active default at all: a clear error, never a silent null.
select tests.clear_authentication();
update public.llm_global_settings set is_default = false where is_default;

select tests.authenticate_as(:'initech_member');
select throws_ok('select public.get_effective_llm_config()', 'PT503', null,
  'with no default model in the catalog, falling through to the global tier is an error (HTTP 503)');

select tests.authenticate_as_service_role();
select throws_ok(format('select public.get_effective_llm_config_for_org(%L)', :'initech'), 'PT503', null,
  'the service role gets the same error');
select is(
  public.get_effective_llm_config_for_org(:'acme') ->> 'source',
  'organization',
  'an org with a default profile still resolves without a catalog default'
);

select * from finish();
rollback;
