-- Private schema for helpers the API must not expose, and the helpers every later migration uses.
--
-- Objects: schema private; private.llm_providers(); private.set_updated_at().
-- Grants: usage on private to authenticated and service_role (RLS policies and triggers run
-- helpers here as the calling role); nothing to anon. PostgREST exposes only public, so nothing
-- in private is an endpoint.

create schema if not exists private;

comment on schema private is 'Helpers for RLS policies, triggers and security definer functions; not exposed through the API.';

-- The providers the product can call; one list for check constraints, validation and Vault names.
-- plpgsql: a SQL function with a fixed search_path is never inlined and is planned on every call.
create function private.llm_providers()
returns text[]
language plpgsql
immutable
set search_path = ''  -- empty: the caller's search_path cannot redirect its schema-qualified names
as $$
begin
  return array['anthropic', 'google', 'meta', 'mistral', 'openai'];
end
$$;

comment on function private.llm_providers() is 'LLM providers the gateway supports, in alphabetical order.';

create function private.set_updated_at()
returns trigger
language plpgsql
set search_path = ''  -- empty: the caller's search_path cannot redirect its schema-qualified names
as $$
begin
  new.updated_at := now();
  return new;
end
$$;

-- Only roles that use the helpers may look up names in private; anon reaches none of it.
revoke all on schema private from public;
grant usage on schema private to authenticated, service_role;

-- Functions get EXECUTE for PUBLIC by default: revoke it, then grant to the roles whose writes
-- evaluate check constraints that call llm_providers().
revoke execute on function private.llm_providers() from public;
grant execute on function private.llm_providers() to authenticated, service_role;
-- Trigger functions are invoked by the trigger, not by EXECUTE privilege: nobody needs a grant.
revoke execute on function private.set_updated_at() from public;
