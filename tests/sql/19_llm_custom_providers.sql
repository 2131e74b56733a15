-- Custom providers: who reads and writes llm_custom_providers, write-time validation (name,
-- models, prices, and a base URL that cannot point at private networks or cloud metadata unless
-- the operator allows the network), keys stored as custom:<name>, resolution like a catalog
-- model with base_url, falling through when the provider is gone, and pricing from the model's
-- own prices (usage rows, reservations).
begin;
select plan(57);

-- Fixtures ------------------------------------------------------------------------------------
select tests.create_organization('Acme', '{
  "default_profile": "house",
  "profiles": {
    "house": {"provider": "openai", "model": "gpt-4o-mini"},
    "own": {"provider": "custom:vllm", "model": "llama-70b", "settings": {"temperature": 0.1},
            "fallbacks": [{"provider": "custom:vllm", "model": "qwen-7b"}, "house"]}
  }
}') as acme \gset
select tests.create_organization('Globex') as globex \gset
select tests.create_user('owner@acme.test', :'acme') as acme_owner \gset
select tests.add_member(:'acme', :'acme_owner', 'owner');
select tests.create_user('member@acme.test', :'acme') as acme_member \gset
select tests.add_member(:'acme', :'acme_member', 'member');
select tests.create_user('admin@globex.test', :'globex') as globex_admin \gset
select tests.add_member(:'globex', :'globex_admin', 'admin');

insert into public.processors (organization_id, name, configuration) values
  (:'acme', 'On our own models', '{"llm_profile": "own", "settings_override": {"max_tokens": 50}}')
returning id as own_processor \gset

-- An insert of a custom provider for Acme with this base URL (and otherwise valid fields).
create function pg_temp.with_base_url(p_url text)
returns text
language sql
as $$
  select format(
    'insert into public.llm_custom_providers (organization_id, name, base_url) values (%L, %L, %L)',
    (select id from public.organizations where name = 'Acme'), 'probe', p_url
  )
$$;

