-- Write-time validation of LLM configuration JSON: organizations.llm_configuration,
-- processors.configuration and llm_global_settings.configuration. Every refusal is SQLSTATE
-- 22023 (HTTP 400) and names the JSON path of the offending value; the path is the contract, the
-- English around it is not. Credentials never enter this JSON, by field name or by value.
-- Writes go through the roles that really make them: an org admin (RLS) and the service role.
begin;
select plan(137);

-- Fixtures ------------------------------------------------------------------------------------
select tests.create_organization('Acme') as acme \gset
select tests.create_user('admin@acme.test', :'acme') as acme_admin \gset
select tests.add_member(:'acme', :'acme_admin', 'admin');
insert into public.processors (organization_id, name) values (:'acme', 'Existing processor')
returning id as acme_processor \gset

-- organizations.llm_configuration ---------------------------------------------------------------
-- Each invalid configuration, why it is invalid, and the path its error must name. The profile
-- {"provider": "openai", "model": "gpt-4o-mini"} is valid; each case breaks one thing.
create function pg_temp.invalid_llm_configurations()
returns table (behaviour text, config jsonb, path text)
language sql
as $$
  values
  -- shape
  ('a configuration that is not an object', '["fast"]'::jsonb, 'llm_configuration'),
  ('an unknown top-level field',
   '{"default_profile": "fast", "profiles": {"fast": {"provider": "openai", "model": "gpt-4o-mini"}}, "fallback": "global"}',
   'llm_configuration.fallback'),
  ('profiles that are not an object', '{"profiles": ["fast"]}', 'llm_configuration.profiles'),
  ('a profile that is not an object', '{"profiles": {"fast": "gpt-4o-mini"}}', 'llm_configuration.profiles.fast'),
  ('a profile name that is not a lowercase slug',
   '{"profiles": {"Fast Lane": {"provider": "openai", "model": "gpt-4o-mini"}}}', 'llm_configuration.profiles.Fast Lane'),
  ('an unknown field in a profile',
   '{"profiles": {"fast": {"provider": "openai", "model": "gpt-4o-mini", "temperature": 0.2}}}',
   'llm_configuration.profiles.fast.temperature'),
  ('a default profile that is not among the profiles',
   '{"default_profile": "balanced", "profiles": {"fast": {"provider": "openai", "model": "gpt-4o-mini"}}}',
   'llm_configuration.default_profile'),
  ('a default profile without any profiles', '{"default_profile": "fast"}', 'llm_configuration.default_profile'),
  ('a default profile that is not a string',
   '{"default_profile": ["fast"], "profiles": {"fast": {"provider": "openai", "model": "gpt-4o-mini"}}}',
   'llm_configuration.default_profile'),
  -- provider and model
  ('a provider outside the allowed list', '{"profiles": {"fast": {"provider": "cohere", "model": "command-r"}}}',
   'llm_configuration.profiles.fast.provider'),
  ('a provider spelled in another case', '{"profiles": {"fast": {"provider": "OpenAI", "model": "gpt-4o-mini"}}}',
   'llm_configuration.profiles.fast.provider'),
  ('a profile without a provider', '{"profiles": {"fast": {"model": "gpt-4o-mini"}}}',
   'llm_configuration.profiles.fast.provider'),
  ('a profile without a model', '{"profiles": {"fast": {"provider": "openai"}}}', 'llm_configuration.profiles.fast.model'),
  ('an empty model', '{"profiles": {"fast": {"provider": "openai", "model": ""}}}', 'llm_configuration.profiles.fast.model'),
  ('a blank model', '{"profiles": {"fast": {"provider": "openai", "model": "   "}}}', 'llm_configuration.profiles.fast.model'),
  ('a model that is not a string', '{"profiles": {"fast": {"provider": "openai", "model": 4}}}',
   'llm_configuration.profiles.fast.model'),
  -- settings: typed and in range
  ('settings that are not an object',
   '{"profiles": {"fast": {"provider": "openai", "model": "gpt-4o-mini", "settings": "creative"}}}',
   'llm_configuration.profiles.fast.settings'),
  ('a temperature above 2',
   '{"profiles": {"fast": {"provider": "openai", "model": "gpt-4o-mini", "settings": {"temperature": 2.5}}}}',
   'llm_configuration.profiles.fast.settings.temperature'),
  ('a temperature below 0',
   '{"profiles": {"fast": {"provider": "openai", "model": "gpt-4o-mini", "settings": {"temperature": -0.1}}}}',
   'llm_configuration.profiles.fast.settings.temperature'),
  ('a temperature given as a string',
   '{"profiles": {"fast": {"provider": "openai", "model": "gpt-4o-mini", "settings": {"temperature": "0.7"}}}}',
   'llm_configuration.profiles.fast.settings.temperature'),
  ('a top_p above 1',
   '{"profiles": {"fast": {"provider": "openai", "model": "gpt-4o-mini", "settings": {"top_p": 1.5}}}}',
   'llm_configuration.profiles.fast.settings.top_p'),
  ('a max_tokens of 0',
   '{"profiles": {"fast": {"provider": "openai", "model": "gpt-4o-mini", "settings": {"max_tokens": 0}}}}',
   'llm_configuration.profiles.fast.settings.max_tokens'),
  ('a fractional max_tokens',
   '{"profiles": {"fast": {"provider": "openai", "model": "gpt-4o-mini", "settings": {"max_tokens": 1.5}}}}',
   'llm_configuration.profiles.fast.settings.max_tokens'),
  ('a max_tokens given as a string',
   '{"profiles": {"fast": {"provider": "openai", "model": "gpt-4o-mini", "settings": {"max_tokens": "4096"}}}}',
   'llm_configuration.profiles.fast.settings.max_tokens'),
  ('a top_k of 0',
   '{"profiles": {"fast": {"provider": "google", "model": "gemini-2.5-flash", "settings": {"top_k": 0}}}}',
   'llm_configuration.profiles.fast.settings.top_k'),
  ('an empty stop list',
   '{"profiles": {"fast": {"provider": "openai", "model": "gpt-4o-mini", "settings": {"stop": []}}}}',
   'llm_configuration.profiles.fast.settings.stop'),
  ('a stop list holding a number',
   '{"profiles": {"fast": {"provider": "openai", "model": "gpt-4o-mini", "settings": {"stop": ["END", 1]}}}}',
   'llm_configuration.profiles.fast.settings.stop'),
  ('an empty stop string',
   '{"profiles": {"fast": {"provider": "openai", "model": "gpt-4o-mini", "settings": {"stop": ""}}}}',
   'llm_configuration.profiles.fast.settings.stop'),
  ('a presence_penalty above 2',
   '{"profiles": {"fast": {"provider": "openai", "model": "gpt-4o-mini", "settings": {"presence_penalty": 2.5}}}}',
   'llm_configuration.profiles.fast.settings.presence_penalty'),
  ('a frequency_penalty below -2',
   '{"profiles": {"fast": {"provider": "openai", "model": "gpt-4o-mini", "settings": {"frequency_penalty": -2.1}}}}',
   'llm_configuration.profiles.fast.settings.frequency_penalty'),
  ('a fractional seed',
   '{"profiles": {"fast": {"provider": "openai", "model": "gpt-4o-mini", "settings": {"seed": 1.5}}}}',
   'llm_configuration.profiles.fast.settings.seed'),
  ('a seed given as a string',
   '{"profiles": {"fast": {"provider": "openai", "model": "gpt-4o-mini", "settings": {"seed": "42"}}}}',
   'llm_configuration.profiles.fast.settings.seed'),
  ('an unknown setting',
   '{"profiles": {"fast": {"provider": "openai", "model": "gpt-4o-mini", "settings": {"temprature": 0.7}}}}',
   'llm_configuration.profiles.fast.settings.temprature'),
  -- credentials, by name and by value, wherever they hide
  ('an api_key field in a profile',
   '{"profiles": {"fast": {"provider": "openai", "model": "gpt-4o-mini", "api_key": "not-a-real-key"}}}',
   'llm_configuration.profiles.fast.api_key'),
  ('an apiKey field in a profile',
   '{"profiles": {"fast": {"provider": "openai", "model": "gpt-4o-mini", "apiKey": "not-a-real-key"}}}',
   'llm_configuration.profiles.fast.apiKey'),
  ('the plan''s api_key_vault_ref field',
   '{"profiles": {"fast": {"provider": "openai", "model": "gpt-4o-mini", "api_key_vault_ref": "org_acme_openai_key"}}}',
   'llm_configuration.profiles.fast.api_key_vault_ref'),
  ('an api_key field even when empty',
   '{"profiles": {"fast": {"provider": "openai", "model": "gpt-4o-mini", "api_key": null}}}',
   'llm_configuration.profiles.fast.api_key'),
  ('a secret field at the top level', '{"secret": "hunter2"}', 'llm_configuration.secret'),
  ('a token field among the settings',
   '{"profiles": {"fast": {"provider": "openai", "model": "gpt-4o-mini", "settings": {"token": "abc"}}}}',
   'llm_configuration.profiles.fast.settings.token'),
  ('a password field inside an array',
   '{"profiles": {"fast": {"provider": "openai", "model": "gpt-4o-mini", "settings": {"stop": [{"password": "hunter2"}]}}}}',
   'llm_configuration.profiles.fast.settings.stop[0].password'),
  ('an Authorization header nested in an object',
   '{"profiles": {"fast": {"provider": "openai", "model": "gpt-4o-mini", "headers": {"Authorization": "Bearer abc"}}}}',
   'llm_configuration.profiles.fast.headers.Authorization'),
  ('a value that looks like an OpenAI key',
   '{"profiles": {"fast": {"provider": "openai", "model": "sk-proj-AbCdEfGhIjKlMnOpQrStUv012345"}}}',
   'llm_configuration.profiles.fast.model'),
  ('a value that looks like a Google key',
   '{"profiles": {"fast": {"provider": "google", "model": "gemini-2.5-flash", "settings": {"stop": ["AIzaSyAbCdEfGhIjKlMnOpQrStUvWxYz0123456"]}}}}',
   'llm_configuration.profiles.fast.settings.stop[0]')
