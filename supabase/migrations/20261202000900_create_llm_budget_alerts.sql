-- Budget alerts: one row the first time a period's actual spend (not reservations) crosses each
-- of a budget's thresholds, exactly once even under concurrency, announced with pg_notify and,
-- where Supabase Realtime is set up, streamed to subscribed frontends.
--
-- Objects: public.llm_budget_alerts, private.record_llm_budget_alerts() and its trigger on
-- private.llm_budget_periods; the table joins the supabase_realtime publication if it exists.
-- Channel llm_budget_alerts; payload the alert as JSON.
-- Grants: members read their organization's alerts (RLS); the service role reads all; nobody
-- writes through the API; anon nothing.

create table public.llm_budget_alerts (
  id uuid primary key default gen_random_uuid(),
  budget_id uuid not null references public.llm_budgets (id) on delete cascade,
  organization_id uuid not null references public.organizations (id) on delete cascade,
  period_start timestamptz not null,
  threshold numeric not null,
  spent_usd numeric not null,
  created_at timestamptz not null default now(),
  constraint llm_budget_alerts_once_per_threshold unique (budget_id, period_start, threshold)
);

comment on table public.llm_budget_alerts is
'A budget''s spend crossed threshold × limit_usd in the period starting period_start; spent_usd as it was then.';

create index llm_budget_alerts_organization_id_created_at_idx on public.llm_budget_alerts (organization_id, created_at desc);

-- Definer: writes alerts, which no API role may. Runs on the period's row, whose lock orders
-- concurrent spend: each crossing is seen by exactly one writer (and the unique key backs it).
create function private.record_llm_budget_alerts()
returns trigger
language plpgsql
security definer
set search_path = ''  -- empty: nothing on the caller's search_path can run with the owner's rights
as $$
declare
  v_alert public.llm_budget_alerts;
  v_before numeric := case when tg_op = 'UPDATE' then old.spent_usd else 0 end;
begin
  for v_alert in
    insert into public.llm_budget_alerts (budget_id, organization_id, period_start, threshold, spent_usd)
    select b.id, b.organization_id, new.period_start, t.threshold, new.spent_usd
    from public.llm_budgets as b
    cross join lateral unnest(b.alert_thresholds) as t (threshold)
    where b.id = new.budget_id and new.spent_usd >= t.threshold * b.limit_usd
      and (v_before < t.threshold * b.limit_usd or tg_op = 'INSERT')
    on conflict on constraint llm_budget_alerts_once_per_threshold do nothing
    returning *
  loop
    perform pg_notify('llm_budget_alerts', to_jsonb(v_alert)::text);
  end loop;
  return null;
end
$$;

create trigger llm_budget_periods_record_alerts
after insert or update of spent_usd on private.llm_budget_periods
for each row execute function private.record_llm_budget_alerts();

-- RLS on: the API roles see only the rows a policy below allows.
alter table public.llm_budget_alerts enable row level security;

-- Members see their organization's alerts (and receive them through Realtime, which checks RLS).
create policy "Members can read their organization's budget alerts"
on public.llm_budget_alerts for select to authenticated
using (organization_id = (select private.current_org_id()));

-- Undo any default privileges, then grant exactly: alerts are written by the trigger alone.
revoke all on table public.llm_budget_alerts from public, anon, authenticated, service_role;
-- Signed-in members read their organization's alerts; RLS picks the rows.
grant select on table public.llm_budget_alerts to authenticated;
-- The service role reads every organization's (notifications by mail, chat...).
grant select on table public.llm_budget_alerts to service_role;
-- Trigger function: the trigger invokes it without EXECUTE privilege, so nobody needs a grant.
revoke execute on function private.record_llm_budget_alerts() from public;

-- Supabase Realtime streams the publication's tables to subscribed clients; a project without it
-- (or a plain PostgreSQL) has no such publication.
do $$
begin
  if exists (select from pg_catalog.pg_publication where pubname = 'supabase_realtime') then
    alter publication supabase_realtime add table public.llm_budget_alerts;
  end if;
end
$$;