-- Who reads and writes --------------------------------------------------------------------
select tests.authenticate_as(:'acme_owner');
select lives_ok(
  format($$insert into public.llm_custom_providers (organization_id, name, base_url, models) values (%L, 'vllm',
    'https://models.acme.example/v1', '[
      {"model_name": "llama-70b", "display_name": "Llama 70B (ours)", "cost_per_million_input_tokens": 0.5,
       "cost_per_million_output_tokens": 1.5, "capabilities": {"context_window": 32000},
       "settings": {"temperature": 0.6, "top_p": 0.9}},
      {"model_name": "qwen-7b"}
    ]')$$, :'acme'),
  'an owner adds a custom provider to their organization'
);
select tests.clear_authentication();

select tests.authenticate_as(:'acme_member');
select is((select count(*)::integer from public.llm_custom_providers), 1, 'a member reads their organization''s custom providers');
select throws_ok(
  format($$insert into public.llm_custom_providers (organization_id, name, base_url) values (%L, 'mine', 'https://x.example')$$, :'acme'),
  '42501', null, 'a member cannot add a custom provider'
);
update public.llm_custom_providers set base_url = 'https://evil.example/v1';
select tests.clear_authentication();
select is((select base_url from public.llm_custom_providers where name = 'vllm'), 'https://models.acme.example/v1',
  'a member''s update changes nothing');

select tests.authenticate_as(:'globex_admin');
select is_empty('select * from public.llm_custom_providers', 'an admin of another organization sees none of Acme''s');
select throws_ok(
  format($$insert into public.llm_custom_providers (organization_id, name, base_url) values (%L, 'intruder', 'https://x.example')$$, :'acme'),
  '42501', null, 'an admin cannot add a custom provider to another organization'
);
select tests.clear_authentication();

select tests.authenticate_as_anon();
select throws_ok('select * from public.llm_custom_providers', '42501', null, 'anon cannot read custom providers');
select tests.clear_authentication();

-- Validation ------------------------------------------------------------------------------
select tests.authenticate_as(:'acme_owner');
select throws_like(
  format($$insert into public.llm_custom_providers (organization_id, name, base_url) values (%L, 'Bad Name', 'https://x.example')$$, :'acme'),
  tests.naming('llm_custom_providers.name'), 'a name that is not a lowercase slug is refused'
);
select throws_like(
  format($$insert into public.llm_custom_providers (organization_id, name, base_url) values (%L, 'vllm', 'https://x.example')$$, :'acme'),
  '%llm_custom_providers_organization_id_name_key%', 'a name is unique within its organization'
);
select throws_like(
  format($$insert into public.llm_custom_providers (organization_id, name, base_url, api_style) values (%L, 'tgi', 'https://x.example', 'tgi')$$, :'acme'),
  tests.naming('llm_custom_providers.api_style'), 'only the openai api_style is accepted'
);
select throws_like(
  format($$insert into public.llm_custom_providers (organization_id, name, base_url, models) values (%L, 'neg', 'https://x.example',
    '[{"model_name": "m", "cost_per_million_input_tokens": -1}]')$$, :'acme'),
  tests.naming('llm_custom_providers.models[0].cost_per_million_input_tokens'), 'a negative price is refused'
);
select throws_like(
  format($$insert into public.llm_custom_providers (organization_id, name, base_url, models) values (%L, 'dup', 'https://x.example',
    '[{"model_name": "m"}, {"model_name": "m"}]')$$, :'acme'),
  tests.naming('llm_custom_providers.models[0].model_name'), 'a model listed twice is refused'
);
select throws_like(
  format($$insert into public.llm_custom_providers (organization_id, name, base_url, models) values (%L, 'odd', 'https://x.example',
    '[{"model_name": "m", "endpoint": "/v2"}]')$$, :'acme'),
  tests.naming('llm_custom_providers.models[0].endpoint'), 'an unknown model field is refused'
);
select throws_like(
  format($$insert into public.llm_custom_providers (organization_id, name, base_url, models) values (%L, 'hot', 'https://x.example',
    '[{"model_name": "m", "settings": {"temperature": 9}}]')$$, :'acme'),
  tests.naming('llm_custom_providers.models[0].settings.temperature'), 'a model''s settings are validated like a profile''s'
);

-- Base URLs: each refused one, and the reason its error must name.
select throws_like(pg_temp.with_base_url(t.url), tests.naming('llm_custom_providers.base_url'), t.behaviour)
from (values
  ('http://models.acme.example/v1', 'plain http to a name is refused'),
  ('https://user:secret@models.acme.example/v1', 'user info in the URL is refused'),
  ('https://models.acme.example/v1#frag', 'a fragment is refused'),
  ('ftp://models.acme.example', 'a scheme other than https is refused'),
  ('https://10.0.0.5/v1', 'a private address is refused'),
  ('https://127.0.0.1:8000/v1', 'loopback is refused'),
  ('https://100.64.0.1/v1', 'shared address space is refused'),
  ('https://192.0.2.10/v1', 'documentation space is refused'),
  ('https://169.254.169.254/latest', 'the cloud metadata address is refused'),
  ('https://metadata.google.internal/computeMetadata/v1', 'the cloud metadata name is refused'),
  ('https://2130706433/v1', 'an IPv4 address spelled as one decimal number is refused'),
  ('https://0x7f.0.0.1/v1', 'an IPv4 address spelled in hex is refused'),
  ('https://0177.0.0.1/v1', 'an IPv4 address spelled in octal is refused'),
  ('https://127.1/v1', 'a short IPv4 spelling is refused'),
  ('https://[::1]/v1', 'IPv6 loopback is refused'),
  ('https://[::ffff:10.0.0.5]/v1', 'an IPv4-mapped private address is refused'),
  ('https://[fd00::1]/v1', 'an IPv6 unique local address is refused')
) as t (url, behaviour);

select lives_ok(pg_temp.with_base_url('https://8.8.8.8/v1'), 'a public IPv4 address in plain notation is accepted');
delete from public.llm_custom_providers where name = 'probe';
select tests.clear_authentication();

-- The operator allows a network for self-hosted models.
insert into private.custom_provider_allowed_networks (network) values ('10.20.0.0/16'), ('169.254.0.0/16');
select tests.authenticate_as(:'acme_owner');
select lives_ok(pg_temp.with_base_url('http://10.20.3.4:8000/v1'),
  'http to an address inside an allowed network is accepted');
delete from public.llm_custom_providers where name = 'probe';
select throws_like(pg_temp.with_base_url('https://169.254.169.254/v1'), tests.naming('llm_custom_providers.base_url'),
  'the metadata address stays refused inside an allowed network');
select throws_like(pg_temp.with_base_url('http://10.21.0.1/v1'), tests.naming('llm_custom_providers.base_url'),
  'an address outside the allowed networks is still refused');
select tests.clear_authentication();

-- Keys ------------------------------------------------------------------------------------
select tests.authenticate_as(:'acme_owner');
select lives_ok(format($$select public.store_org_api_key(%L, 'custom:vllm', 'sk-vllm-acme-0123456789')$$, :'acme'),
  'an owner stores the custom provider''s key as custom:<name>');
select throws_ok(format($$select public.store_org_api_key(%L, 'custom:Bad', 'sk-vllm-acme-0123456789')$$, :'acme'),
  '22023', null, 'a provider name that is neither a catalog provider nor custom:<name> is refused');
select tests.clear_authentication();

-- Resolution ------------------------------------------------------------------------------
select tests.authenticate_as(:'acme_member');
select is(
  public.get_effective_llm_config(:'own_processor') - 'fallbacks',
  '{"provider": "custom:vllm", "model": "llama-70b", "display_name": "Llama 70B (ours)",
    "base_url": "https://models.acme.example/v1",
    "settings": {"temperature": 0.1, "top_p": 0.9, "max_tokens": 50},
    "capabilities": {"context_window": 32000},
    "profile": "own", "source": "processor", "api_key_source": "organization"}'::jsonb,
  'a profile on a custom model resolves like a catalog model, with its base_url, its settings under the profile''s and the processor''s'
);
select is(
  public.get_effective_llm_config(:'own_processor') -> 'fallbacks' -> 0,
  '{"provider": "custom:vllm", "model": "qwen-7b", "display_name": "qwen-7b", "base_url": "https://models.acme.example/v1",
    "settings": {}, "capabilities": {}, "profile": null, "api_key_source": "organization"}'::jsonb,
  'a custom fallback resolves with its base_url'
);
select is(
  public.get_effective_llm_config(:'own_processor') -> 'fallbacks' -> 1 ->> 'provider',
  'openai',
  'a catalog fallback after it has no base_url to carry'
);
select ok(
  not (public.get_effective_llm_config() ? 'base_url'),
  'a catalog resolution has no base_url key'
);
select tests.clear_authentication();

