-- Budgets: what an organization, or one of its processors, may spend on LLM calls per UTC day or
-- month. Hard budgets refuse calls that would not fit (reservations, next migration); every
-- budget alerts as its spend crosses its thresholds.
--
-- Objects: public.llm_budgets; private.llm_budget_periods (spent and reserved per budget and
-- period, updated in the transaction that writes each usage row, so reading month-to-date is one
-- row); private.llm_budget_period_start(); validation, announcement and period-opening triggers
-- on llm_budgets. The counters are kept by private.account_llm_usage() (a later migration).
-- Grants: members read their organization's budgets; owners and admins write them (RLS); the
-- service role manages all; anon nothing. The counters are private: functions read them.

create table public.llm_budgets (
  id uuid primary key default gen_random_uuid(),
  organization_id uuid not null references public.organizations (id) on delete cascade,
  processor_id uuid,
  period text not null,
  limit_usd numeric(20, 12) not null,
  hard boolean not null default true,
  alert_thresholds numeric[] not null default '{0.5,0.8,1.0}',
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint llm_budgets_processor_of_same_organization_fkey
  foreign key (organization_id, processor_id) references public.processors (organization_id, id) on delete cascade,
  constraint llm_budgets_one_per_scope_and_period unique nulls not distinct (organization_id, processor_id, period)
);

comment on table public.llm_budgets is
'Spending limits per organization (processor_id null) or processor, per UTC day or month. hard: refuse calls that would not fit.';
comment on column public.llm_budgets.alert_thresholds is 'Fractions of limit_usd; crossing each records one llm_budget_alerts row per period.';

create table private.llm_budget_periods (
  budget_id uuid not null references public.llm_budgets (id) on delete cascade,
  period_start timestamptz not null,
  spent_usd numeric not null default 0,
  reserved_usd numeric not null default 0,
  primary key (budget_id, period_start)
);

comment on table private.llm_budget_periods is
'Spend per budget and period, kept with each usage row (never summed from llm_usage_logs on the request path).';

create trigger llm_budgets_set_updated_at
before update on public.llm_budgets
for each row execute function private.set_updated_at();

create function private.llm_budget_period_start(p_period text, p_at timestamptz)
returns timestamptz
language sql
immutable
set search_path = ''  -- empty: the caller's search_path cannot redirect its schema-qualified names
return date_trunc(p_period, p_at, 'UTC');

-- Path-named errors (22023), as the configuration's: the frontend shows them next to the field.
create function private.validate_llm_budget()
returns trigger
language plpgsql
set search_path = ''  -- empty: the caller's search_path cannot redirect its schema-qualified names
as $$
begin
  if tg_op = 'UPDATE' and (new.organization_id, new.processor_id, new.period)
     is distinct from (old.organization_id, old.processor_id, old.period) then
    raise exception using
      errcode = '22023',
      message = 'llm_budgets: organization_id, processor_id and period cannot change',
      hint = 'Delete the budget and create another; its spend so far belongs to its scope and period.';
  end if;
  if new.period is null or new.period not in ('day', 'month') then
    raise exception using errcode = '22023', message = 'llm_budgets.period: must be day or month';
  end if;
  if new.limit_usd is null or new.limit_usd <= 0 then
    raise exception using errcode = '22023', message = 'llm_budgets.limit_usd: must be a positive amount of USD';
  end if;
  if new.hard is null then
    raise exception using errcode = '22023', message = 'llm_budgets.hard: must be true or false';
  end if;
  if new.alert_thresholds is null or cardinality(new.alert_thresholds) > 10 then
    raise exception using errcode = '22023', message = 'llm_budgets.alert_thresholds: at most 10 fractions';
  end if;
  for v_index in 1 .. coalesce(array_length(new.alert_thresholds, 1), 0) loop
    if new.alert_thresholds[v_index] is null or new.alert_thresholds[v_index] <= 0
       or new.alert_thresholds[v_index] > 10 then
      raise exception using
        errcode = '22023',
        message = format('llm_budgets.alert_thresholds[%s]: must be a fraction of the limit above 0 and at most 10', v_index - 1);
    end if;
  end loop;
  return new;
