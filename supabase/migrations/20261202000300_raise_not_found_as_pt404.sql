-- "Not found" as HTTP 404 through PostgREST: the functions that raised SQLSTATE P0002 raise PT404.
--
-- PostgREST answers P0002 (like every P0 code but P0001) with HTTP 500, which a supabase-js
-- caller cannot tell from a crash; `PT` + status makes PostgREST answer that status. "No active
-- default model" is PT503 already.
-- Objects: private.assert_can_manage_org_api_keys, private.resolve_llm_config (bodies otherwise
-- unchanged; create or replace keeps their grants).
-- Grants: none change.

-- Invoker: runs inside the definer key functions, which own the check; as before, only its error code changes.
create or replace function private.assert_can_manage_org_api_keys(p_organization_id uuid)
returns void
language plpgsql
stable
set search_path = ''  -- empty: the caller's search_path cannot redirect its schema-qualified names
as $$
begin
  if not private.can_manage_org_api_keys(p_organization_id) then
    raise exception using
      errcode = '42501',
      message = 'only the service role or an owner or admin of the organization may manage its API keys';
  end if;
  if not exists (select from public.organizations as o where o.id = p_organization_id) then
    raise exception using errcode = 'PT404', message = 'organization not found';
  end if;
end
$$;

-- Invoker: a signed-in caller sees only what RLS lets it see, on top of the explicit
-- organization filter; the service role bypasses RLS.
create or replace function private.resolve_llm_config(p_organization_id uuid, p_processor_id uuid)
returns jsonb
language plpgsql
stable
set search_path = ''  -- empty: the caller's search_path cannot redirect its schema-qualified names
as $$
declare
  v_org_config jsonb;
  v_processor_config jsonb := '{}'::jsonb;
  v_requested_profile text;
  v_profile jsonb;
  v_profile_name text;
  v_source text;
  v_provider text;
  v_model text;
  v_catalog public.llm_global_settings;
begin
  select o.llm_configuration into v_org_config
  from public.organizations as o
  where o.id = p_organization_id;
  if not found then
    raise exception using errcode = 'PT404', message = 'organization not found';
  end if;

  if p_processor_id is not null then
    select p.configuration into v_processor_config
    from public.processors as p
    where p.id = p_processor_id and p.organization_id = p_organization_id;
    if not found then
      raise exception using errcode = 'PT404', message = 'processor not found';
    end if;
    v_requested_profile := v_processor_config ->> 'llm_profile';
  end if;

  -- 1. The processor's profile: the organization's profile of that name, else the active
  --    catalog model of that category (the default one first).
  if v_requested_profile is not null then
    v_profile := v_org_config -> 'profiles' -> v_requested_profile;
    if v_profile is null then
      select g.* into v_catalog
      from public.llm_global_settings as g
      where g.model_category = v_requested_profile and g.is_active
      order by g.is_default desc, g.model_name
      limit 1;
      if found then
        v_provider := v_catalog.provider;
        v_model := v_catalog.model_name;
      end if;
    end if;
    if v_profile is not null or v_provider is not null then
      v_source := 'processor';
      v_profile_name := v_requested_profile;
    end if;
  end if;

  -- 2. The organization's default profile.
  if v_source is null then
    v_profile := v_org_config -> 'profiles' -> (v_org_config ->> 'default_profile');
    if v_profile is not null then
      v_source := 'organization';
      v_profile_name := v_org_config ->> 'default_profile';
    end if;
  end if;

  if v_profile is not null then
    v_provider := v_profile ->> 'provider';
    v_model := v_profile ->> 'model';
    select g.* into v_catalog
    from public.llm_global_settings as g
    where g.provider = v_provider and g.model_name = v_model;
  end if;

  -- 3. The global default.
  if v_source is null then
    select g.* into v_catalog
    from public.llm_global_settings as g
    where g.is_default and g.is_active;
    if not found then
      raise exception using
        errcode = 'PT503',
        message = 'no active default LLM model is configured',
        hint = 'Mark one active row of llm_global_settings as is_default.';
    end if;
    v_source := 'global';
    v_provider := v_catalog.provider;
    v_model := v_catalog.model_name;
  end if;

  return jsonb_build_object(
    'provider', v_provider,
    'model', v_model,
    'display_name', coalesce(v_catalog.display_name, v_model),
    -- Key by key: catalog defaults, then the org profile's settings, then the processor's overrides.
    'settings', coalesce(v_catalog.configuration, '{}')
    || coalesce(v_profile -> 'settings', '{}')
    || coalesce(v_processor_config -> 'settings_override', '{}'),
    'capabilities', coalesce(v_catalog.capabilities, '{}'),
    'profile', v_profile_name,
    'source', v_source,
    'api_key_source',
    case when private.has_org_api_key(p_organization_id, v_provider) then 'organization' else 'system' end
  );
end
$$;