select tests.authenticate_as_service_role();
select is(
  public.get_effective_llm_config_for_org(:'acme', :'own_processor') ->> 'base_url',
  'https://models.acme.example/v1',
  'the service role resolves the same custom provider'
);
select tests.clear_authentication();

update public.llm_custom_providers set models = '[{"model_name": "llama-70b"}]' where name = 'vllm';
select tests.authenticate_as(:'acme_member');
select is(
  jsonb_path_query_array(public.get_effective_llm_config(:'own_processor') -> 'fallbacks', '$[*].model'),
  '["gpt-4o-mini"]'::jsonb,
  'a fallback whose model the custom provider no longer lists is left out'
);
select tests.clear_authentication();

update public.llm_custom_providers set is_active = false where name = 'vllm';
select tests.authenticate_as(:'acme_member');
select is(
  public.get_effective_llm_config(:'own_processor') ->> 'profile',
  'house',
  'a profile whose custom provider is inactive is passed over for the organization''s default profile'
);
select is(
  public.get_effective_llm_config(:'own_processor') ->> 'source',
  'organization',
  'and the source says so'
);
select tests.clear_authentication();
update public.llm_custom_providers set is_active = true, models = '[
  {"model_name": "llama-70b", "cost_per_million_input_tokens": 0.5, "cost_per_million_output_tokens": 1.5},
  {"model_name": "free-model"}
]' where name = 'vllm';

