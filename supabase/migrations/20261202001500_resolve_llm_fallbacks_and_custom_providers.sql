-- Fallbacks, and custom providers in resolution: what a call tries next when its provider is down
-- or rejects the key, and how a profile uses an organization's own endpoint.
--
-- Fallbacks: an organization profile may name `fallbacks`, and a processor's
-- `configuration.fallbacks` replaces its profile's: an ordered list of other profile names of the
-- same organization, or {provider, model} entries of the catalog (or `custom:<name>` entries). A
-- profile named as a fallback brings its own fallbacks after it (depth first), so the profiles'
-- fallbacks must not form a cycle. Validated at write time: unknown profile, model not active in
-- the catalog, cycle, more than 10 entries; a custom entry is checked for its shape only (the
-- check has no organization; its provider is checked at resolution). At resolution a target that
-- has become unusable since (profile removed, model deactivated, custom provider gone) is left
-- out, and so is one that repeats an earlier provider and model. Resolved in
-- private.resolve_llm_config, which has the organization's profiles and the processor's
-- configuration at hand already: no second read of either, no work when there are no fallbacks.
--
-- Custom providers: a profile, a processor or a fallback uses one as {"provider":
-- "custom:<name>", "model": "<model_name>"}. Resolution treats it like a catalog model (the
-- model's own settings are the defaults under the profile's settings and the processor's
-- overrides) and adds `base_url`. A profile whose custom provider is deleted, inactive or no
-- longer lists the model is unusable: resolution goes on to the next tier (the organization's
-- default profile, then the catalog default).
--
-- Output of get_effective_llm_config (unchanged functions): the existing keys keep their meaning;
-- new are `fallbacks` ([{provider, model, display_name, settings, capabilities, profile,
-- api_key_source}, ...]) and, for a custom provider's target, `base_url`.
-- Objects: private.custom_llm_model, private.usable_llm_profile, private.assert_valid_llm_fallbacks,
-- private.resolve_llm_fallbacks (new); private.assert_valid_llm_configuration,
-- private.validate_processor_configuration, private.resolve_llm_config (replaced; create or
-- replace keeps their grants).
-- Grants: the new helpers run as the writing or resolving role (authenticated, service_role).

-- Invoker: members read their organization's custom providers (RLS); the service role every one.
-- {display_name, settings, capabilities, base_url} of an active custom provider's listed model.
-- plpgsql rather than SQL: its plan is re-checked when the role changes within a transaction
-- (a SQL function called from plpgsql keeps the plan, RLS filter included, of its first caller).
create function private.custom_llm_model(p_organization_id uuid, p_provider text, p_model text)
returns jsonb
language plpgsql
stable
set search_path = ''  -- empty: the caller's search_path cannot redirect its schema-qualified names
as $$
begin
  return (
    select jsonb_build_object(
      'display_name', coalesce(m.value ->> 'display_name', p_model),
      'settings', coalesce(m.value -> 'settings', '{}'),
      'capabilities', coalesce(m.value -> 'capabilities', '{}'),
      'base_url', c.base_url
    )
    from public.llm_custom_providers as c
    cross join lateral jsonb_array_elements(c.models) as m(value)
    where c.organization_id = p_organization_id and 'custom:' || c.name = p_provider and c.is_active
      and m.value ->> 'model_name' = p_model
  );
end
$$;

-- Invoker: runs as the writing role inside the validation triggers; it reads the catalog, which
-- signed-in users may read.
create function private.assert_valid_llm_fallbacks(p_fallbacks jsonb, p_profiles jsonb, p_path text)
returns void
language plpgsql
stable
set search_path = ''  -- empty: the caller's search_path cannot redirect its schema-qualified names
as $$
declare
  v_entry jsonb;
  v_index integer;
  v_key text;
