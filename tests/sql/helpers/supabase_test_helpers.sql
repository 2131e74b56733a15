-- Test helpers in the style of supabase-test-helpers: create users and act as them the way
-- PostgREST does (role plus request.jwt.claims, both transaction-local).
-- Loaded into test databases only, never by a migration.

create schema tests;
-- Tests switch roles and keep calling the helpers (test databases only).
grant usage on schema tests to anon, authenticated, service_role;

-- A user whose token carries p_organization_id in app_metadata (as a custom claims hook would).
create function tests.create_user(p_email text, p_organization_id uuid default null)
returns uuid
language sql
as $$
  insert into auth.users (email, raw_app_meta_data)
  values (p_email, case when p_organization_id is null then '{}'::jsonb
                        else jsonb_build_object('organization_id', p_organization_id) end)
  returning id
$$;

create function tests.create_organization(p_name text, p_llm_configuration jsonb default null)
returns uuid
language sql
as $$
  insert into public.organizations (name, llm_configuration) values (p_name, p_llm_configuration) returning id
$$;

create function tests.add_member(p_organization_id uuid, p_user_id uuid, p_role text)
returns void
language sql
as $$
  insert into public.organization_members (organization_id, user_id, role) values (p_organization_id, p_user_id, p_role)
$$;

-- Claims as Supabase Auth issues them; user_metadata is editable by the user and must never count.
create function tests.authenticate_as(p_user_id uuid, p_user_metadata jsonb default '{}')
returns void
language plpgsql
as $$
declare
  v_user auth.users;
begin
  select * into v_user from auth.users where id = p_user_id;
  perform set_config('role', 'authenticated', true);
  perform set_config('request.jwt.claims', jsonb_build_object(
    'sub', v_user.id, 'role', 'authenticated', 'aud', 'authenticated', 'email', v_user.email,
    'app_metadata', v_user.raw_app_meta_data, 'user_metadata', p_user_metadata
  )::text, true);
end
$$;

create function tests.authenticate_as_anon()
returns void
language plpgsql
as $$
begin
  perform set_config('role', 'anon', true);
  perform set_config('request.jwt.claims', '{"role": "anon"}', true);
end
$$;

create function tests.authenticate_as_service_role()
returns void
language plpgsql
as $$
begin
  perform set_config('role', 'service_role', true);
  perform set_config('request.jwt.claims', '{"role": "service_role"}', true);
end
$$;

-- Back to the migration owner (postgres), with no claims.
create function tests.clear_authentication()
returns void
language plpgsql
as $$
begin
  perform set_config('role', 'postgres', true);
  perform set_config('request.jwt.claims', '', true);
end
$$;

-- A LIKE pattern matching error messages that contain p_path literally (_ is a LIKE wildcard):
-- validation errors name the JSON path of what they refuse.
create function tests.naming(p_path text)
returns text
language sql
immutable
as $$
  select '%' || replace(p_path, '_', '\_') || '%'
$$;

-- Runs a statement and returns its error (code, message, detail, hint), or null if it succeeds.
create function tests.error_of(p_sql text)
returns jsonb
language plpgsql
as $$
declare
  v_code text;
  v_message text;
  v_detail text;
  v_hint text;
begin
  execute p_sql;
  return null;
exception when others then
  get stacked diagnostics v_code = returned_sqlstate, v_message = message_text,
    v_detail = pg_exception_detail, v_hint = pg_exception_hint;
  return jsonb_build_object('code', v_code, 'message', v_message, 'detail', v_detail, 'hint', v_hint);
end
$$;


-- A test's named ids: temp table fx (name, id) and pg_temp.id(name), readable by every role the
-- test acts as, gone with the session.
create function tests.create_fixture_table()
returns void
language plpgsql
as $$
begin
  create temp table fx (name text primary key, id uuid not null);
  grant select on pg_temp.fx to anon, authenticated, service_role;
  create function pg_temp.id(p_name text) returns uuid language sql stable
  as 'select fx.id from pg_temp.fx as fx where fx.name = p_name';
end
$$;

-- The cast most RLS files need, into the caller's temp table fx (name, id): organization A with
-- an owner, an admin, a member and a removed member (former_a, whose token still names A),
-- bystander organization B with an admin, a stranger whose token names A without membership,
-- and a user whose token names no organization.
create function tests.create_cast()
returns void
language plpgsql
as $$
declare
  v_org_a uuid := tests.create_organization('Acme');
  v_org_b uuid := tests.create_organization('Bystander');
  v_former uuid := tests.create_user('former@a.test', v_org_a);
begin
  insert into pg_temp.fx values
    ('org_a', v_org_a),
    ('org_b', v_org_b),
    ('owner_a', tests.create_user('owner@a.test', v_org_a)),
    ('admin_a', tests.create_user('admin@a.test', v_org_a)),
    ('member_a', tests.create_user('member@a.test', v_org_a)),
    ('former_a', v_former),
    ('admin_b', tests.create_user('admin@b.test', v_org_b)),
    ('stranger', tests.create_user('stranger@a.test', v_org_a)),
    ('no_org', tests.create_user('no-org@nowhere.test'));
  perform tests.add_member(v_org_a, f.id, r.role)
  from (values ('owner_a', 'owner'), ('admin_a', 'admin'), ('member_a', 'member')) as r (name, role)
  join pg_temp.fx as f on f.name = r.name;
  perform tests.add_member(v_org_b, (select f.id from pg_temp.fx as f where f.name = 'admin_b'), 'admin');
  -- Removed: a member once, with a token that still names A.
  perform tests.add_member(v_org_a, v_former, 'member');
  delete from public.organization_members where user_id = v_former;
end
$$;

-- Tests call the helpers under whichever role they act as.
grant execute on all functions in schema tests to anon, authenticated, service_role;
