-- Configuration by model name (the OpenAI-compatible endpoint): profile/<name> resolves as the
-- organization's profile, <provider>/<model_name> as the active catalog or custom model; anything
-- else, another organization's profile included, is not found; the list offers exactly those.
begin;
select plan(18);

-- Fixtures ------------------------------------------------------------------------------------
insert into public.llm_global_settings (provider, model_name, display_name, is_active)
values ('mistral', 'test-retired-choice', 'Retired', false);
select tests.create_organization('Acme', '{
  "default_profile": "fast",
  "profiles": {
    "fast": {"provider": "openai", "model": "gpt-4o-mini", "settings": {"temperature": 0.3}, "fallbacks": ["deep"]},
    "deep": {"provider": "anthropic", "model": "claude-haiku-4-5"}
  }
}') as acme \gset
select tests.create_organization('Globex', '{"profiles": {"house": {"provider": "openai", "model": "gpt-4o"}}}') as globex \gset
select tests.create_user('member@acme.test', :'acme') as acme_member \gset
select tests.add_member(:'acme', :'acme_member', 'member');
insert into public.processors (organization_id, name) values (:'acme', 'Acme invoices') returning id as acme_processor \gset
insert into public.processors (organization_id, name) values (:'globex', 'Globex secrets') returning id as globex_processor \gset
insert into public.llm_custom_providers (organization_id, name, base_url, models)
values (:'acme', 'vllm', 'https://models.acme.example/v1', '[{"model_name": "llama-70b", "display_name": "Llama"}]');

-- Resolution ------------------------------------------------------------------------------
select tests.authenticate_as(:'acme_member');
select is(
  public.get_llm_config_for_model('profile/fast') - 'settings' - 'capabilities' - 'display_name' - 'fallbacks',
  '{"provider": "openai", "model": "gpt-4o-mini", "profile": "fast", "source": "organization", "api_key_source": "system"}'::jsonb,
  'profile/<name> resolves the organization''s profile'
);
select is(
  public.get_llm_config_for_model('profile/fast') -> 'settings' ->> 'temperature', '0.3',
  'the profile''s settings lie over the catalog''s'
);
select is(
  jsonb_path_query_array(public.get_llm_config_for_model('profile/fast') -> 'fallbacks', '$[*].profile'),
  '["deep"]'::jsonb,
  'and its fallbacks come with it'
);
select is(
  public.get_llm_config_for_model('openai/gpt-4o') - 'capabilities' - 'display_name',
  jsonb_build_object('provider', 'openai', 'model', 'gpt-4o', 'profile', null, 'source', 'global',
    'api_key_source', 'system', 'fallbacks', '[]'::jsonb,
    'settings', (select configuration from public.llm_global_settings where provider = 'openai' and model_name = 'gpt-4o')),
  '<provider>/<model_name> resolves an active catalog model with its own defaults'
);
select is(
  public.get_llm_config_for_model('custom:vllm/llama-70b') ->> 'base_url', 'https://models.acme.example/v1',
  'custom:<name>/<model_name> resolves the organization''s custom model with its base_url'
);
select throws_ok(format('select public.get_llm_config_for_model(%L)', t.model), 'PT404', null, t.behaviour)
from (values
  ('mistral/test-retired-choice', 'an inactive catalog model is not found'),
  ('openai/gpt-nonexistent', 'a model the catalog lacks is not found'),
  ('profile/nobody', 'a profile the organization lacks is not found'),
  ('profile/house', 'another organization''s profile is not found'),
  ('gpt-4o', 'a name without a provider is not found'),
  ('custom:other/llama-70b', 'a custom provider the organization lacks is not found')
) as t (model, behaviour);
select tests.clear_authentication();

-- Listing -----------------------------------------------------------------------------------
select tests.authenticate_as(:'acme_member');
select ok(
  array(select id from public.list_llm_models()) @> array[
    'processor/' || :'acme_processor', 'profile/fast', 'profile/deep', 'openai/gpt-4o', 'custom:vllm/llama-70b'],
  'the list offers the organization''s processors, profiles, the active catalog and its custom models'
);
select ok(
  not array(select id from public.list_llm_models()) && array[
    'processor/' || :'globex_processor', 'profile/house', 'mistral/test-retired-choice'],
  'and nothing of another organization, nor an inactive model'
);
select is(
  (select count(*)::integer from public.list_llm_models() as m
   where m.id like '%/%' and m.id not like 'processor/%' and m.id not like 'profile/%'
     and m.id not in (select g.provider || '/' || g.model_name from public.llm_global_settings as g where g.is_active)
     and m.id not like 'custom:%'),
  0,
  'every model the list offers is one the catalog offers'
);
select tests.clear_authentication();

-- Who may call ----------------------------------------------------------------------------
select tests.authenticate_as_anon();
select throws_ok($$select public.get_llm_config_for_model('profile/fast')$$, '42501', null, 'anon cannot resolve by model');
select throws_ok('select * from public.list_llm_models()', '42501', null, 'anon cannot list models');
select tests.clear_authentication();
select tests.authenticate_as(:'acme_member');
select throws_ok(format('select public.get_llm_config_for_model_for_org(%L, %L)', :'acme', 'profile/fast'), '42501', null,
  'a member cannot use the service role''s variant');
select tests.clear_authentication();
select tests.authenticate_as_service_role();
select is(
  public.get_llm_config_for_model_for_org(:'acme', 'profile/fast') ->> 'model', 'gpt-4o-mini',
  'the service role resolves by model for an explicit organization'
);
select tests.clear_authentication();

select * from finish();
rollback;
