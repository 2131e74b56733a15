-- Organization provider API keys in Supabase Vault: one secret per organization and provider.
--
-- Objects: private helpers (secret name, authorization, the definer functions that touch Vault),
-- the public API store_org_api_key, delete_org_api_key, list_org_api_keys, get_org_api_key, and a
-- trigger that removes an organization's secrets with it.
-- Keys go through vault.create_secret / vault.update_secret (encrypted at rest) and are read only
-- through vault.decrypted_secrets, by the service role. No key, ciphertext or secret id appears
-- in an error message.
-- Grants: store/delete/list to authenticated (owners/admins of that org, checked inside) and
-- service_role; get_org_api_key to service_role only; anon nothing.

-- The Vault secret name of an organization's key, as the plan names it.
create function private.org_api_key_secret_name(p_organization_id uuid, p_provider text)
returns text
language plpgsql
immutable
set search_path = ''  -- empty: the caller's search_path cannot redirect its schema-qualified names
as $$
begin
  return format('org_%s_%s_key', p_organization_id, p_provider);
end
$$;

-- Service role, or an owner/admin of that very organization by membership (a removed admin's
-- still-valid token fails here).
create function private.can_manage_org_api_keys(p_organization_id uuid)
returns boolean
language sql
stable
set search_path = ''  -- empty: the caller's search_path cannot redirect its schema-qualified names
as $$
  select coalesce(auth.role() = 'service_role', false)
    or exists (
      select from public.organization_members as m
      where m.organization_id = p_organization_id
        and m.user_id = auth.uid()
        and m.role in ('owner', 'admin')
    )
$$;

create function private.assert_can_manage_org_api_keys(p_organization_id uuid)
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
    raise exception using errcode = 'P0002', message = 'organization not found';
  end if;
end
$$;

create function private.assert_llm_provider(p_provider text)
returns void
language plpgsql
immutable
set search_path = ''  -- empty: the caller's search_path cannot redirect its schema-qualified names
as $$
begin
  if p_provider is null or not p_provider = any(private.llm_providers()) then
    raise exception using
      errcode = '22023',
      message = format('unknown provider %L', p_provider),
      hint = format('Expected one of: %s.', array_to_string(private.llm_providers(), ', '));
  end if;
end
$$;

-- Definer: writes Vault, which signed-in admins cannot reach themselves. Authorization inside.
create function private.store_org_api_key(p_organization_id uuid, p_provider text, p_api_key text)
returns uuid
language plpgsql
volatile
security definer
set search_path = ''  -- empty: nothing on the caller's search_path can run with the owner's rights
as $$
declare
  v_name text := private.org_api_key_secret_name(p_organization_id, p_provider);
  v_secret_id uuid;
begin
  perform private.assert_can_manage_org_api_keys(p_organization_id);
  perform private.assert_llm_provider(p_provider);
  -- Printable ASCII without spaces; the message never repeats the value.
  if p_api_key is null or p_api_key !~ '^[!-~]+$' or length(p_api_key) not between 8 and 512 then
    raise exception using
      errcode = '22023',
      message = 'malformed API key: expected 8 to 512 printable characters without spaces',
      hint = 'Paste the key exactly as the provider shows it.';
  end if;
  -- Serialize concurrent stores of one key: Vault's unique name index is partial, no upsert.
  perform pg_advisory_xact_lock(hashtextextended(v_name, 0));
  select s.id into v_secret_id from vault.secrets as s where s.name = v_name;
  if v_secret_id is null then
    v_secret_id := vault.create_secret(
      p_api_key, v_name, format('%s API key of organization %s', p_provider, p_organization_id)
    );
  else
    perform vault.update_secret(v_secret_id, p_api_key);
  end if;
  return v_secret_id;
end
$$;

-- Definer: deletes from Vault. Authorization inside.
create function private.delete_org_api_key(p_organization_id uuid, p_provider text)
returns boolean
language plpgsql
volatile
security definer
set search_path = ''  -- empty: nothing on the caller's search_path can run with the owner's rights
as $$
begin
  perform private.assert_can_manage_org_api_keys(p_organization_id);
  perform private.assert_llm_provider(p_provider);
  delete from vault.secrets as s
  where s.name = private.org_api_key_secret_name(p_organization_id, p_provider);
  return found;
end
$$;

-- Definer: decrypts to derive the hint (last four characters only). Authorization inside.
create function private.list_org_api_keys(p_organization_id uuid)
returns table (provider text, key_hint text, updated_at timestamptz)
language plpgsql
stable
security definer
set search_path = ''  -- empty: nothing on the caller's search_path can run with the owner's rights
as $$
begin
  perform private.assert_can_manage_org_api_keys(p_organization_id);
  return query
  select p.name, right(d.decrypted_secret, 4), d.updated_at
  from unnest(private.llm_providers()) as p (name)
  join vault.decrypted_secrets as d on d.name = private.org_api_key_secret_name(p_organization_id, p.name)
  order by p.name;
end
$$;