$$;

select tests.clear_authentication();
select tests.authenticate_as(:'acme_admin');
select throws_ok(
  format('update public.organizations set llm_configuration = %L where id = %L', c.config, :'acme'),
  '22023', null,
  'an admin''s llm_configuration is refused as invalid: ' || c.behaviour
)
from pg_temp.invalid_llm_configurations() as c;
select throws_like(
  format('update public.organizations set llm_configuration = %L where id = %L', c.config, :'acme'),
  tests.naming(c.path),
  'the error for ' || c.behaviour || ' names ' || c.path
)
from pg_temp.invalid_llm_configurations() as c;

select is(
  strpos(tests.error_of(format('update public.organizations set llm_configuration = %L where id = %L',
    '{"profiles": {"fast": {"provider": "openai", "model": "sk-proj-AbCdEfGhIjKlMnOpQrStUv012345"}}}', :'acme'))::text,
    'sk-proj-AbCdEfGhIjKlMnOpQrStUv012345'),
  0,
  'the error for a pasted key does not repeat the key'
);
select is(
  strpos(tests.error_of(format('update public.organizations set llm_configuration = %L where id = %L',
    '{"profiles": {"fast": {"provider": "openai", "model": "gpt-4o-mini", "api_key": "not-a-real-key-42"}}}', :'acme'))::text,
    'not-a-real-key-42'),
  0,
  'the error for a credential field does not repeat its value'
);

