-- Default privileges of Supabase projects created before 2026-05-30.
--
-- Every table, function and sequence that postgres creates in public is granted to all API roles
-- automatically; RLS and explicit revokes are all that stand between them and anon. Load this
-- after supabase.sql to reproduce such a project; leave it out to reproduce a newer one.

alter default privileges for role postgres in schema public
  grant all on tables to postgres, anon, authenticated, service_role;
alter default privileges for role postgres in schema public
  grant all on functions to postgres, anon, authenticated, service_role;
alter default privileges for role postgres in schema public
  grant all on sequences to postgres, anon, authenticated, service_role;
