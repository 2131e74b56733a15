-- Configuration by model name, for the gateway's OpenAI-compatible endpoint: a request names
-- `profile/<name>` (one of the organization's profiles) or `<provider>/<model_name>` (an active
-- catalog model, or `custom:<name>/<model_name>` of an active custom provider), and lists what
-- it may name.
--
-- Objects: private.resolve_llm_model_choice, private.llm_model_choices; public.get_llm_config_for_model
-- and public.list_llm_models (signed-in members, for their own organization);
-- public.get_llm_config_for_model_for_org and public.list_llm_models_for_org (service role).
-- Output of the get functions: the shape of get_effective_llm_config. A profile resolves as the
-- organization's default profile would (source `organization`, its settings and fallbacks); a
-- model named directly resolves with the model's own defaults (source `global`, no profile, no
-- fallbacks). Anything else raises PT404 (HTTP 404), another organization's profile included.
-- Grants: authenticated the user functions, service_role the _for_org ones; anon nothing.

-- Invoker: a signed-in caller sees only what RLS lets it see, on top of the explicit
-- organization filter; the service role bypasses RLS.
create function private.resolve_llm_model_choice(p_organization_id uuid, p_model text)
returns jsonb
language plpgsql
stable
set search_path = ''  -- empty: the caller's search_path cannot redirect its schema-qualified names
as $$
declare
  v_profiles jsonb;
  v_profile jsonb;
  v_name text;
  v_provider text;
  v_model text;
  v_catalog public.llm_global_settings;
  v_custom jsonb;
begin
  select coalesce(o.llm_configuration -> 'profiles', '{}') into v_profiles
  from public.organizations as o
  where o.id = p_organization_id;
  if not found then
    raise exception using errcode = 'PT404', message = 'organization not found';
  end if;

  if p_model like 'profile/%' then
    v_name := substr(p_model, length('profile/') + 1);
    v_profile := private.usable_llm_profile(p_organization_id, v_profiles -> v_name);
    v_provider := v_profile ->> 'provider';
    v_model := v_profile ->> 'model';
  elsif position('/' in coalesce(p_model, '')) > 1 then
    v_provider := split_part(p_model, '/', 1);
    v_model := substr(p_model, length(v_provider) + 2);
  end if;

  if v_provider like 'custom:%' then
    v_custom := private.custom_llm_model(p_organization_id, v_provider, v_model);
  elsif v_provider is not null then
    select g.* into v_catalog from public.llm_global_settings as g
    where g.provider = v_provider and g.model_name = v_model;
  end if;
  -- A profile may name a model the catalog lacks; a model named directly must be offered.
  if v_provider is null
     or (v_provider like 'custom:%' and v_custom is null)
     or (v_profile is null and v_provider not like 'custom:%' and not coalesce(v_catalog.is_active, false)) then
    raise exception using
      errcode = 'PT404',
      message = format('model %s not found', coalesce(p_model, 'null')),
      hint = 'Name processor/<id>, profile/<name> or <provider>/<model_name> as listed by the models list.';
  end if;

  return jsonb_strip_nulls(jsonb_build_object('base_url', v_custom ->> 'base_url')) || jsonb_build_object(
    'provider', v_provider,
    'model', v_model,
    'display_name', coalesce(v_custom ->> 'display_name', v_catalog.display_name, v_model),
    'settings', coalesce(v_custom -> 'settings', v_catalog.configuration, '{}') || coalesce(v_profile -> 'settings', '{}'),
    'capabilities', coalesce(v_custom -> 'capabilities', v_catalog.capabilities, '{}'),
    'profile', v_name,
    'source', case when v_profile is null then 'global' else 'organization' end,
    'api_key_source',
    case when private.has_org_api_key(p_organization_id, v_provider) then 'organization' else 'system' end,
    'fallbacks',
    case when jsonb_array_length(coalesce(v_profile -> 'fallbacks', '[]')) = 0 then '[]'::jsonb
         else private.resolve_llm_fallbacks(p_organization_id, v_profiles, v_profile -> 'fallbacks', v_provider, v_model)
    end
  );
end
$$;