-- Definer: tells whether a key exists (never the key) for resolution's api_key_source; callers
-- other than the service role learn it only for their own organization.
create function private.has_org_api_key(p_organization_id uuid, p_provider text)
returns boolean
language plpgsql
stable
security definer
set search_path = ''  -- empty: nothing on the caller's search_path can run with the owner's rights
as $$
begin
  -- The cheap probe first: most organizations have no key, and then the caller needs no check.
  return exists (
    select from vault.secrets as s
    where s.name = private.org_api_key_secret_name(p_organization_id, p_provider)
  )
  and (coalesce(auth.role() = 'service_role', false) or p_organization_id = private.current_org_id());
end
$$;

-- Definer: an organization's secrets go with it; nobody else may delete Vault rows.
create function private.delete_org_api_keys_of_deleted_organization()
returns trigger
language plpgsql
security definer
set search_path = ''  -- empty: nothing on the caller's search_path can run with the owner's rights
as $$
begin
  delete from vault.secrets as s
  where s.name in (
    select private.org_api_key_secret_name(old.id, p.name) from unnest(private.llm_providers()) as p (name)
  );
  return old;
end
$$;

create trigger organizations_delete_org_api_keys
after delete on public.organizations
for each row execute function private.delete_org_api_keys_of_deleted_organization();

-- The public API. Invoker functions: the exposed schema holds no security definer function
-- (Security Advisor), so each delegates to its private definer twin, which checks the caller.

create function public.store_org_api_key(p_organization_id uuid, p_provider text, p_api_key text)
returns uuid
language sql
volatile
set search_path = ''  -- empty: the caller's search_path cannot redirect its schema-qualified names
as $$
  select private.store_org_api_key(p_organization_id, p_provider, p_api_key)
$$;

comment on function public.store_org_api_key(uuid, text, text) is
'Stores or rotates the organization''s key for a provider in Vault. Service role or org owner/admin.';

create function public.delete_org_api_key(p_organization_id uuid, p_provider text)
returns boolean
language sql
volatile
set search_path = ''  -- empty: the caller's search_path cannot redirect its schema-qualified names
as $$
  select private.delete_org_api_key(p_organization_id, p_provider)
$$;

comment on function public.delete_org_api_key(uuid, text) is
'Deletes the organization''s key for a provider; false when there was none. Service role or org owner/admin.';

create function public.list_org_api_keys(p_organization_id uuid)
returns table (provider text, key_hint text, updated_at timestamptz)
language sql
stable
set search_path = ''  -- empty: the caller's search_path cannot redirect its schema-qualified names
as $$
  select k.provider, k.key_hint, k.updated_at from private.list_org_api_keys(p_organization_id) as k
$$;

comment on function public.list_org_api_keys(uuid) is
'Providers with a stored key, the key''s last four characters and when it was last set. Service role or org owner/admin.';

-- Invoker: only the service role may call it, and it reads Vault with its own grants.
create function public.get_org_api_key(p_organization_id uuid, p_provider text)
returns text
language plpgsql
stable
set search_path = ''  -- empty: the caller's search_path cannot redirect its schema-qualified names
as $$
declare
  v_key text;
begin
  perform private.assert_llm_provider(p_provider);
  select d.decrypted_secret into v_key
  from vault.decrypted_secrets as d
  where d.name = private.org_api_key_secret_name(p_organization_id, p_provider);
  return v_key;
end
$$;

comment on function public.get_org_api_key(uuid, text) is 'The decrypted key, or null when the organization has none. Service role only.';

-- Helpers: EXECUTE for PUBLIC is the PostgreSQL default; take it away everywhere.
revoke execute on function private.org_api_key_secret_name(uuid, text),
  private.can_manage_org_api_keys(uuid),
  private.assert_can_manage_org_api_keys(uuid),
  private.assert_llm_provider(text),
  private.store_org_api_key(uuid, text, text),
  private.delete_org_api_key(uuid, text),
  private.list_org_api_keys(uuid),
  private.has_org_api_key(uuid, text),
  private.delete_org_api_keys_of_deleted_organization() from public;
-- The public wrappers run these as the caller: signed-in users (checked inside) and the service role.
grant execute on function private.store_org_api_key(uuid, text, text),
  private.delete_org_api_key(uuid, text),
  private.list_org_api_keys(uuid),
  private.has_org_api_key(uuid, text) to authenticated, service_role;
-- The service role reads Vault as itself in get_org_api_key and needs these helpers there.
grant execute on function private.org_api_key_secret_name(uuid, text), private.assert_llm_provider(text) to service_role;

-- Older projects auto-grant new public functions to anon and authenticated: revoke everything,
-- then grant each function to exactly the roles that may call it.
revoke execute on function public.store_org_api_key(uuid, text, text),
  public.delete_org_api_key(uuid, text),
  public.list_org_api_keys(uuid),
  public.get_org_api_key(uuid, text) from public, anon, authenticated, service_role;
-- Org owners/admins (verified inside) and the service role manage keys.
grant execute on function public.store_org_api_key(uuid, text, text),
  public.delete_org_api_key(uuid, text),
  public.list_org_api_keys(uuid) to authenticated, service_role;
-- Decrypted keys reach the service role (the gateway) only.
grant execute on function public.get_org_api_key(uuid, text) to service_role;