-- Valid configurations go through.
select lives_ok(
  format('update public.organizations set llm_configuration = %L where id = %L', '{
    "default_profile": "steady",
    "profiles": {
      "steady": {"provider": "anthropic", "model": "claude-sonnet-4-5",
                 "settings": {"temperature": 0, "top_p": 0, "max_tokens": 1, "top_k": 1, "stop": "END",
                              "presence_penalty": -2, "frequency_penalty": -2, "seed": -9007199254740991}},
      "wild": {"provider": "openai", "model": "gpt-4.1",
               "settings": {"temperature": 2, "top_p": 1, "max_tokens": 32768, "stop": ["END", "STOP"],
                            "presence_penalty": 2, "frequency_penalty": 2, "seed": 42}},
      "bare": {"provider": "meta", "model": "Llama-4-Scout-17B-16E-Instruct-FP8"}
    }
  }', :'acme'),
  'an admin saves profiles with every setting at its bounds'
);
select lives_ok(
  format('update public.organizations set llm_configuration = %L where id = %L',
    '{"default_profile": "fast", "profiles": {"fast": {"provider": "openai", "model": "gpt-4o-mini", "settings": {"max_tokens": 256}}}}',
    :'acme'),
  'max_tokens is a setting, not a credential, though its name contains "token"'
);
select lives_ok(
  format('update public.organizations set llm_configuration = %L where id = %L',
    '{"default_profile": "next", "profiles": {"next": {"provider": "openai", "model": "gpt-9-preview"}}}', :'acme'),
  'a model id the catalog does not know yet is accepted'
);
select is(
  (select o.llm_configuration from public.organizations as o where o.id = :'acme'),
  '{"default_profile": "next", "profiles": {"next": {"provider": "openai", "model": "gpt-9-preview"}}}'::jsonb,
  'refused writes changed nothing: the last accepted configuration is stored'
);
select lives_ok(
  format('update public.organizations set llm_configuration = null where id = %L', :'acme'),
  'an admin clears the configuration back to the global default with null'
);

