-- Supabase compatibility layer for plain PostgreSQL 15.
--
-- Stands in for what a hosted Supabase project provides before any migration runs, so that the
-- migrations and tests meet the same roles, privileges, auth helpers and Vault API. It is not
-- part of the product: on Supabase these objects already exist. Run it as a superuser (the
-- stand-in for supabase_admin) on an empty database; migrations then run as the non-superuser
-- role postgres.
--
-- Default privileges come in two behaviours (see legacy_default_privileges.sql): this file sets
-- up the newer one, where nothing is granted to the API roles automatically.

-- Roles ----------------------------------------------------------------------------------------

do $roles$
begin
  -- Cluster-wide roles survive between databases of one cluster: create each only once.
  if not exists (select from pg_roles where rolname = 'anon') then
    create role anon nologin;
  end if;
  if not exists (select from pg_roles where rolname = 'authenticated') then
    create role authenticated nologin;
  end if;
  if not exists (select from pg_roles where rolname = 'service_role') then
    create role service_role nologin bypassrls;
  end if;
  if not exists (select from pg_roles where rolname = 'authenticator') then
    create role authenticator login noinherit;
  end if;
  if not exists (select from pg_roles where rolname = 'postgres') then
    create role postgres login nosuperuser createrole createdb bypassrls inherit;
  end if;
end
$roles$;

-- PostgREST logs in as authenticator and switches to an API role per request; postgres may too.
grant anon, authenticated, service_role to authenticator;
grant anon, authenticated, service_role to postgres;

-- Supabase puts extensions (pgTAP, pgcrypto) on the login roles' search path.
alter role postgres set search_path = "$user", public, extensions;
alter role authenticator set search_path = "$user", public, extensions;

-- PostgREST and `supabase test db` time out long statements per role; keep the hosted defaults.
alter role anon set statement_timeout = '3s';
alter role authenticated set statement_timeout = '8s';

-- Database and schemas -------------------------------------------------------------------------

do $database$
begin
  execute format('grant create, connect, temporary on database %I to postgres', current_database());
end
$database$;

-- postgres owns the public schema's contents on Supabase; the API roles may look up names in it.
grant all on schema public to postgres;
grant usage on schema public to anon, authenticated, service_role;

create schema extensions;
-- Everyone may call extension functions (pgcrypto, pgTAP), as on Supabase.
grant usage on schema extensions to postgres, anon, authenticated, service_role;
create extension pgcrypto schema extensions;
create extension pgtap schema extensions;
create extension plpgsql_check schema extensions;

-- auth -----------------------------------------------------------------------------------------

create schema auth;
-- The API roles resolve auth.uid() and friends; auth's tables stay closed to them (below).
grant usage on schema auth to anon, authenticated, service_role, postgres;

create table auth.users (
  id uuid primary key default gen_random_uuid(),
  email text unique,
  raw_app_meta_data jsonb not null default '{}',
  raw_user_meta_data jsonb not null default '{}',
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
alter table auth.users enable row level security;
-- Seeds and tests create users as postgres, as `supabase db reset` does; the API roles get nothing.
grant select, insert, update, delete, references on auth.users to postgres;

create function auth.jwt() returns jsonb
language sql stable
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim', true), ''),
    nullif(current_setting('request.jwt.claims', true), '')
  )::jsonb
$$;

create function auth.uid() returns uuid
language sql stable
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim.sub', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
  )::uuid
$$;

create function auth.role() returns text
language sql stable
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim.role', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role')
  )::text
$$;

-- RLS policies and functions read the caller's claims through these, as every role.
grant execute on function auth.jwt(), auth.uid(), auth.role()
  to anon, authenticated, service_role, postgres;

-- Vault (supabase_vault 0.3) -------------------------------------------------------------------
-- Secrets are encrypted at rest with a root key kept in a file of the data directory, never in a
-- table or a dump; each ciphertext is bound to its row id and nonce, so a copied ciphertext does
-- not decrypt elsewhere. pgcrypto stands in for libsodium.

create schema vault;