end
$$;

create trigger llm_budgets_validate
before insert or update on public.llm_budgets
for each row execute function private.validate_llm_budget();

-- Gateways cache whether an organization has a hard budget with its configuration.
create trigger llm_budgets_notify_llm_config_changed
after insert or update or delete on public.llm_budgets
for each row execute function private.notify_llm_config_changed('organization_id');

-- Definer: opens the budget's current period in the private counters with what its scope has
-- spent in that period already (from the hourly rollup and the current hour's usage rows).
create function private.open_llm_budget_period()
returns trigger
language plpgsql
security definer
set search_path = ''  -- empty: nothing on the caller's search_path can run with the owner's rights
as $$
declare
  v_start timestamptz := private.llm_budget_period_start(new.period, now());
  v_hour timestamptz := date_trunc('hour', now(), 'UTC');
begin
  insert into private.llm_budget_periods (budget_id, period_start, spent_usd)
  select new.id, v_start, coalesce(sum(spent.cost), 0)
  from (
    select h.cost from private.llm_usage_hourly as h
    where h.organization_id = new.organization_id and h.hour >= v_start and h.hour < v_hour
      and case
        when new.processor_id is null then h.dimension = 'model'
        else h.dimension = 'processor' and h.key = new.processor_id::text
      end
    union all
    select coalesce(u.estimated_cost, 0) from public.llm_usage_logs as u
    where u.organization_id = new.organization_id and u.created_at >= greatest(v_hour, v_start)
      and (new.processor_id is null or u.processor_id = new.processor_id)
  ) as spent (cost);
  return null;
end
$$;

create trigger llm_budgets_open_period
after insert on public.llm_budgets
for each row execute function private.open_llm_budget_period();

-- RLS on: the API roles see and change only the rows a policy below allows.
alter table public.llm_budgets enable row level security;

-- Members see their organization's budgets (the usage page shows them).
create policy "Members can read their organization's budgets"
on public.llm_budgets for select to authenticated
using (organization_id = (select private.current_org_id()));

-- Owners and admins set budgets for their organization only.
create policy "Org admins can create budgets"
on public.llm_budgets for insert to authenticated
with check (organization_id = (select private.current_org_id()) and (select private.current_org_role()) in ('owner', 'admin'));

-- Owners and admins change their organization's budgets and cannot move them to another.
create policy "Org admins can update budgets"
on public.llm_budgets for update to authenticated
using (organization_id = (select private.current_org_id()) and (select private.current_org_role()) in ('owner', 'admin'))
with check (organization_id = (select private.current_org_id()) and (select private.current_org_role()) in ('owner', 'admin'));

-- Owners and admins remove their organization's budgets.
create policy "Org admins can delete budgets"
on public.llm_budgets for delete to authenticated
using (organization_id = (select private.current_org_id()) and (select private.current_org_role()) in ('owner', 'admin'));

-- Undo any default privileges, then grant exactly.
revoke all on table public.llm_budgets from public, anon, authenticated, service_role;
-- Signed-in users read budgets and, as admins, create, change (limit, hardness, thresholds) and
-- delete them; RLS picks the rows.
grant select, delete on table public.llm_budgets to authenticated;
grant insert (organization_id, processor_id, period, limit_usd, hard, alert_thresholds) on table public.llm_budgets
to authenticated;
grant update (limit_usd, hard, alert_thresholds) on table public.llm_budgets to authenticated;
-- The service role (backend, provisioning) manages every organization's budgets.
grant select, insert, update, delete on table public.llm_budgets to service_role;
-- The counters are private; only the definer functions of these migrations touch them.
revoke all on table private.llm_budget_periods from public, anon, authenticated, service_role;

-- Only the definer functions of these migrations call it, as the owner: no API role needs it.
revoke execute on function private.llm_budget_period_start(text, timestamptz) from public;
-- Trigger functions: the trigger invokes them without EXECUTE privilege, so nobody needs a grant.
revoke execute on function private.validate_llm_budget(), private.open_llm_budget_period() from public;