-- processors.configuration ----------------------------------------------------------------------
-- Only the LLM fields are checked; the app's other keys pass, unless they hold a credential.
create function pg_temp.invalid_processor_configurations()
returns table (behaviour text, config jsonb, path text)
language sql
as $$
  values
  ('a configuration that is not an object', '["fast"]'::jsonb, 'configuration'),
  ('an llm_profile that is not a string', '{"llm_profile": 3}', 'configuration.llm_profile'),
  ('an llm_profile that is not a profile name', '{"llm_profile": "Fast Lane"}', 'configuration.llm_profile'),
  ('a settings_override that is not an object', '{"settings_override": "hot"}', 'configuration.settings_override'),
  ('an overridden temperature above 2', '{"settings_override": {"temperature": 3}}',
   'configuration.settings_override.temperature'),
  ('an overridden max_tokens that is not a positive integer', '{"settings_override": {"max_tokens": -1}}',
   'configuration.settings_override.max_tokens'),
  ('an unknown overridden setting', '{"settings_override": {"colour": "blue"}}', 'configuration.settings_override.colour'),
  ('an api_key field', '{"llm_profile": "fast", "api_key": "not-a-real-key"}', 'configuration.api_key'),
  ('a client_secret deep in the app''s own settings', '{"integrations": {"crm": {"client_secret": "abc"}}}',
   'configuration.integrations.crm.client_secret'),
  ('an Authorization header inside an array', '{"webhook": {"headers": [{"Authorization": "Bearer abc"}]}}',
   'configuration.webhook.headers[0].Authorization'),
  ('a value that looks like an OpenAI key in the app''s own fields', '{"notes": "sk-AbCdEfGhIjKlMnOpQrStUv012345"}',
   'configuration.notes'),
  -- Plural names are credential names too (a Mistral key has no recognisable prefix), and a key
  -- stays a key behind "Bearer ".
  ('an api_keys field holding keys by provider', '{"api_keys": {"mistral": "AbCdEfGhIjKlMnOpQrStUvWxYz012345"}}',
   'configuration.api_keys'),
  ('a secrets field', '{"secrets": ["hunter2"]}', 'configuration.secrets'),
  ('a header value carrying a key after "Bearer "',
   '{"webhook": {"headers": {"X-Upstream": "Bearer sk-AbCdEfGhIjKlMnOpQrStUv012345"}}}',
   'configuration.webhook.headers.X-Upstream')
