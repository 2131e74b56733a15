-- A usage row's run and processor belong to the organization the row bills.
--
-- Objects: unique (organization_id, id) on public.runs and public.processors (the targets of
-- composite keys), and composite foreign keys from public.llm_usage_logs beside the plain run_id
-- and processor_id ones, which check only that the run or processor exists. Both kinds stay:
-- once a deleted organization has set a row's organization_id null the composite key no longer
-- applies (match simple), and the plain one still clears the reference to the deleted run.
-- Deleting a run or processor keeps its usage rows and clears only that reference (PostgreSQL
-- 15's `on delete set null (column)`); the organization_id stays.
-- Grants: none change.

alter table public.runs
add constraint runs_organization_id_id_key unique (organization_id, id);

alter table public.processors
add constraint processors_organization_id_id_key unique (organization_id, id);

-- Rows written before this migration may point across organizations (the reference was the
-- caller's input); the bill stays with organization_id, only the wrong pointer goes.
update public.llm_usage_logs as u
set run_id = null
where u.run_id is not null
  and not exists (
    select from public.runs as r
    where r.id = u.run_id and r.organization_id = u.organization_id
  );

update public.llm_usage_logs as u
set processor_id = null
where u.processor_id is not null
  and not exists (
    select from public.processors as p
    where p.id = u.processor_id and p.organization_id = u.organization_id
  );

alter table public.llm_usage_logs
add constraint llm_usage_logs_run_of_same_organization_fkey
foreign key (organization_id, run_id) references public.runs (organization_id, id)
on delete set null (run_id),
add constraint llm_usage_logs_processor_of_same_organization_fkey
foreign key (organization_id, processor_id) references public.processors (organization_id, id)
on delete set null (processor_id);

-- The composite keys' own lookups when a run or processor is deleted.
create index llm_usage_logs_organization_id_run_id_idx on public.llm_usage_logs (organization_id, run_id);
create index llm_usage_logs_organization_id_processor_id_idx on public.llm_usage_logs (organization_id, processor_id);