do $root_key$
begin
  if (pg_stat_file('vault_root.key', true)).size is null then
    execute format(
      'copy (select encode(extensions.gen_random_bytes(32), %L)) to %L',
      'hex', current_setting('data_directory') || '/vault_root.key'
    );
  end if;
end
$root_key$;

create table vault.secrets (
  id uuid primary key default gen_random_uuid(),
  name text,
  description text not null default '',
  secret text not null,
  key_id uuid,
  nonce bytea default extensions.gen_random_bytes(16),
  created_at timestamptz not null default current_timestamp,
  updated_at timestamptz not null default current_timestamp
);
create unique index secrets_name_idx on vault.secrets (name) where name is not null;

create function vault._row_key(secret_id uuid, nonce bytea) returns text
language sql stable security definer
set search_path = ''
as $$
  select encode(
    extensions.hmac(convert_to(secret_id::text, 'utf8') || nonce,
                    convert_to(trim(pg_read_file('vault_root.key')), 'utf8'), 'sha256'),
    'hex')
$$;

create function vault._encrypt(plaintext text, secret_id uuid, nonce bytea) returns text
language sql stable
set search_path = ''
as $$
  -- The row key is already a full-entropy HMAC: no password stretching (s2k-mode 0), as libsodium
  -- in supabase_vault does none either.
  select encode(extensions.pgp_sym_encrypt(plaintext, vault._row_key(secret_id, nonce),
                                           'cipher-algo=aes256, s2k-mode=0'), 'base64')
$$;

create function vault._decrypt(ciphertext text, secret_id uuid, nonce bytea) returns text
language sql stable
set search_path = ''
as $$
  select extensions.pgp_sym_decrypt(decode(ciphertext, 'base64'), vault._row_key(secret_id, nonce))
$$;

create view vault.decrypted_secrets as
select
  s.id, s.name, s.description, s.secret,
  vault._decrypt(s.secret, s.id, s.nonce) as decrypted_secret,
  s.key_id, s.nonce, s.created_at, s.updated_at
from vault.secrets as s;

create function vault.create_secret(
  new_secret text,
  new_name text default null,
  new_description text default '',
  new_key_id uuid default null
) returns uuid
language plpgsql security definer
set search_path = ''
as $$
declare
  v_id uuid := gen_random_uuid();
  v_nonce bytea := extensions.gen_random_bytes(16);
begin
  insert into vault.secrets (id, name, description, secret, key_id, nonce)
  values (v_id, new_name, coalesce(new_description, ''),
          vault._encrypt(new_secret, v_id, v_nonce), new_key_id, v_nonce);
  return v_id;
end
$$;

create function vault.update_secret(
  secret_id uuid,
  new_secret text default null,
  new_name text default null,
  new_description text default null,
  new_key_id uuid default null
) returns void
language plpgsql security definer
set search_path = ''
as $$
declare
  v_nonce bytea := extensions.gen_random_bytes(16);
begin
  update vault.secrets as s
  set secret = case when new_secret is null then s.secret
                    else vault._encrypt(new_secret, s.id, v_nonce) end,
      nonce = case when new_secret is null then s.nonce else v_nonce end,
      name = coalesce(new_name, s.name),
      description = coalesce(new_description, s.description),
      key_id = coalesce(new_key_id, s.key_id),
      updated_at = current_timestamp
  where s.id = secret_id;
end
$$;

-- Only postgres and service_role reach Vault, as on Supabase; nobody but the superuser writes
-- vault.secrets directly.
revoke all on schema vault from public;
revoke all on all tables in schema vault from public;
revoke execute on all functions in schema vault from public;
grant usage on schema vault to postgres, service_role;
grant select, delete on vault.secrets, vault.decrypted_secrets to postgres, service_role;
grant execute on function vault.create_secret(text, text, text, uuid),
  vault.update_secret(uuid, text, text, text, uuid) to postgres, service_role;
-- Reading decrypted_secrets runs the decryption as the reader, as supabase_vault's view does.
grant execute on function vault._decrypt(text, uuid, bytea), vault._row_key(uuid, bytea)
  to postgres, service_role;
