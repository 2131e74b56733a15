-- An organization's own OpenAI-compatible endpoints (vLLM, Ollama, TGI, a regional reseller),
-- used like any provider as `custom:<name>`.
--
-- A tenant chooses the URL and the gateway fetches it: the base URL is checked here already
-- (https, or http only for an address inside the networks the operator allows; no user info, no
-- fragment; no literal address in a private, loopback, link-local, shared, reserved,
-- documentation or metadata range unless allowed; cloud metadata names and addresses never),
-- and the gateway checks every address a name resolves to on every call.
-- Objects: public.llm_custom_providers (RLS: members read, owners and admins write),
-- private.custom_provider_allowed_networks (the operator's allowed networks, kept in step with
-- GATEWAY_CUSTOM_PROVIDER_ALLOWED_NETWORKS), private.assert_valid_custom_provider_base_url,
-- private.validate_llm_custom_provider() and its trigger, the change-notification trigger;
-- private.assert_llm_provider (replaced: accepts `custom:<name>`, so store_org_api_key keeps a
-- custom provider's key) and llm_usage_logs' provider check (the same names).
-- Grants: authenticated reads and, as owner or admin, writes (RLS picks rows); service_role all.

create table public.llm_custom_providers (
  id uuid primary key default gen_random_uuid(),
  organization_id uuid not null references public.organizations (id) on delete cascade,
  name text not null,
  base_url text not null,
  api_style text not null default 'openai',
  models jsonb not null default '[]',
  is_active boolean not null default true,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint llm_custom_providers_organization_id_name_key unique (organization_id, name)
);

comment on table public.llm_custom_providers is
'An organization''s own OpenAI-compatible endpoint, used in profiles as provider custom:<name>.';
comment on column public.llm_custom_providers.models is
'[{model_name, display_name, model_category, cost_per_million_input_tokens, cost_per_million_output_tokens, capabilities, settings}]';

create table private.custom_provider_allowed_networks (
  network cidr primary key
);

comment on table private.custom_provider_allowed_networks is
'Networks a custom provider''s base URL may point into (self-hosted models inside the operator''s network); mirror GATEWAY_CUSTOM_PROVIDER_ALLOWED_NETWORKS.';

create trigger llm_custom_providers_set_updated_at
before update on public.llm_custom_providers
for each row execute function private.set_updated_at();

-- Definer: reads the operator's allowed networks, which no API role may read; it reads nothing
-- else and only raises or returns.
create function private.assert_valid_custom_provider_base_url(p_url text, p_path text)
returns void
language plpgsql
stable
security definer
set search_path = ''  -- empty: nothing on the caller's search_path can run with the owner's rights
as $$
declare
  v_parts text[] := regexp_match(p_url, '^(https?)://([^/?#]*)([^#]*)$');
  v_authority text := v_parts[2];
  v_host text;
  v_address inet;
  v_allowed boolean := false;
begin
  if v_parts is null or length(p_url) > 2000 then
    raise exception using errcode = '22023',
      message = format('%s: must be an absolute https URL without a fragment', p_path),
      hint = 'For example https://models.example.com/v1';
  end if;
  if position('@' in v_authority) > 0 then
    raise exception using errcode = '22023', message = format('%s: must not contain a user name or password', p_path);
  end if;
  v_host := lower(rtrim(
    case when v_authority like '[%' then substring(v_authority from '^\[([^\]]*)\]')
         else regexp_replace(v_authority, ':[0-9]*$', '') end,
    '.'));
  if coalesce(v_host, '') = '' then
    raise exception using errcode = '22023', message = format('%s: has no host', p_path);
  end if;
  if v_host in ('metadata.google.internal', 'metadata.goog', 'metadata', 'instance-data', 'instance-data.ec2.internal') then
    raise exception using errcode = '22023', message = format('%s: cloud metadata endpoints are refused', p_path);
  end if;

  if v_authority like '[%' then
    begin
      v_address := v_host::inet;
    exception when invalid_text_representation then
      raise exception using errcode = '22023', message = format('%s: the host is not a valid IPv6 address', p_path);
    end;
  elsif v_host ~ '^(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+))*$' then
    -- Every numeric spelling reaches an IPv4 address; only the plain one is accepted, so that
    -- what is checked here is what anyone reading the row sees.
    if v_host !~ '^(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}$' then
      raise exception using errcode = '22023',
        message = format('%s: write an IPv4 address as four decimal numbers (a.b.c.d)', p_path);
    end if;
    v_address := v_host::inet;
  end if;

  if v_address is not null then
    if v_address in ('169.254.169.254', '169.254.170.2', '100.100.100.200', '168.63.129.16', 'fd00:ec2::254', 'fd20:ce::254') then
      raise exception using errcode = '22023', message = format('%s: cloud metadata endpoints are refused', p_path);
    end if;
    v_allowed := exists (
      select from private.custom_provider_allowed_networks as n where v_address <<= n.network
    );
    if not v_allowed and v_address <<= any (array[
      '0.0.0.0/8', '10.0.0.0/8', '100.64.0.0/10', '127.0.0.0/8', '169.254.0.0/16', '172.16.0.0/12',
      '192.0.0.0/24', '192.0.2.0/24', '192.168.0.0/16', '198.18.0.0/15', '198.51.100.0/24',
      '203.0.113.0/24', '224.0.0.0/4', '240.0.0.0/4',
      -- IPv6, with every form that embeds an IPv4 address (mapped, compatible, NAT64, 6to4, Teredo).
      '::/96', '::ffff:0:0/96', '64:ff9b::/96', '64:ff9b:1::/48', '100::/64', '2001::/32',
      '2001:db8::/32', '2002::/16', 'fc00::/7', 'fe80::/10', 'fec0::/10', 'ff00::/8'
    ]::cidr[]) then
      raise exception using errcode = '22023',
        message = format('%s: the address is private, loopback, link-local, shared, reserved or documentation space', p_path),
        hint = 'An operator can allow networks for self-hosted models in private.custom_provider_allowed_networks.';
    end if;
  end if;

  if v_parts[1] = 'http' and not v_allowed then
    raise exception using errcode = '22023',
      message = format('%s: must use https (http only for an address inside the networks the operator allows)', p_path);
  end if;
end
$$;

create function private.validate_llm_custom_provider()
returns trigger
language plpgsql
set search_path = ''  -- empty: the caller's search_path cannot redirect its schema-qualified names
as $$
declare
  v_path constant text := 'llm_custom_providers';
  v_model jsonb;
  v_index integer;
  v_key text;
  v_cost text;
begin
  if tg_op = 'UPDATE' and new.organization_id is distinct from old.organization_id then
    raise exception using errcode = '22023', message = format('%s.organization_id: cannot change', v_path);
  end if;
  if new.name is null or new.name !~ '^[a-z][a-z0-9-]{1,30}$' then
    raise exception using errcode = '22023',
      message = format('%s.name: 2 to 31 lowercase letters, digits or -, starting with a letter', v_path);
  end if;
  if new.api_style is null or new.api_style <> 'openai' then
    raise exception using errcode = '22023', message = format('%s.api_style: must be openai', v_path);
  end if;
  perform private.assert_valid_custom_provider_base_url(new.base_url, v_path || '.base_url');

  perform private.assert_no_credentials(new.models, v_path || '.models');
  if jsonb_typeof(new.models) is distinct from 'array' or jsonb_array_length(new.models) > 100 then
    raise exception using errcode = '22023', message = format('%s.models: must be a list of at most 100 models', v_path);
  end if;
  for v_model, v_index in
    select m.value, (m.n - 1)::integer from jsonb_array_elements(new.models) with ordinality as m(value, n)
  loop
    if jsonb_typeof(v_model) <> 'object' then
      raise exception using errcode = '22023', message = format('%s.models[%s]: must be an object', v_path, v_index);
    end if;
    for v_key in select jsonb_object_keys(v_model) loop
      if v_key not in ('model_name', 'display_name', 'model_category', 'cost_per_million_input_tokens',
                       'cost_per_million_output_tokens', 'capabilities', 'settings') then
        raise exception using errcode = '22023',
          message = format('%s.models[%s].%s: unknown field', v_path, v_index, v_key),
          hint = 'Allowed fields: model_name, display_name, model_category, cost_per_million_input_tokens, cost_per_million_output_tokens, capabilities, settings.';
      end if;
    end loop;
    if jsonb_typeof(v_model -> 'model_name') is distinct from 'string'
       or btrim(v_model ->> 'model_name') = '' or length(v_model ->> 'model_name') > 200 then
      raise exception using errcode = '22023',
        message = format('%s.models[%s].model_name: must be a non-empty model id', v_path, v_index);
    end if;
    if (select count(*) from jsonb_array_elements(new.models) as m where m.value ->> 'model_name' = v_model ->> 'model_name') > 1 then
      raise exception using errcode = '22023',
        message = format('%s.models[%s].model_name: %s is listed twice', v_path, v_index, v_model ->> 'model_name');
    end if;
    foreach v_key in array array['display_name', 'model_category'] loop
      if v_model ? v_key and jsonb_typeof(v_model -> v_key) not in ('string', 'null') then
        raise exception using errcode = '22023', message = format('%s.models[%s].%s: must be text', v_path, v_index, v_key);
      end if;
    end loop;
    foreach v_cost in array array['cost_per_million_input_tokens', 'cost_per_million_output_tokens'] loop
      if v_model ? v_cost and jsonb_typeof(v_model -> v_cost) <> 'null'
         and (jsonb_typeof(v_model -> v_cost) <> 'number' or (v_model ->> v_cost)::numeric < 0) then
        raise exception using errcode = '22023',
          message = format('%s.models[%s].%s: must be a price of 0 or more USD, or null', v_path, v_index, v_cost);
      end if;
    end loop;
    if v_model ? 'capabilities' and jsonb_typeof(v_model -> 'capabilities') <> 'object' then
      raise exception using errcode = '22023',
        message = format('%s.models[%s].capabilities: must be an object', v_path, v_index);
    end if;
    if v_model ? 'settings' then
      perform private.assert_valid_llm_settings(v_model -> 'settings', format('%s.models[%s].settings', v_path, v_index));
    end if;
  end loop;
  return new;
end
$$;

create trigger llm_custom_providers_validate
before insert or update on public.llm_custom_providers
for each row execute function private.validate_llm_custom_provider();

-- Gateways cache configurations that resolve to a custom provider.
create trigger llm_custom_providers_notify_llm_config_changed
after insert or update or delete on public.llm_custom_providers
for each row execute function private.notify_llm_config_changed('organization_id');

-- Invoker, as before: the key functions call it for the provider a key is stored under.
create or replace function private.assert_llm_provider(p_provider text)
returns void
language plpgsql
immutable
set search_path = ''  -- empty: the caller's search_path cannot redirect its schema-qualified names
as $$
begin
  if p_provider is null
     or not (p_provider = any(private.llm_providers()) or p_provider ~ '^custom:[a-z][a-z0-9-]{1,30}$') then
    raise exception using
      errcode = '22023',
      message = format('unknown provider %L', p_provider),
      hint = format('Expected one of: %s, or custom:<name> of a custom provider.', array_to_string(private.llm_providers(), ', '));
  end if;
end
$$;

alter table public.llm_usage_logs drop constraint llm_usage_logs_provider_check;
alter table public.llm_usage_logs add constraint llm_usage_logs_provider_check
check (provider = any(private.llm_providers()) or provider ~ '^custom:[a-z][a-z0-9-]{1,30}$');

-- RLS on: the API roles see and change only the rows a policy below allows.
alter table public.llm_custom_providers enable row level security;

-- Members see their organization's custom providers (the settings page lists them).
create policy "Members can read their organization's custom providers"
on public.llm_custom_providers for select to authenticated
using (organization_id = (select private.current_org_id()));

-- Owners and admins add custom providers to their organization only.
create policy "Org admins can create custom providers"
on public.llm_custom_providers for insert to authenticated
with check (organization_id = (select private.current_org_id()) and (select private.current_org_role()) in ('owner', 'admin'));

-- Owners and admins change their organization's custom providers and cannot move them to another.
create policy "Org admins can update custom providers"
on public.llm_custom_providers for update to authenticated
using (organization_id = (select private.current_org_id()) and (select private.current_org_role()) in ('owner', 'admin'))
with check (organization_id = (select private.current_org_id()) and (select private.current_org_role()) in ('owner', 'admin'));

-- Owners and admins remove their organization's custom providers.
create policy "Org admins can delete custom providers"
on public.llm_custom_providers for delete to authenticated
using (organization_id = (select private.current_org_id()) and (select private.current_org_role()) in ('owner', 'admin'));

-- Undo any default privileges, then grant exactly.
revoke all on table public.llm_custom_providers from public, anon, authenticated, service_role;
-- Signed-in users read custom providers and, as admins, create, change and delete them; RLS picks the rows.
grant select, delete on table public.llm_custom_providers to authenticated;
grant insert (organization_id, name, base_url, api_style, models, is_active) on table public.llm_custom_providers
to authenticated;
grant update (name, base_url, api_style, models, is_active) on table public.llm_custom_providers to authenticated;
-- The service role (backend, provisioning, the gateway's resolution) reads and manages every organization's.
grant select, insert, update, delete on table public.llm_custom_providers to service_role;
-- The operator's allowed networks: changed by the operator only, read by the definer base URL check.
revoke all on table private.custom_provider_allowed_networks from public, anon, authenticated, service_role;

-- Undo what older projects auto-grant (PUBLIC and every API role); the grant below names who needs it.
revoke execute on function private.assert_valid_custom_provider_base_url(text, text) from public, anon, authenticated, service_role;
-- The validation trigger calls it as the writing role: signed-in admins and the service role.
grant execute on function private.assert_valid_custom_provider_base_url(text, text) to authenticated, service_role;
-- Trigger function: the trigger invokes it without EXECUTE privilege, so nobody needs a grant.
revoke execute on function private.validate_llm_custom_provider() from public;
