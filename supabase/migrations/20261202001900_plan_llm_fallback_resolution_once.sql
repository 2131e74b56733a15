-- Fallback resolution as plpgsql instead of SQL: a SQL function with its own settings is never
-- inlined and plans its recursive query again on every call, which measured about 0.8 ms at p99
-- for a three-target chain (bench/results/resolution_latency.md); plpgsql keeps the plan.
--
-- Objects: private.resolve_llm_fallbacks (replaced, same signature, result and behaviour; create
-- or replace keeps its grants).
-- Grants: none change.

-- Invoker, as before: runs inside private.resolve_llm_config, as its caller.
create or replace function private.resolve_llm_fallbacks(
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
