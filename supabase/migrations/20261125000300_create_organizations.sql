-- Organizations, their members and the caller's-organization helpers every policy uses.
--
-- Objects: public.organizations, public.organization_members, private.current_org_id(),
-- private.current_org_role(), validation trigger on organizations.llm_configuration.
-- The caller's organization is app_metadata.organization_id of the JWT (settable only by the
-- service role), and only while the caller is a member of it: a removed member's token gets nothing.
-- Grants: authenticated reads its org and members and, as owner/admin, updates them (RLS);
-- service_role manages everything; anon gets nothing.

create table public.organizations (
  id uuid primary key default gen_random_uuid(),
  name text not null check (btrim(name) <> ''),
  llm_configuration jsonb default null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

comment on table public.organizations is 'Tenants. llm_configuration holds named LLM profiles; API keys never live here.';
comment on column public.organizations.llm_configuration is
'{"default_profile": name, "profiles": {name: {"provider", "model", "settings"}}}, validated on write; null uses the global default.';

create table public.organization_members (
  organization_id uuid not null references public.organizations (id) on delete cascade,
  user_id uuid not null references auth.users (id) on delete cascade,
  role text not null default 'member' check (role in ('owner', 'admin', 'member')),
  created_at timestamptz not null default now(),
  primary key (organization_id, user_id)
);

comment on table public.organization_members is 'Who belongs to which organization, and as what: owners and admins manage, members read.';

create index organization_members_user_id_idx on public.organization_members (user_id);

create trigger organizations_set_updated_at
before update on public.organizations
for each row execute function private.set_updated_at();

create function private.validate_organization_llm_configuration()
returns trigger
language plpgsql
set search_path = ''  -- empty: the caller's search_path cannot redirect its schema-qualified names
as $$
begin
  perform private.assert_valid_llm_configuration(new.llm_configuration);
  return new;
end
$$;

create trigger organizations_validate_llm_configuration
before insert or update of llm_configuration on public.organizations
for each row execute function private.validate_organization_llm_configuration();

-- Definer: reads organization_members past its own RLS (a policy on it calls this; invoker would
-- recurse). plpgsql rather than SQL: it runs in every policy check and keeps its plan cached.
create function private.current_org_id()
returns uuid
language plpgsql
stable
security definer
set search_path = ''  -- empty: nothing on the caller's search_path can run with the owner's rights
as $$
declare
  v_claim text := auth.jwt() -> 'app_metadata' ->> 'organization_id';
  v_organization_id uuid;
begin
  if v_claim is null or v_claim !~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' then
    return null;
  end if;
  select m.organization_id into v_organization_id
  from public.organization_members as m
  where m.organization_id = v_claim::uuid and m.user_id = auth.uid();
  return v_organization_id;
end
$$;

comment on function private.current_org_id() is
'The organization of app_metadata.organization_id in the JWT if the caller is a member of it, else null. Never user_metadata.';

-- Definer for the same reason as current_org_id().
create function private.current_org_role()
returns text
language plpgsql
stable
security definer
set search_path = ''  -- empty: nothing on the caller's search_path can run with the owner's rights
as $$
declare
  v_role text;
begin
  select m.role into v_role
  from public.organization_members as m
  where m.organization_id = private.current_org_id() and m.user_id = auth.uid();
  return v_role;
end
$$;

comment on function private.current_org_role() is 'The caller''s role (owner, admin, member) in current_org_id(), else null.';

-- RLS on: the API roles see and change only the rows a policy below allows.
alter table public.organizations enable row level security;
alter table public.organization_members enable row level security;

-- Members see their own organization and nothing else.
create policy "Members can read their organization"
on public.organizations for select to authenticated
using (id = (select private.current_org_id()));

-- Owners and admins edit their organization (name, llm_configuration: column grants below).
create policy "Org admins can update their organization"
on public.organizations for update to authenticated
using (id = (select private.current_org_id()) and (select private.current_org_role()) in ('owner', 'admin'))
with check (id = (select private.current_org_id()) and (select private.current_org_role()) in ('owner', 'admin'));

-- Members see who else belongs to their organization.
create policy "Members can read their organization's members"
on public.organization_members for select to authenticated
using (organization_id = (select private.current_org_id()));

-- Owners add anyone; admins add admins and members but never owners.
create policy "Org admins can add members"
on public.organization_members for insert to authenticated
with check (
  organization_id = (select private.current_org_id())
  and ((select private.current_org_role()) = 'owner'
       or ((select private.current_org_role()) = 'admin' and role <> 'owner'))
);

-- Same rule before and after a role change, so an admin can neither touch nor create an owner.
create policy "Org admins can change member roles"
on public.organization_members for update to authenticated
using (
  organization_id = (select private.current_org_id())
  and ((select private.current_org_role()) = 'owner'
       or ((select private.current_org_role()) = 'admin' and role <> 'owner'))
)
with check (
  organization_id = (select private.current_org_id())
  and ((select private.current_org_role()) = 'owner'
       or ((select private.current_org_role()) = 'admin' and role <> 'owner'))
);

-- Owners remove anyone; admins remove admins and members but never owners.
create policy "Org admins can remove members"
on public.organization_members for delete to authenticated
using (
  organization_id = (select private.current_org_id())
  and ((select private.current_org_role()) = 'owner'
       or ((select private.current_org_role()) = 'admin' and role <> 'owner'))
);

-- Undo any default privileges (older projects grant all to the API roles), then grant exactly.
revoke all on table public.organizations, public.organization_members from public, anon, authenticated, service_role;
-- Signed-in users read and, as admins, edit name and llm_configuration; RLS picks the rows.
grant select on table public.organizations to authenticated;
grant update (name, llm_configuration) on table public.organizations to authenticated;
-- Signed-in admins manage membership; RLS limits them to their organization.
grant select, insert, delete on table public.organization_members to authenticated;
grant update (role) on table public.organization_members to authenticated;
-- The service role (backend, provisioning) manages all organizations and members.
grant select, insert, update, delete on table public.organizations, public.organization_members to service_role;

-- Policies call these as the signed-in caller; anon has no table access for them to guard.
revoke execute on function private.current_org_id(), private.current_org_role() from public;
grant execute on function private.current_org_id(), private.current_org_role() to authenticated, service_role;
-- Trigger function: the trigger invokes it without EXECUTE privilege, so nobody needs a grant.
revoke execute on function private.validate_organization_llm_configuration() from public;
