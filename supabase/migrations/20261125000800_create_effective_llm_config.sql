-- Resolution of the LLM configuration an operation uses: processor → organization → global.
--
-- Objects: private.resolve_llm_config (the one implementation), public.get_effective_llm_config
-- (signed-in users, for their own organization), public.get_effective_llm_config_for_org
-- (service role, for an explicit organization).
-- Output for both: {provider, model, display_name, settings, capabilities, profile, source,
-- api_key_source}; never a key or a secret id.
-- Errors: 42501 caller without organization; P0002 organization or processor not found (another
-- organization's processor included); PT503 no active default model in the catalog.
-- Grants: get_effective_llm_config to authenticated; get_effective_llm_config_for_org to
-- service_role; anon nothing.

-- Invoker: a signed-in caller sees only what RLS lets it see, on top of the explicit
-- organization filter; the service role bypasses RLS.
create function private.resolve_llm_config(p_organization_id uuid, p_processor_id uuid)
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
    raise exception using errcode = 'P0002', message = 'organization not found';
  end if;

  if p_processor_id is not null then
    select p.configuration into v_processor_config
    from public.processors as p
    where p.id = p_processor_id and p.organization_id = p_organization_id;
    if not found then
      raise exception using errcode = 'P0002', message = 'processor not found';
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

-- Invoker: RLS and the caller's own organization bound what it can resolve.
create function public.get_effective_llm_config(p_processor_id uuid default null)
returns jsonb
language plpgsql
stable
set search_path = ''  -- empty: the caller's search_path cannot redirect its schema-qualified names
as $$
declare
  v_organization_id uuid := private.current_org_id();
begin
  if v_organization_id is null then
    raise exception using
      errcode = '42501',
      message = 'the caller belongs to no organization',
      hint = 'The token needs app_metadata.organization_id of an organization the user is a member of.';
  end if;
  return private.resolve_llm_config(v_organization_id, p_processor_id);
end
$$;

comment on function public.get_effective_llm_config(uuid) is
'Effective LLM configuration for the caller''s organization, optionally for one of its processors.';

-- Invoker: only the service role may call it; it bypasses RLS by role attribute.
create function public.get_effective_llm_config_for_org(p_organization_id uuid, p_processor_id uuid default null)
returns jsonb
language plpgsql
stable
set search_path = ''  -- empty: the caller's search_path cannot redirect its schema-qualified names
as $$
begin
  return private.resolve_llm_config(p_organization_id, p_processor_id);
end
$$;

comment on function public.get_effective_llm_config_for_org(uuid, uuid) is
'Effective LLM configuration for an explicit organization (background work). Service role only.';

-- The shared implementation runs as whichever API role called the public function.
revoke execute on function private.resolve_llm_config(uuid, uuid) from public;
grant execute on function private.resolve_llm_config(uuid, uuid) to authenticated, service_role;

-- Revoke what older projects auto-grant, then grant each function to exactly its callers.
revoke execute on function public.get_effective_llm_config(uuid),
  public.get_effective_llm_config_for_org(uuid, uuid) from public, anon, authenticated, service_role;
-- Signed-in users resolve for their own organization only.
grant execute on function public.get_effective_llm_config(uuid) to authenticated;
-- The service role resolves for any organization (gateway background work).
grant execute on function public.get_effective_llm_config_for_org(uuid, uuid) to service_role;
