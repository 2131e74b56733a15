-- Write-time validation of LLM configuration JSON.
--
-- Objects: private.assert_no_credentials, private.assert_valid_llm_settings,
-- private.assert_valid_llm_configuration, private.assert_valid_processor_configuration.
-- Each raises SQLSTATE 22023 (PostgREST: HTTP 400) with a message that starts with the JSON path
-- of the offending value. Keys never belong in this JSON: they live in Vault only.
-- Grants: execute to authenticated and service_role, whose writes run the validation triggers.

-- Rejects any field named like a credential, and any string that looks like a provider key.
create function private.assert_no_credentials(p_value jsonb, p_path text)
returns void
language plpgsql
immutable
set search_path = ''  -- empty: the caller's search_path cannot redirect its schema-qualified names
as $$
declare
  v_key text;
  v_child jsonb;
begin
  case jsonb_typeof(p_value)
    when 'object' then
      for v_key, v_child in select e.key, e.value from jsonb_each(p_value) as e loop
        -- camelCase to snake_case first, so apiKey and accessToken match like api_key does;
        -- token stays singular so max_tokens is allowed.
        if lower(regexp_replace(v_key, '([a-z0-9])([A-Z])', '\1_\2', 'g'))
           ~ '(^|[^a-z0-9])(api[_-]?keys?|secrets?|token|passwords?|passwd|credentials?|private[_-]?keys?|access[_-]?keys?|authorization|bearer)([^a-z0-9]|$)'
        then
          raise exception using
            errcode = '22023',
            message = format('%s.%s: credential fields are not allowed in configuration', p_path, v_key),
            hint = 'Store provider API keys with store_org_api_key; they are kept in Vault only.';
        end if;
        perform private.assert_no_credentials(v_child, p_path || '.' || v_key);
      end loop;
    when 'array' then
      for v_index in 0 .. jsonb_array_length(p_value) - 1 loop
        perform private.assert_no_credentials(p_value -> v_index, format('%s[%s]', p_path, v_index));
      end loop;
    when 'string' then
      if (p_value #>> '{}') ~ '(^|[^A-Za-z0-9_-])(sk-[A-Za-z0-9_-]{16,}|AIza[0-9A-Za-z_-]{30,})' then
        raise exception using
          errcode = '22023',
          message = format('%s: value looks like an API key', p_path),
          hint = 'Store provider API keys with store_org_api_key; they are kept in Vault only.';
      end if;
    else
      null;
  end case;
end
$$;

-- Settings shared by catalog defaults, org profiles and processor overrides.
create function private.assert_valid_llm_settings(p_settings jsonb, p_path text)
returns void
language plpgsql
immutable
set search_path = ''  -- empty: the caller's search_path cannot redirect its schema-qualified names
as $$
declare
  v_key text;
  v_value jsonb;
  v_type text;
  v_number numeric;
begin
  if jsonb_typeof(p_settings) is distinct from 'object' then
    raise exception using errcode = '22023', message = format('%s: must be an object', p_path);
  end if;
  for v_key, v_value in select e.key, e.value from jsonb_each(p_settings) as e loop
    v_type := jsonb_typeof(v_value);
    v_number := case when v_type = 'number' then (v_value #>> '{}')::numeric end;
    if v_key = 'temperature' and not coalesce(v_number between 0 and 2, false) then
      raise exception using errcode = '22023',
        message = format('%s.temperature: must be a number between 0 and 2', p_path);
    elsif v_key = 'top_p' and not coalesce(v_number between 0 and 1, false) then
      raise exception using errcode = '22023',
        message = format('%s.top_p: must be a number between 0 and 1', p_path);
    elsif v_key in ('presence_penalty', 'frequency_penalty') and not coalesce(v_number between -2 and 2, false) then
      raise exception using errcode = '22023',
        message = format('%s.%s: must be a number between -2 and 2', p_path, v_key);
    elsif v_key in ('max_tokens', 'top_k')
          and not coalesce(v_number = trunc(v_number) and v_number between 1 and 2000000, false) then
      raise exception using errcode = '22023',
        message = format('%s.%s: must be a positive integer', p_path, v_key);
    elsif v_key = 'seed' and not coalesce(v_number = trunc(v_number) and abs(v_number) < 2 ^ 63, false) then
      raise exception using errcode = '22023',
        message = format('%s.seed: must be an integer', p_path);
    elsif v_key = 'stop' and not (
      (v_type = 'string' and (v_value #>> '{}') <> '')
      or (v_type = 'array' and jsonb_array_length(v_value) between 1 and 16
          and not exists (
            select from jsonb_array_elements(v_value) as s (item)
            where jsonb_typeof(s.item) <> 'string' or (s.item #>> '{}') = ''
          ))
    ) then
      raise exception using errcode = '22023',
        message = format('%s.stop: must be a non-empty string or a list of 1 to 16 non-empty strings', p_path);
    elsif v_key not in ('temperature', 'top_p', 'top_k', 'max_tokens', 'stop',
                        'presence_penalty', 'frequency_penalty', 'seed') then
      raise exception using errcode = '22023',
        message = format('%s.%s: unknown setting', p_path, v_key),
        hint = 'Known settings: temperature, top_p, top_k, max_tokens, stop, presence_penalty, frequency_penalty, seed.';
    end if;
  end loop;
end
$$;

-- organizations.llm_configuration: {"default_profile": name, "profiles": {name: {provider, model, settings}}}.
create function private.assert_valid_llm_configuration(p_config jsonb)
returns void
language plpgsql
stable
set search_path = ''  -- empty: the caller's search_path cannot redirect its schema-qualified names
as $$
declare
  v_path constant text := 'llm_configuration';
  v_key text;
  v_name text;
  v_profile jsonb;
begin
  if p_config is null or p_config = 'null'::jsonb then
    return;
  end if;
  perform private.assert_no_credentials(p_config, v_path);
  if jsonb_typeof(p_config) <> 'object' then
    raise exception using errcode = '22023', message = format('%s: must be an object or null', v_path);
  end if;
  for v_key in select jsonb_object_keys(p_config) loop
    if v_key not in ('default_profile', 'profiles') then
      raise exception using errcode = '22023',
        message = format('%s.%s: unknown field', v_path, v_key),
        hint = 'Allowed fields: default_profile, profiles.';
    end if;
  end loop;

  if jsonb_typeof(coalesce(p_config -> 'profiles', '{}')) <> 'object' then
    raise exception using errcode = '22023', message = format('%s.profiles: must be an object', v_path);
  end if;
  for v_name, v_profile in select e.key, e.value from jsonb_each(coalesce(p_config -> 'profiles', '{}')) as e loop
    if v_name !~ '^[a-z0-9][a-z0-9_-]{0,62}$' then
      raise exception using errcode = '22023',
        message = format('%s.profiles.%s: profile names are 1 to 63 lowercase letters, digits, _ or -', v_path, v_name);
    end if;
    if jsonb_typeof(v_profile) <> 'object' then
      raise exception using errcode = '22023', message = format('%s.profiles.%s: must be an object', v_path, v_name);
    end if;
    for v_key in select jsonb_object_keys(v_profile) loop
      if v_key not in ('provider', 'model', 'settings') then
        raise exception using errcode = '22023',
          message = format('%s.profiles.%s.%s: unknown field', v_path, v_name, v_key),
          hint = 'Allowed fields: provider, model, settings.';
      end if;
    end loop;
    if not coalesce((v_profile ->> 'provider') = any(private.llm_providers()), false)
       or jsonb_typeof(v_profile -> 'provider') <> 'string' then
      raise exception using errcode = '22023',
        message = format('%s.profiles.%s.provider: must be one of %s', v_path, v_name,
                         array_to_string(private.llm_providers(), ', '));
    end if;
    if jsonb_typeof(v_profile -> 'model') is distinct from 'string'
       or btrim(v_profile ->> 'model') = '' or length(v_profile ->> 'model') > 200 then
      raise exception using errcode = '22023',
        message = format('%s.profiles.%s.model: must be a non-empty model id', v_path, v_name);
    end if;
    if v_profile ? 'settings' then
      perform private.assert_valid_llm_settings(v_profile -> 'settings', format('%s.profiles.%s.settings', v_path, v_name));
    end if;
  end loop;

  if p_config ? 'default_profile' then
    if jsonb_typeof(p_config -> 'default_profile') <> 'string'
       or not coalesce(p_config -> 'profiles', '{}') ? (p_config ->> 'default_profile') then
      raise exception using errcode = '22023',
        message = format('%s.default_profile: must name one of the profiles', v_path);
    end if;
  end if;
end
$$;

-- processors.configuration holds more than LLM settings; only the LLM fields are checked here.
create function private.assert_valid_processor_configuration(p_config jsonb)
returns void
language plpgsql
immutable
set search_path = ''  -- empty: the caller's search_path cannot redirect its schema-qualified names
as $$
declare
  v_path constant text := 'configuration';
begin
  if jsonb_typeof(p_config) is distinct from 'object' then
    raise exception using errcode = '22023', message = format('%s: must be an object', v_path);
  end if;
  perform private.assert_no_credentials(p_config, v_path);
  if p_config ? 'llm_profile' and (
    jsonb_typeof(p_config -> 'llm_profile') <> 'string'
    or (p_config ->> 'llm_profile') !~ '^[a-z0-9][a-z0-9_-]{0,62}$'
  ) then
    raise exception using errcode = '22023',
      message = format('%s.llm_profile: must be a profile name (1 to 63 lowercase letters, digits, _ or -)', v_path);
  end if;
  if p_config ? 'settings_override' then
    perform private.assert_valid_llm_settings(p_config -> 'settings_override', v_path || '.settings_override');
  end if;
end
$$;

-- Writes by signed-in admins and by the service role run these through triggers as that role.
revoke execute on function private.assert_no_credentials(jsonb, text),
  private.assert_valid_llm_settings(jsonb, text),
  private.assert_valid_llm_configuration(jsonb),
  private.assert_valid_processor_configuration(jsonb) from public;
-- The validation triggers run them as the writing role: signed-in admins and the service role.
grant execute on function private.assert_no_credentials(jsonb, text),
  private.assert_valid_llm_settings(jsonb, text),
  private.assert_valid_llm_configuration(jsonb),
  private.assert_valid_processor_configuration(jsonb) to authenticated, service_role;
