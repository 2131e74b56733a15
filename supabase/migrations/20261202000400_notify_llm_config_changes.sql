-- Announce every change that can alter an effective configuration or the key a call uses, so
-- gateways can cache both and drop exactly what changed.
--
-- Channel llm_config_changed; payload the organization id, or '*' for the catalog (every
-- organization). PostgreSQL delivers identical notifications of one transaction once, so a bulk
-- change costs one notification per organization. Sent at commit, never for a rolled-back change.
-- Objects: private.notify_llm_config_changed() and its triggers on organizations
-- (llm_configuration, delete), organization_members (every change), processors (configuration,
-- organization, delete), runs (organization, delete) and llm_global_settings (every change);
-- private.store_org_api_key and private.delete_org_api_key now notify too (bodies otherwise
-- unchanged; create or replace keeps their grants).
-- Grants: none; trigger functions need no EXECUTE grant, and pg_notify is PUBLIC's by default.

-- Invoker: pg_notify needs no privilege, and the row's organization id is all it reads.
-- tg_argv[0] names the row's organization id column; no argument means the whole catalog.
create function private.notify_llm_config_changed()
returns trigger
language plpgsql
set search_path = ''  -- empty: the caller's search_path cannot redirect its schema-qualified names
as $$
begin
  if tg_nargs = 0 then
    perform pg_notify('llm_config_changed', '*');
    return null;
  end if;
  if tg_op in ('UPDATE', 'DELETE') then
    perform pg_notify('llm_config_changed', to_jsonb(old) ->> tg_argv[0]);
  end if;
  if tg_op in ('INSERT', 'UPDATE') then
    perform pg_notify('llm_config_changed', to_jsonb(new) ->> tg_argv[0]);
  end if;
  return null;
end
$$;

comment on function private.notify_llm_config_changed() is
'Trigger: pg_notify(''llm_config_changed'', the row''s organization id, or ''*'' for the catalog).';

create trigger organizations_notify_llm_config_changed
after update of llm_configuration or delete on public.organizations
for each row execute function private.notify_llm_config_changed('id');

create trigger organization_members_notify_llm_config_changed
after insert or update or delete on public.organization_members
for each row execute function private.notify_llm_config_changed('organization_id');

create trigger processors_notify_llm_config_changed
after update of configuration, organization_id or delete on public.processors
for each row execute function private.notify_llm_config_changed('organization_id');

create trigger runs_notify_llm_config_changed
after update of organization_id or delete on public.runs
for each row execute function private.notify_llm_config_changed('organization_id');

create trigger llm_global_settings_notify_llm_config_changed
after insert or update or delete or truncate on public.llm_global_settings
for each statement execute function private.notify_llm_config_changed();

-- Definer: writes Vault, which signed-in admins cannot reach themselves. Authorization inside.
create or replace function private.store_org_api_key(p_organization_id uuid, p_provider text, p_api_key text)
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
  perform pg_notify('llm_config_changed', p_organization_id::text);
  return v_secret_id;
end
$$;

-- Definer: deletes from Vault. Authorization inside.
create or replace function private.delete_org_api_key(p_organization_id uuid, p_provider text)
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
  if found then
    perform pg_notify('llm_config_changed', p_organization_id::text);
    return true;
  end if;
  return false;
end
$$;

-- Trigger function: the trigger invokes it without EXECUTE privilege, so nobody needs a grant.
revoke execute on function private.notify_llm_config_changed() from public;
