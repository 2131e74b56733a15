-- Fallbacks: what a call tries next when its provider is down or rejects the key.
--
-- An organization profile may name `fallbacks`, and a processor's `configuration.fallbacks`
-- replaces its profile's: an ordered list of other profile names of the same organization, or
-- {provider, model} entries of the catalog. A profile named as a fallback brings its own
-- fallbacks after it (depth first), so the profiles' fallbacks must not form a cycle.
-- Validated at write time: unknown profile, model not active in the catalog, cycle, more than
-- 10 entries. At resolution a target that has become unusable since (profile removed, model
-- deactivated) is left out, and so is one that repeats an earlier provider and model.
--
-- Objects: private.assert_valid_llm_fallbacks, private.assert_valid_llm_configuration (replaced:
-- allows and checks `fallbacks`), private.validate_processor_configuration (replaced: checks the
-- processor's fallbacks against its organization), private.resolve_llm_fallbacks,
-- public.get_effective_llm_config and public.get_effective_llm_config_for_org (replaced: the
-- output gains `fallbacks`, a list of {provider, model, display_name, settings, capabilities,
-- profile, api_key_source}; the other keys keep their meaning).
-- Grants: the replaced functions keep theirs; the new helpers run as the writing or resolving
-- role (authenticated, service_role).

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
      if not exists (
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

-- Invoker: resolves as the caller like private.resolve_llm_config, whose output it completes.
-- Depth first: each profile named as a fallback is followed by its own fallbacks.
create function private.resolve_llm_fallbacks(p_organization_id uuid, p_processor_id uuid, p_config jsonb)
returns jsonb
language sql
stable
set search_path = ''  -- empty: the caller's search_path cannot redirect its schema-qualified names
as $$
  with recursive
  org as (
    select coalesce(o.llm_configuration -> 'profiles', '{}') as profiles
    from public.organizations as o
    where o.id = p_organization_id
  ),
  -- The processor's list replaces its profile's; a profile that names a catalog category has none.
  list as (
    select coalesce(
      (select p.configuration -> 'fallbacks' from public.processors as p
       where p.id = p_processor_id and p.organization_id = p_organization_id),
      org.profiles -> (p_config ->> 'profile') -> 'fallbacks',
      '[]'
    ) as fallbacks
    from org
  ),
  entry (position, item, seen) as (
    select array[f.n], f.value, array[]::text[]
    from list cross join lateral jsonb_array_elements(list.fallbacks) with ordinality as f(value, n)
    union all
    select e.position || f.n, f.value, e.seen || (e.item #>> '{}')
    from entry as e
    cross join org
    cross join lateral jsonb_array_elements(coalesce(org.profiles -> (e.item #>> '{}') -> 'fallbacks', '[]'))
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
    cross join org
    left join lateral (select org.profiles -> (e.item #>> '{}') as value) as profile
      on jsonb_typeof(e.item) = 'string'
    where jsonb_typeof(e.item) = 'object' or profile.value is not null
  ),
  usable as (
    select distinct on (t.provider, t.model) t.*, g.display_name, g.configuration, g.capabilities
    from target as t
    left join public.llm_global_settings as g on g.provider = t.provider and g.model_name = t.model
    -- A catalog entry must still be active; a profile's model may be one the catalog lacks.
    where (g.is_active or (t.is_profile and g.provider is null))
      and (t.provider, t.model) is distinct from (p_config ->> 'provider', p_config ->> 'model')
    order by t.provider, t.model, t.position
  )
  select coalesce(jsonb_agg(
    jsonb_build_object(
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
$$;

-- Invoker, as before: RLS and the caller's own organization bound what it can resolve.
create or replace function public.get_effective_llm_config(p_processor_id uuid default null)
returns jsonb
language plpgsql
stable
set search_path = ''  -- empty: the caller's search_path cannot redirect its schema-qualified names
as $$
declare
  v_organization_id uuid := private.current_org_id();
  v_config jsonb;
begin
  if v_organization_id is null then
    raise exception using
      errcode = '42501',
      message = 'the caller belongs to no organization',
      hint = 'The token needs app_metadata.organization_id of an organization the user is a member of.';
  end if;
  v_config := private.resolve_llm_config(v_organization_id, p_processor_id);
  return v_config || jsonb_build_object(
    'fallbacks', private.resolve_llm_fallbacks(v_organization_id, p_processor_id, v_config)
  );
end
$$;

-- Invoker, as before: only the service role may call it; it bypasses RLS by role attribute.
create or replace function public.get_effective_llm_config_for_org(p_organization_id uuid, p_processor_id uuid default null)
returns jsonb
language plpgsql
stable
set search_path = ''  -- empty: the caller's search_path cannot redirect its schema-qualified names
as $$
declare
  v_config jsonb := private.resolve_llm_config(p_organization_id, p_processor_id);
begin
  return v_config || jsonb_build_object(
    'fallbacks', private.resolve_llm_fallbacks(p_organization_id, p_processor_id, v_config)
  );
end
$$;

revoke execute on function private.assert_valid_llm_fallbacks(jsonb, jsonb, text),
  private.resolve_llm_fallbacks(uuid, uuid, jsonb) from public, anon, authenticated, service_role;
-- The validation triggers run it as the writing role: signed-in admins and the service role.
grant execute on function private.assert_valid_llm_fallbacks(jsonb, jsonb, text) to authenticated, service_role;
-- The public resolution functions run it as their caller: signed-in users and the service role.
grant execute on function private.resolve_llm_fallbacks(uuid, uuid, jsonb) to authenticated, service_role;