$$;

select throws_ok(
  format('insert into public.processors (organization_id, name, configuration) values (%L, %L, %L)',
         :'acme', 'Probe', c.config),
  '22023', null,
  'an admin''s processor configuration is refused as invalid: ' || c.behaviour
)
from pg_temp.invalid_processor_configurations() as c;
select throws_like(
  format('insert into public.processors (organization_id, name, configuration) values (%L, %L, %L)',
         :'acme', 'Probe', c.config),
  tests.naming(c.path),
  'the error for ' || c.behaviour || ' names ' || c.path
)
from pg_temp.invalid_processor_configurations() as c;

select throws_ok(
  format('update public.processors set configuration = %L where id = %L',
         '{"llm_profile": "fast", "settings_override": {"top_p": 2}}', :'acme_processor'),
  '22023', null,
  'changing an existing processor is validated too'
);
select lives_ok(
  format('insert into public.processors (organization_id, name, configuration) values (%L, %L, %L)', :'acme', 'Summariser',
    '{"llm_profile": "fast", "settings_override": {"max_tokens": 256, "temperature": 0},
      "prompt_template": "Summarise: {{text}}", "retries": 3, "output_schema": {"type": "object"}}'),
  'a processor keeps the app''s own configuration keys beside its LLM profile and overrides'
);

-- llm_global_settings.configuration -------------------------------------------------------------
create function pg_temp.invalid_catalog_configurations()
returns table (behaviour text, config jsonb, path text)
language sql
as $$
  values
  ('a configuration that is not an object', '[]'::jsonb, 'configuration'),
  ('a default temperature above 2', '{"temperature": 5}', 'configuration.temperature'),
  ('a capability filed among the settings', '{"context_window": 128000}', 'configuration.context_window'),
  ('an api_key field', '{"api_key": "not-a-real-key"}', 'configuration.api_key'),
  ('a secret field', '{"secret": "hunter2"}', 'configuration.secret'),
  ('a stop sequence that looks like an OpenAI key', '{"stop": ["sk-AbCdEfGhIjKlMnOpQrStUv012345"]}', 'configuration.stop[0]')
$$;

select tests.authenticate_as_service_role();
select throws_ok(
  format('insert into public.llm_global_settings (provider, model_name, display_name, configuration)
          values (%L, %L, %L, %L)', 'openai', 'validation-probe', 'Validation probe', c.config),
  '22023', null,
  'the service role''s catalog row is refused as invalid: ' || c.behaviour
)
from pg_temp.invalid_catalog_configurations() as c;
select throws_like(
  format('insert into public.llm_global_settings (provider, model_name, display_name, configuration)
          values (%L, %L, %L, %L)', 'openai', 'validation-probe', 'Validation probe', c.config),
  tests.naming(c.path),
  'the error for ' || c.behaviour || ' names ' || c.path
)
from pg_temp.invalid_catalog_configurations() as c;

select throws_ok(
  $$update public.llm_global_settings set configuration = '{"top_p": -1}' where is_default$$,
  '22023', null,
  'changing an existing catalog row is validated too'
);
select lives_ok(
  format('insert into public.llm_global_settings (provider, model_name, display_name, configuration)
          values (%L, %L, %L, %L)', 'openai', 'validation-probe', 'Validation probe',
         '{"temperature": 1, "top_p": 0.95, "max_tokens": 16384, "seed": 1}'),
  'the service role adds a model with valid default settings'
);

select * from finish();
rollback;
