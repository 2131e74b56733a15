-- Processors (an AI operation an organization configures) and their runs.
--
-- Objects: public.processors, public.runs, validation trigger on processors.configuration.
-- processors.configuration may carry {"llm_profile": name, "settings_override": {...}} beside
-- whatever else the app stores there.
-- Grants: members read; owners/admins create, change and delete processors (RLS); runs are
-- written by the service role; anon gets nothing.

create table public.processors (
  id uuid primary key default gen_random_uuid(),
  organization_id uuid not null references public.organizations (id) on delete cascade,
  name text not null check (btrim(name) <> ''),
  configuration jsonb not null default '{}',
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

comment on table public.processors is 'An AI operation of an organization; configuration.llm_profile picks its model profile.';

create index processors_organization_id_idx on public.processors (organization_id);

create table public.runs (
  id uuid primary key default gen_random_uuid(),
  organization_id uuid not null references public.organizations (id) on delete cascade,
  processor_id uuid references public.processors (id) on delete set null,
  status text not null default 'pending' check (status in ('pending', 'running', 'completed', 'failed')),
  created_at timestamptz not null default now()
);

comment on table public.runs is 'One execution of a processor; usage rows point here.';

create index runs_organization_id_created_at_idx on public.runs (organization_id, created_at desc);
create index runs_processor_id_idx on public.runs (processor_id);

create trigger processors_set_updated_at
before update on public.processors
for each row execute function private.set_updated_at();

create function private.validate_processor_configuration()
returns trigger
language plpgsql
set search_path = ''  -- empty: the caller's search_path cannot redirect its schema-qualified names
as $$
begin
  perform private.assert_valid_processor_configuration(new.configuration);
  return new;
end
$$;

create trigger processors_validate_configuration
before insert or update of configuration on public.processors
for each row execute function private.validate_processor_configuration();

-- RLS on: the API roles see and change only the rows a policy below allows.
alter table public.processors enable row level security;
alter table public.runs enable row level security;

-- Members see their organization's processors.
create policy "Members can read their organization's processors"
on public.processors for select to authenticated
using (organization_id = (select private.current_org_id()));

-- Owners and admins create processors in their organization only.
create policy "Org admins can create processors"
on public.processors for insert to authenticated
with check (organization_id = (select private.current_org_id()) and (select private.current_org_role()) in ('owner', 'admin'));

-- Owners and admins change their organization's processors and cannot move them to another.
create policy "Org admins can update processors"
on public.processors for update to authenticated
using (organization_id = (select private.current_org_id()) and (select private.current_org_role()) in ('owner', 'admin'))
with check (organization_id = (select private.current_org_id()) and (select private.current_org_role()) in ('owner', 'admin'));

-- Owners and admins delete their organization's processors; usage history keeps its rows.
create policy "Org admins can delete processors"
on public.processors for delete to authenticated
using (organization_id = (select private.current_org_id()) and (select private.current_org_role()) in ('owner', 'admin'));

-- Members see their organization's runs.
create policy "Members can read their organization's runs"
on public.runs for select to authenticated
using (organization_id = (select private.current_org_id()));

-- Undo any default privileges, then grant exactly.
revoke all on table public.processors, public.runs from public, anon, authenticated, service_role;
-- Signed-in users read processors and, as admins, write name and configuration; RLS picks rows.
grant select, insert, delete on table public.processors to authenticated;
grant update (name, configuration) on table public.processors to authenticated;
-- Signed-in users read runs; the backend (service role) creates and updates them.
grant select on table public.runs to authenticated;
grant select, insert, update, delete on table public.processors, public.runs to service_role;

-- Trigger function: the trigger invokes it without EXECUTE privilege, so nobody needs a grant.
revoke execute on function private.validate_processor_configuration() from public;