begin
  if jsonb_typeof(p_fallbacks) is distinct from 'array' then
    raise exception using errcode = '22023',
      message = format('%s: must be a list of profile names or {provider, model} entries', p_path);
  end if;
  if jsonb_array_length(p_fallbacks) > 10 then
    raise exception using errcode = '22023', message = format('%s: at most 10 fallbacks', p_path);
  end if;
  for v_entry, v_index in select f.value, (f.n - 1)::integer from jsonb_array_elements(p_fallbacks) with ordinality as f(value, n) loop
    if jsonb_typeof(v_entry) = 'string' then
      if not coalesce(p_profiles ? (v_entry #>> '{}'), false) then
        raise exception using errcode = '22023',
          message = format('%s[%s]: unknown profile %s', p_path, v_index, v_entry),
          hint = 'A fallback names a profile of the same organization or a {provider, model} catalog entry.';
      end if;
    elsif jsonb_typeof(v_entry) = 'object' then
      for v_key in select jsonb_object_keys(v_entry) loop
        if v_key not in ('provider', 'model') then
          raise exception using errcode = '22023',
            message = format('%s[%s].%s: unknown field', p_path, v_index, v_key),
            hint = 'Allowed fields: provider, model.';
        end if;
      end loop;
      if v_entry ->> 'provider' ~ '^custom:[a-z][a-z0-9-]{1,30}$' then
        -- Another organization's custom providers are not this function's to see: checked at resolution.
        if jsonb_typeof(v_entry -> 'model') is distinct from 'string' or btrim(v_entry ->> 'model') = '' then
          raise exception using errcode = '22023',
            message = format('%s[%s].model: must be a non-empty model id', p_path, v_index);
        end if;
      elsif not exists (
        select from public.llm_global_settings as g
        where g.provider = v_entry ->> 'provider' and g.model_name = v_entry ->> 'model' and g.is_active
      ) then
        raise exception using errcode = '22023',
          message = format('%s[%s]: %s/%s is not an active model of the catalog', p_path, v_index,
                           coalesce(v_entry ->> 'provider', '?'), coalesce(v_entry ->> 'model', '?'));
      end if;
    else
      raise exception using errcode = '22023',
        message = format('%s[%s]: must be a profile name or a {provider, model} entry', p_path, v_index);
    end if;
  end loop;
end
$$;

-- Invoker, as before: the organizations trigger runs it as the writing role.
create or replace function private.assert_valid_llm_configuration(p_config jsonb)
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
  v_cycle text[];
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
      if v_key not in ('provider', 'model', 'settings', 'fallbacks') then
        raise exception using errcode = '22023',
          message = format('%s.profiles.%s.%s: unknown field', v_path, v_name, v_key),
          hint = 'Allowed fields: provider, model, settings, fallbacks.';
      end if;
    end loop;
    if jsonb_typeof(v_profile -> 'provider') is distinct from 'string'
       or not ((v_profile ->> 'provider') = any(private.llm_providers())
               or (v_profile ->> 'provider') ~ '^custom:[a-z][a-z0-9-]{1,30}$') then
      raise exception using errcode = '22023',
        message = format('%s.profiles.%s.provider: must be one of %s, or custom:<name>', v_path, v_name,
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
    if v_profile ? 'fallbacks' then
      perform private.assert_valid_llm_fallbacks(
        v_profile -> 'fallbacks', p_config -> 'profiles', format('%s.profiles.%s.fallbacks', v_path, v_name)
      );
    end if;
  end loop;

  -- A profile reached again through its own fallbacks would be tried forever: find the shortest
  -- such path, to name it.
  with recursive walk (profile, path) as (
    select e.key, array[e.key] from jsonb_each(coalesce(p_config -> 'profiles', '{}')) as e
    union all
    select f.value #>> '{}', w.path || (f.value #>> '{}')
    from walk as w
    cross join lateral jsonb_array_elements(coalesce(p_config -> 'profiles' -> w.profile -> 'fallbacks', '[]')) as f
    -- A path stops where it meets a profile it passed already (the start included: a cycle).
    where jsonb_typeof(f.value) = 'string' and not w.profile = any(w.path[1:cardinality(w.path) - 1])
  )
  select w.path into v_cycle
  from walk as w
  where cardinality(w.path) > 1 and w.profile = w.path[1]
  order by cardinality(w.path), w.path
  limit 1;
  if v_cycle is not null then
    raise exception using errcode = '22023',
      message = format('%s.profiles.%s.fallbacks: the fallbacks form a cycle (%s)', v_path, v_cycle[1],
                       array_to_string(v_cycle, ' -> '));
  end if;

  if p_config ? 'default_profile' then
    if jsonb_typeof(p_config -> 'default_profile') <> 'string'
       or not coalesce(p_config -> 'profiles', '{}') ? (p_config ->> 'default_profile') then
      raise exception using errcode = '22023',
        message = format('%s.default_profile: must name one of the profiles', v_path);
    end if;
  end if;
end
$$;

-- Trigger function, as before; it now also reads the organization's profiles (as the writing
-- role: an admin sees their own organization, the service role every one).
create or replace function private.validate_processor_configuration()
returns trigger
language plpgsql
set search_path = ''  -- empty: the caller's search_path cannot redirect its schema-qualified names
as $$
begin
  perform private.assert_valid_processor_configuration(new.configuration);
  if new.configuration ? 'fallbacks' then
    perform private.assert_valid_llm_fallbacks(
      new.configuration -> 'fallbacks',
      (select o.llm_configuration -> 'profiles' from public.organizations as o where o.id = new.organization_id),
      'configuration.fallbacks'
    );
  end if;
  return new;
end
$$;

-- Invoker: reads the organization's custom providers as the resolving role. `p_profile` itself,
-- or null when it names a custom provider's model that cannot be used (deleted, inactive, unlisted).
create function private.usable_llm_profile(p_organization_id uuid, p_profile jsonb)
returns jsonb
language sql
stable
set search_path = ''  -- empty: the caller's search_path cannot redirect its schema-qualified names
as $$
  select case
    when p_profile is null then null
    when p_profile ->> 'provider' not like 'custom:%' then p_profile
    when private.custom_llm_model(p_organization_id, p_profile ->> 'provider', p_profile ->> 'model') is not null then p_profile
  end
$$;

-- Invoker: runs inside private.resolve_llm_config, as its caller. `p_fallbacks` resolved against
-- the organization's `p_profiles`, depth first, leaving out the primary target (`p_provider`,
-- `p_model`) and whatever cannot be used. plpgsql rather than SQL: a SQL function with its own
-- settings is never inlined and would plan this recursive query again on every call.
create function private.resolve_llm_fallbacks(
  p_organization_id uuid, p_profiles jsonb, p_fallbacks jsonb, p_provider text, p_model text
)
returns jsonb
language plpgsql
stable
set search_path = ''  -- empty: the caller's search_path cannot redirect its schema-qualified names
as $$
begin
  return (
    with recursive
    entry (position, item, seen) as (
      select array[f.n], f.value, array[]::text[]
      from jsonb_array_elements(p_fallbacks) with ordinality as f(value, n)
      union all
      select e.position || f.n, f.value, e.seen || (e.item #>> '{}')
      from entry as e
      cross join lateral jsonb_array_elements(coalesce(p_profiles -> (e.item #>> '{}') -> 'fallbacks', '[]'))
        with ordinality as f(value, n)
      where jsonb_typeof(e.item) = 'string' and not (e.item #>> '{}') = any(e.seen) and cardinality(e.position) < 10
    ),
    target as (
      select
        e.position,
        coalesce(profile.value ->> 'provider', e.item ->> 'provider') as provider,
        coalesce(profile.value ->> 'model', e.item ->> 'model') as model,
        profile.value -> 'settings' as profile_settings,
        case when jsonb_typeof(e.item) = 'string' then e.item #>> '{}' end as profile_name,
        profile.value is not null as is_profile
      from entry as e
      left join lateral (select p_profiles -> (e.item #>> '{}') as value) as profile
        on jsonb_typeof(e.item) = 'string'
      where jsonb_typeof(e.item) = 'object' or profile.value is not null
    ),
    usable as (
      select distinct on (t.provider, t.model)
        t.*,
        coalesce(custom.model ->> 'display_name', g.display_name) as display_name,
        coalesce(custom.model -> 'settings', g.configuration) as configuration,
        coalesce(custom.model -> 'capabilities', g.capabilities) as capabilities,
        custom.model ->> 'base_url' as base_url
      from target as t
      left join public.llm_global_settings as g on g.provider = t.provider and g.model_name = t.model
      cross join lateral (
        select case when t.provider like 'custom:%' then private.custom_llm_model(p_organization_id, t.provider, t.model) end
      ) as custom (model)
      -- A catalog entry must still be active; a profile's model may be one the catalog lacks; a
      -- custom provider must exist, be active and list the model.
      where case when t.provider like 'custom:%' then custom.model is not null
                 else g.is_active or (t.is_profile and g.provider is null) end
        and (t.provider, t.model) is distinct from (p_provider, p_model)
      order by t.provider, t.model, t.position
    )
    select coalesce(jsonb_agg(
      jsonb_strip_nulls(jsonb_build_object('base_url', u.base_url)) || jsonb_build_object(
        'provider', u.provider,
        'model', u.model,
        'display_name', coalesce(u.display_name, u.model),
        'settings', coalesce(u.configuration, '{}') || coalesce(u.profile_settings, '{}'),
        'capabilities', coalesce(u.capabilities, '{}'),
        'profile', u.profile_name,
        'api_key_source',
        case when private.has_org_api_key(p_organization_id, u.provider) then 'organization' else 'system' end
      ) order by u.position
    ), '[]')
    from (select * from usable order by position limit 10) as u
  );
end
$$;

-- Invoker, as before: a signed-in caller sees only what RLS lets it see, on top of the explicit
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
  v_custom jsonb;
  v_fallbacks jsonb;
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

  -- 1. The processor's profile: the organization's profile of that name (unless it names a
  --    custom model that is gone), else the active catalog model of that category.
  if v_requested_profile is not null then
    v_profile := private.usable_llm_profile(p_organization_id, v_org_config -> 'profiles' -> v_requested_profile);
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
    v_profile := private.usable_llm_profile(
      p_organization_id, v_org_config -> 'profiles' -> (v_org_config ->> 'default_profile')
    );
    if v_profile is not null then
      v_source := 'organization';
      v_profile_name := v_org_config ->> 'default_profile';
    end if;
  end if;

  if v_profile is not null then
    v_provider := v_profile ->> 'provider';
    v_model := v_profile ->> 'model';
    if v_provider like 'custom:%' then
      v_custom := private.custom_llm_model(p_organization_id, v_provider, v_model);
    else
      select g.* into v_catalog
      from public.llm_global_settings as g
      where g.provider = v_provider and g.model_name = v_model;
    end if;
  end if;

  -- The processor's list replaces its profile's (even an empty one); a catalog pick has none.
  v_fallbacks := coalesce(v_processor_config -> 'fallbacks', v_profile -> 'fallbacks', '[]');

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

  return jsonb_strip_nulls(jsonb_build_object('base_url', v_custom ->> 'base_url')) || jsonb_build_object(
    'provider', v_provider,
    'model', v_model,
    'display_name', coalesce(v_custom ->> 'display_name', v_catalog.display_name, v_model),
    -- Key by key: the model's defaults, then the org profile's settings, then the processor's overrides.
    'settings', coalesce(v_custom -> 'settings', v_catalog.configuration, '{}')
    || coalesce(v_profile -> 'settings', '{}')
    || coalesce(v_processor_config -> 'settings_override', '{}'),
    'capabilities', coalesce(v_custom -> 'capabilities', v_catalog.capabilities, '{}'),
    'profile', v_profile_name,
    'source', v_source,
    'api_key_source',
    case when private.has_org_api_key(p_organization_id, v_provider) then 'organization' else 'system' end,
    'fallbacks',
    case when jsonb_array_length(v_fallbacks) = 0 then '[]'::jsonb
         else private.resolve_llm_fallbacks(p_organization_id, v_org_config -> 'profiles', v_fallbacks, v_provider, v_model)
    end
  );
end
$$;

-- Undo what older projects auto-grant (PUBLIC and every API role); the grant below names who needs it.
revoke execute on function private.custom_llm_model(uuid, text, text), private.usable_llm_profile(uuid, jsonb),
  private.assert_valid_llm_fallbacks(jsonb, jsonb, text), private.resolve_llm_fallbacks(uuid, jsonb, jsonb, text, text)
from public, anon, authenticated, service_role;
-- The validation triggers run it as the writing role: signed-in admins and the service role.
grant execute on function private.assert_valid_llm_fallbacks(jsonb, jsonb, text) to authenticated, service_role;
-- Resolution runs them as its caller: signed-in users and the service role.
grant execute on function private.custom_llm_model(uuid, text, text), private.usable_llm_profile(uuid, jsonb),
  private.resolve_llm_fallbacks(uuid, jsonb, jsonb, text, text) to authenticated, service_role;