select tests.authenticate_as(:'acme_owner');
update public.organizations set llm_configuration = jsonb_set(llm_configuration, '{profiles,own,fallbacks}',
  '[{"provider": "custom:nobody", "model": "x"}]') where id = :'acme';
select tests.clear_authentication();
select tests.authenticate_as(:'acme_member');
select is(
  public.get_effective_llm_config(:'own_processor') -> 'fallbacks',
  '[]'::jsonb,
  'a fallback on a custom provider the organization does not have is left out'
);
select tests.clear_authentication();

select tests.authenticate_as(:'acme_owner');
select throws_like(
  format($$update public.organizations set llm_configuration = %L where id = %L$$,
    '{"profiles": {"x": {"provider": "custom:Not Valid", "model": "m"}}}', :'acme'),
  tests.naming('llm_configuration.profiles.x.provider'),
  'a profile provider that is neither a catalog provider nor custom:<name> is refused'
);
select throws_like(
  format($$update public.organizations set llm_configuration = %L where id = %L$$,
    '{"profiles": {"x": {"provider": "openai", "model": "gpt-4o", "fallbacks": [{"provider": "custom:vllm", "model": ""}]}}}', :'acme'),
  tests.naming('llm_configuration.profiles.x.fallbacks[0].model'),
  'a custom fallback without a model is refused'
);
select tests.clear_authentication();

-- Pricing ---------------------------------------------------------------------------------
select tests.authenticate_as_service_role();
insert into public.llm_usage_logs (organization_id, provider, model_name, input_tokens, output_tokens, operation_id)
values (:'acme', 'custom:vllm', 'llama-70b', 1000, 2000, 'priced'),
       (:'acme', 'custom:vllm', 'free-model', 1000, 2000, 'unpriced'),
       (:'globex', 'custom:vllm', 'llama-70b', 1000, 2000, 'other organization');
select is(
  (select estimated_cost from public.llm_usage_logs where operation_id = 'priced'),
  (1000 * 0.5 + 2000 * 1.5) / 1000000.0,
  'a usage row is priced from the custom model''s own prices'
);
select is(
  (select estimated_cost from public.llm_usage_logs where operation_id = 'unpriced'),
  null,
  'an unpriced custom model leaves the cost NULL, as for the catalog'
);
select is(
  (select estimated_cost from public.llm_usage_logs where operation_id = 'other organization'),
  null,
  'another organization''s custom provider of the same name prices nothing'
);
select throws_ok(
  format($$insert into public.llm_usage_logs (organization_id, provider, model_name) values (%L, 'custom:Bad', 'm')$$, :'acme'),
  '23514', null, 'usage rows accept only catalog providers and custom:<name>'
);

insert into public.llm_budgets (organization_id, period, limit_usd, hard) values (:'acme', 'day', 10, true);
select isnt(
  public.reserve_llm_budget(:'acme', null, 'custom:vllm', 'llama-70b', 1000, 1000, 60),
  null,
  'a hard budget reserves for a priced custom model'
);
select throws_ok(
  format($$select public.reserve_llm_budget(%L, null, 'custom:vllm', 'free-model', 1000, 1000, 60)$$, :'acme'),
  'PT402', null, 'a hard budget refuses an unpriced custom model: its cost cannot be bounded'
);
select tests.clear_authentication();

select tests.authenticate_as(:'acme_member');
select is(
  (public.estimate_llm_cost(:'own_processor', 1000, 2000) ->> 'total_cost')::numeric,
  (1000 * 0.5 + 2000 * 1.5) / 1000000.0,
  'the processor page''s estimate prices a custom model too'
);
select tests.clear_authentication();

-- Deleting ---------------------------------------------------------------------------------
select tests.authenticate_as(:'acme_owner');
delete from public.llm_custom_providers where name = 'vllm';
select is(
  (select count(*)::integer from public.llm_custom_providers), 0, 'an owner deletes a custom provider'
);
select tests.clear_authentication();
select tests.authenticate_as(:'acme_member');
select is(
  public.get_effective_llm_config(:'own_processor') ->> 'provider',
  'openai',
  'a profile whose custom provider was deleted is passed over like an inactive one'
);
select tests.clear_authentication();

select * from finish();
rollback;
