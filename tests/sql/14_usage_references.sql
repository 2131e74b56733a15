-- A usage row's run and processor belong to the organization the row bills: a caller's run_id
-- of another organization cannot attach that organization's run to this bill. Rows are written
-- as the gateway writes them: as the service role.
begin;
select plan(9);

-- Fixtures ------------------------------------------------------------------------------------
select tests.create_organization('Acme') as acme \gset
select tests.create_organization('Bystander') as bystander \gset
insert into public.processors (organization_id, name) values (:'acme', 'Acme processor') returning id as acme_processor \gset
insert into public.processors (organization_id, name) values (:'bystander', 'Bystander processor')
returning id as bystander_processor \gset
insert into public.runs (organization_id, processor_id) values (:'acme', :'acme_processor') returning id as acme_run \gset
insert into public.runs (organization_id, processor_id) values (:'bystander', :'bystander_processor')
returning id as bystander_run \gset

select tests.authenticate_as_service_role();

-- Another organization's references are refused -------------------------------------------------
select throws_ok(
  format($$insert into public.llm_usage_logs (organization_id, run_id, provider, model_name)
           values (%L, %L, 'openai', 'gpt-4o')$$, :'acme', :'bystander_run'),
  '23503', null,
  'a usage row of one organization cannot point at another organization''s run'
);
select throws_ok(
  format($$insert into public.llm_usage_logs (organization_id, processor_id, provider, model_name)
           values (%L, %L, 'openai', 'gpt-4o')$$, :'acme', :'bystander_processor'),
  '23503', null,
  'a usage row of one organization cannot point at another organization''s processor'
);
select throws_ok(
  format($$insert into public.llm_usage_logs (organization_id, run_id, provider, model_name)
           values (%L, gen_random_uuid(), 'openai', 'gpt-4o')$$, :'acme'),
  '23503', null,
  'a usage row cannot point at a run that does not exist'
);

-- Its own references are accepted ----------------------------------------------------------------
select lives_ok(
  format($$insert into public.llm_usage_logs (organization_id, processor_id, run_id, operation_id, provider, model_name)
           values (%L, %L, %L, 'own', 'openai', 'gpt-4o')$$, :'acme', :'acme_processor', :'acme_run'),
  'a usage row may point at its own organization''s run and processor'
);

-- Processors cannot be moved from under their usage -------------------------------------------------
select tests.clear_authentication();
select throws_ok(
  format('update public.processors set organization_id = %L where id = %L', :'bystander', :'acme_processor'),
  '23503', null,
  'a processor with usage rows cannot move to another organization'
);

-- Deleting what a row points at clears only that reference ----------------------------------------
select tests.clear_authentication();
delete from public.runs where id = :'acme_run';
select results_eq(
  $$select organization_id, processor_id, run_id from public.llm_usage_logs where operation_id = 'own'$$,
  format('values (%L::uuid, %L::uuid, null::uuid)', :'acme', :'acme_processor'),
  'deleting a run clears the row''s run_id and keeps its organization and processor'
);
delete from public.processors where id = :'acme_processor';
select results_eq(
  $$select organization_id, processor_id, run_id from public.llm_usage_logs where operation_id = 'own'$$,
  format('values (%L::uuid, null::uuid, null::uuid)', :'acme'),
  'deleting a processor clears the row''s processor_id and keeps its organization'
);

-- A deleted organization's rows stay, detached ---------------------------------------------------
select tests.authenticate_as_service_role();
insert into public.llm_usage_logs (organization_id, processor_id, run_id, operation_id, provider, model_name)
values (:'bystander', :'bystander_processor', :'bystander_run', 'bystander-own', 'openai', 'gpt-4o');
select tests.clear_authentication();
select lives_ok(
  format('delete from public.organizations where id = %L', :'bystander'),
  'an organization with usage rows pointing at its runs and processors can be deleted'
);
select results_eq(
  $$select organization_id, processor_id, run_id from public.llm_usage_logs where operation_id = 'bystander-own'$$,
  'values (null::uuid, null::uuid, null::uuid)',
  'the deleted organization''s usage rows stay, with every reference cleared'
);

select * from finish();
rollback;