-- Invoker: lists as the caller (RLS: the organization's processors and custom providers). What
-- resolve_llm_model_choice accepts, and the organization's processors.
create function private.llm_model_choices(p_organization_id uuid)
returns table (id text, owned_by text, display_name text)
language plpgsql
stable
set search_path = ''  -- empty: the caller's search_path cannot redirect its schema-qualified names
as $$
begin
  return query
  select 'processor/' || p.id::text, 'organization', p.name
  from public.processors as p
  where p.organization_id = p_organization_id
  union all
  select 'profile/' || e.key, 'organization', e.key
  from public.organizations as o
  cross join lateral jsonb_each(coalesce(o.llm_configuration -> 'profiles', '{}')) as e
  where o.id = p_organization_id and private.usable_llm_profile(p_organization_id, e.value) is not null
  union all
  select g.provider || '/' || g.model_name, g.provider, g.display_name
  from public.llm_global_settings as g
  where g.is_active
  union all
  select 'custom:' || c.name || '/' || (m.value ->> 'model_name'), 'custom:' || c.name,
    coalesce(m.value ->> 'display_name', m.value ->> 'model_name')
  from public.llm_custom_providers as c
  cross join lateral jsonb_array_elements(c.models) as m(value)
  where c.organization_id = p_organization_id and c.is_active
  order by 1;
end
$$;

-- Invoker: RLS and the caller's own organization bound what it can resolve.
create function public.get_llm_config_for_model(p_model text)
returns jsonb
language plpgsql
stable
set search_path = ''  -- empty: the caller's search_path cannot redirect its schema-qualified names
as $$
begin
  return private.resolve_llm_model_choice(private.required_org_id(), p_model);
end
$$;

comment on function public.get_llm_config_for_model(text) is
'Effective LLM configuration for profile/<name> or <provider>/<model_name> in the caller''s organization.';

-- Invoker: only the service role may call it; it bypasses RLS by role attribute.
create function public.get_llm_config_for_model_for_org(p_organization_id uuid, p_model text)
returns jsonb
language plpgsql
stable
set search_path = ''  -- empty: the caller's search_path cannot redirect its schema-qualified names
as $$
begin
  return private.resolve_llm_model_choice(p_organization_id, p_model);
end
$$;

comment on function public.get_llm_config_for_model_for_org(uuid, text) is
'get_llm_config_for_model for an explicit organization (background work). Service role only.';

-- Invoker: RLS and the caller's own organization bound what it lists.
create function public.list_llm_models()
returns table (id text, owned_by text, display_name text)
language plpgsql
stable
set search_path = ''  -- empty: the caller's search_path cannot redirect its schema-qualified names
as $$
begin
  return query select c.id, c.owned_by, c.display_name from private.llm_model_choices(private.required_org_id()) as c;
end
$$;

comment on function public.list_llm_models() is
'What the caller''s organization may name as a model: processor/<id>, profile/<name>, <provider>/<model_name>.';

-- Invoker: only the service role may call it; it bypasses RLS by role attribute.
create function public.list_llm_models_for_org(p_organization_id uuid)
returns table (id text, owned_by text, display_name text)
language plpgsql
stable
set search_path = ''  -- empty: the caller's search_path cannot redirect its schema-qualified names
as $$
begin
  return query select c.id, c.owned_by, c.display_name from private.llm_model_choices(p_organization_id) as c;
end
$$;

comment on function public.list_llm_models_for_org(uuid) is
'list_llm_models for an explicit organization. Service role only.';

-- Undo what older projects auto-grant (PUBLIC and every API role); the grant below names who needs it.
revoke execute on function private.resolve_llm_model_choice(uuid, text), private.llm_model_choices(uuid)
from public, anon, authenticated, service_role;
-- The public functions run them as their caller: signed-in users and the service role.
grant execute on function private.resolve_llm_model_choice(uuid, text), private.llm_model_choices(uuid)
to authenticated, service_role;

-- Revoke what older projects auto-grant, then grant each function to exactly its callers.
revoke execute on function public.get_llm_config_for_model(text), public.get_llm_config_for_model_for_org(uuid, text),
  public.list_llm_models(), public.list_llm_models_for_org(uuid) from public, anon, authenticated, service_role;
-- Signed-in members resolve and list for their own organization only.
grant execute on function public.get_llm_config_for_model(text), public.list_llm_models() to authenticated;
-- The service role resolves and lists for any organization (the gateway on behalf of background work).
grant execute on function public.get_llm_config_for_model_for_org(uuid, text), public.list_llm_models_for_org(uuid)
to service_role;
