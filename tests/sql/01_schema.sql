-- Structure and privileges of everything the product puts in public (and the private helpers
-- behind it): tables and columns, the catalog's uniqueness rules, RLS on every table, and the
-- exact grants each API role holds, which must not depend on the project's default privileges.
begin;
select plan(109);

-- Tables and columns ----------------------------------------------------------------------------

select has_table('public', t.name, format('table public.%s exists', t.name))
from unnest(array[
  'organizations', 'organization_members', 'processors', 'runs', 'llm_global_settings', 'llm_usage_logs',
  'llm_budgets', 'llm_budget_alerts'
]) as t (name);

select tables_are('public', array[
  'organizations', 'organization_members', 'processors', 'runs', 'llm_global_settings', 'llm_usage_logs',
  'llm_budgets', 'llm_budget_alerts', 'llm_custom_providers'
], 'public holds exactly the product''s nine tables');
select columns_are('public', 'llm_custom_providers',
  array['id', 'organization_id', 'name', 'base_url', 'api_style', 'models', 'is_active', 'created_at', 'updated_at'],
  'llm_custom_providers has exactly its documented columns');

select columns_are('public', 'organizations',
  array['id', 'name', 'llm_configuration', 'created_at', 'updated_at'],
  'organizations has exactly its documented columns');
select columns_are('public', 'organization_members',
  array['organization_id', 'user_id', 'role', 'created_at'],
  'organization_members has exactly its documented columns');
select columns_are('public', 'processors',
  array['id', 'organization_id', 'name', 'configuration', 'created_at', 'updated_at'],
  'processors has exactly its documented columns');
select columns_are('public', 'runs',
  array['id', 'organization_id', 'processor_id', 'status', 'created_at'],
  'runs has exactly its documented columns');
select columns_are('public', 'llm_global_settings',
  array['id', 'provider', 'model_name', 'display_name', 'model_category', 'is_default', 'is_active',
        'configuration', 'capabilities', 'cost_per_million_input_tokens', 'cost_per_million_output_tokens',
        'cost_per_million_cache_read_tokens', 'cost_per_million_cache_write_tokens', 'created_at', 'updated_at'],
  'llm_global_settings has exactly its documented columns');
select columns_are('public', 'llm_usage_logs',
  array['id', 'organization_id', 'processor_id', 'run_id', 'user_id', 'operation_id', 'provider', 'model_name',
        'input_tokens', 'output_tokens', 'cache_read_tokens', 'cache_write_tokens', 'estimated_cost',
        'response_time_ms', 'error_message', 'created_at', 'reservation_id', 'request_id', 'attempt',
        'usage_estimated'],
  'llm_usage_logs has exactly its documented columns');
select columns_are('public', 'llm_budgets',
  array['id', 'organization_id', 'processor_id', 'period', 'limit_usd', 'hard', 'alert_thresholds', 'created_at',
        'updated_at'],
  'llm_budgets has exactly its documented columns');
select columns_are('public', 'llm_budget_alerts',
  array['id', 'budget_id', 'organization_id', 'period_start', 'threshold', 'spent_usd', 'created_at'],
  'llm_budget_alerts has exactly its documented columns');

select functions_are('public', array[
  'store_org_api_key', 'delete_org_api_key', 'list_org_api_keys', 'get_org_api_key',
  'get_effective_llm_config', 'get_effective_llm_config_for_org', 'reserve_llm_budget', 'reserve_llm_budgets',
  'get_llm_budget_status', 'get_llm_budget_status_for_org', 'get_llm_usage_summary', 'estimate_llm_cost',
  'get_llm_config_for_model', 'get_llm_config_for_model_for_org', 'list_llm_models', 'list_llm_models_for_org'
], 'public exposes exactly the sixteen API functions');

-- The model catalog -----------------------------------------------------------------------------

select col_is_unique('public', 'llm_global_settings', array['provider', 'model_name'],
  'a model is listed once per provider');

select throws_ok(
  $$insert into public.llm_global_settings (provider, model_name, display_name)
    values ('openai', 'schema-test-duplicate', 'Duplicate'), ('openai', 'schema-test-duplicate', 'Duplicate again')$$,
  '23505', null,
  'a second catalog row for the same provider and model is rejected'
);

-- Two defaults in one statement: rejected whether or not the seed already has one.
select throws_ok(
  $$insert into public.llm_global_settings (provider, model_name, display_name, is_default)
    values ('openai', 'schema-test-default-1', 'Default 1', true), ('openai', 'schema-test-default-2', 'Default 2', true)$$,
  '23505', null,
  'the catalog holds at most one default model'
);

-- Usage rows are billing records: they outlive the rows they point at, and a deleted run or
-- processor clears only its own reference, never the organization that was billed.
select results_eq(
  $$select format('(%s) on delete set null (%s)' collate "default",
                  (select string_agg(a.attname, ', ' order by k.n) from unnest(c.conkey) with ordinality as k (attnum, n)
                   join pg_catalog.pg_attribute as a on a.attrelid = c.conrelid and a.attnum = k.attnum),
                  (select string_agg(a.attname, ', ') from unnest(coalesce(c.confdelsetcols, c.conkey)) as k (attnum)
                   join pg_catalog.pg_attribute as a on a.attrelid = c.conrelid and a.attnum = k.attnum))
    from pg_catalog.pg_constraint as c
    where c.conrelid = 'public.llm_usage_logs'::regclass and c.contype = 'f' and c.confdeltype = 'n'
    order by 1$$,
  array['(organization_id) on delete set null (organization_id)',
        '(organization_id, processor_id) on delete set null (processor_id)',
        '(organization_id, run_id) on delete set null (run_id)',
        '(processor_id) on delete set null (processor_id)',
        '(run_id) on delete set null (run_id)',
        '(user_id) on delete set null (user_id)'],
  'every foreign key of llm_usage_logs sets only its own reference null on delete'
);
select is(
  (select count(*)::int from pg_catalog.pg_constraint as c
   where c.conrelid = 'public.llm_usage_logs'::regclass and c.contype = 'f' and c.confdeltype <> 'n'),
  0,
  'no foreign key of llm_usage_logs cascades or restricts a delete'
);

-- Row level security ----------------------------------------------------------------------------

select is_empty(
  $$select c.relname from pg_catalog.pg_class as c
    where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p') and not c.relrowsecurity$$,
  'row level security is enabled on every table in public'
);

-- Privileges: schemas ---------------------------------------------------------------------------

select schema_privs_are('private', 'anon', array[]::text[], 'anon cannot look up anything in private');
select schema_privs_are('private', 'authenticated', array['USAGE'],
  'signed-in users may use private (policies call its helpers as them)');
select schema_privs_are('private', 'service_role', array['USAGE'], 'the service role may use private');

-- Privileges: tables (exactly the migrations' grants, under either default-privilege behaviour) --

select table_privs_are('public', t.name, t.role, t.privs,
  case when t.privs = '{}' then format('%s has no privilege on public.%s', t.role, t.name)
       else format('%s has exactly %s on public.%s', t.role, array_to_string(t.privs, ', '), t.name) end)
from (values
  ('organizations', 'anon', '{}'::text[]),
  ('organizations', 'authenticated', '{SELECT}'),
  ('organizations', 'service_role', '{SELECT,INSERT,UPDATE,DELETE}'),
  ('organization_members', 'anon', '{}'),
  ('organization_members', 'authenticated', '{SELECT,INSERT,DELETE}'),
  ('organization_members', 'service_role', '{SELECT,INSERT,UPDATE,DELETE}'),
  ('processors', 'anon', '{}'),
  ('processors', 'authenticated', '{SELECT,INSERT,DELETE}'),
  ('processors', 'service_role', '{SELECT,INSERT,UPDATE,DELETE}'),
  ('runs', 'anon', '{}'),
  ('runs', 'authenticated', '{SELECT}'),
  ('runs', 'service_role', '{SELECT,INSERT,UPDATE,DELETE}'),
  ('llm_global_settings', 'anon', '{}'),
  ('llm_global_settings', 'authenticated', '{SELECT}'),
  ('llm_global_settings', 'service_role', '{SELECT,INSERT,UPDATE,DELETE}'),
  ('llm_usage_logs', 'anon', '{}'),
  ('llm_usage_logs', 'authenticated', '{SELECT}'),
  ('llm_usage_logs', 'service_role', '{SELECT,INSERT}'),
  ('llm_budgets', 'anon', '{}'),
  ('llm_budgets', 'authenticated', '{SELECT,DELETE}'),
  ('llm_budgets', 'service_role', '{SELECT,INSERT,UPDATE,DELETE}'),
  ('llm_budget_alerts', 'anon', '{}'),
  ('llm_budget_alerts', 'authenticated', '{SELECT}'),
  ('llm_budget_alerts', 'service_role', '{SELECT}'),
  ('llm_custom_providers', 'anon', '{}'),
  ('llm_custom_providers', 'authenticated', '{SELECT,DELETE}'),
  ('llm_custom_providers', 'service_role', '{SELECT,INSERT,UPDATE,DELETE}')
) as t (name, role, privs);

-- Column grants: table_privs_are does not see them.
select set_eq(
  $$select c.relname::text, a.attname::text
    from pg_catalog.pg_class as c
    join pg_catalog.pg_attribute as a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
    where c.relnamespace = 'public'::regnamespace and c.relkind = 'r'
      and pg_catalog.has_column_privilege('authenticated', c.oid, a.attnum, 'UPDATE')$$,
  $$values ('organizations', 'name'), ('organizations', 'llm_configuration'),
           ('organization_members', 'role'),
           ('processors', 'name'), ('processors', 'configuration'),
           ('llm_budgets', 'limit_usd'), ('llm_budgets', 'hard'), ('llm_budgets', 'alert_thresholds'),
           ('llm_custom_providers', 'name'), ('llm_custom_providers', 'base_url'),
           ('llm_custom_providers', 'api_style'), ('llm_custom_providers', 'models'),
           ('llm_custom_providers', 'is_active')$$,
  'signed-in users may update exactly these columns (RLS then picks the rows)'
);

select is_empty(
  $$select c.relname from pg_catalog.pg_class as c
    where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p', 'v', 'm')
      and (pg_catalog.has_any_column_privilege('anon', c.oid, 'SELECT')
           or pg_catalog.has_any_column_privilege('anon', c.oid, 'INSERT')
           or pg_catalog.has_any_column_privilege('anon', c.oid, 'UPDATE'))$$,
  'anon holds no privilege on any column of any relation in public'
);

-- Privileges: functions -------------------------------------------------------------------------

select function_privs_are('public', f.name, f.args, f.role, f.privs,
  case when f.privs = '{}' then format('%s cannot execute public.%s', f.role, f.name)
       else format('%s can execute public.%s', f.role, f.name) end)
from (values
  ('store_org_api_key', '{uuid,text,text}'::text[], 'anon', '{}'::text[]),
  ('store_org_api_key', '{uuid,text,text}', 'authenticated', '{EXECUTE}'),
  ('store_org_api_key', '{uuid,text,text}', 'service_role', '{EXECUTE}'),
  ('delete_org_api_key', '{uuid,text}', 'anon', '{}'),
  ('delete_org_api_key', '{uuid,text}', 'authenticated', '{EXECUTE}'),
  ('delete_org_api_key', '{uuid,text}', 'service_role', '{EXECUTE}'),
  ('list_org_api_keys', '{uuid}', 'anon', '{}'),
  ('list_org_api_keys', '{uuid}', 'authenticated', '{EXECUTE}'),
  ('list_org_api_keys', '{uuid}', 'service_role', '{EXECUTE}'),
  ('get_org_api_key', '{uuid,text}', 'anon', '{}'),
  ('get_org_api_key', '{uuid,text}', 'authenticated', '{}'),
  ('get_org_api_key', '{uuid,text}', 'service_role', '{EXECUTE}'),
  ('get_effective_llm_config', '{uuid}', 'anon', '{}'),
  ('get_effective_llm_config', '{uuid}', 'authenticated', '{EXECUTE}'),
  ('get_effective_llm_config', '{uuid}', 'service_role', '{}'),
  ('get_effective_llm_config_for_org', '{uuid,uuid}', 'anon', '{}'),
  ('get_effective_llm_config_for_org', '{uuid,uuid}', 'authenticated', '{}'),
  ('get_effective_llm_config_for_org', '{uuid,uuid}', 'service_role', '{EXECUTE}'),
  ('reserve_llm_budget', '{uuid,uuid,text,text,integer,integer,integer}', 'anon', '{}'),
  ('reserve_llm_budget', '{uuid,uuid,text,text,integer,integer,integer}', 'authenticated', '{}'),
  ('reserve_llm_budget', '{uuid,uuid,text,text,integer,integer,integer}', 'service_role', '{EXECUTE}'),
  ('reserve_llm_budgets', '{jsonb}', 'anon', '{}'),
  ('reserve_llm_budgets', '{jsonb}', 'authenticated', '{}'),
  ('reserve_llm_budgets', '{jsonb}', 'service_role', '{EXECUTE}'),
  ('get_llm_budget_status', '{}', 'anon', '{}'),
  ('get_llm_budget_status', '{}', 'authenticated', '{EXECUTE}'),
  ('get_llm_budget_status', '{}', 'service_role', '{}'),
  ('get_llm_budget_status_for_org', '{uuid}', 'anon', '{}'),
  ('get_llm_budget_status_for_org', '{uuid}', 'authenticated', '{}'),
  ('get_llm_budget_status_for_org', '{uuid}', 'service_role', '{EXECUTE}'),
  ('get_llm_usage_summary', '{timestamptz,timestamptz,text}', 'anon', '{}'),
  ('get_llm_usage_summary', '{timestamptz,timestamptz,text}', 'authenticated', '{EXECUTE}'),
  ('get_llm_usage_summary', '{timestamptz,timestamptz,text}', 'service_role', '{}'),
  ('estimate_llm_cost', '{uuid,integer,integer}', 'anon', '{}'),
  ('estimate_llm_cost', '{uuid,integer,integer}', 'authenticated', '{EXECUTE}'),
  ('estimate_llm_cost', '{uuid,integer,integer}', 'service_role', '{}'),
  ('get_llm_config_for_model', '{text}', 'anon', '{}'),
  ('get_llm_config_for_model', '{text}', 'authenticated', '{EXECUTE}'),
  ('get_llm_config_for_model', '{text}', 'service_role', '{}'),
  ('get_llm_config_for_model_for_org', '{uuid,text}', 'anon', '{}'),
  ('get_llm_config_for_model_for_org', '{uuid,text}', 'authenticated', '{}'),
  ('get_llm_config_for_model_for_org', '{uuid,text}', 'service_role', '{EXECUTE}'),
  ('list_llm_models', '{}', 'anon', '{}'),
  ('list_llm_models', '{}', 'authenticated', '{EXECUTE}'),
  ('list_llm_models', '{}', 'service_role', '{}'),
  ('list_llm_models_for_org', '{uuid}', 'anon', '{}'),
  ('list_llm_models_for_org', '{uuid}', 'authenticated', '{}'),
  ('list_llm_models_for_org', '{uuid}', 'service_role', '{EXECUTE}')
) as f (name, args, role, privs);

-- Helpers in private: which API roles may execute each (PUBLIC's default EXECUTE revoked everywhere).
select results_eq(
  $$select p.proname::text collate "default",
           array(select r from unnest(array['anon', 'authenticated', 'service_role']) as r
                 where pg_catalog.has_function_privilege(r, p.oid, 'EXECUTE'))
    from pg_catalog.pg_proc as p
    where p.pronamespace = 'private'::regnamespace
    order by 1$$,
  $$values
    ('account_llm_usage', '{}'::text[]),
    ('assert_can_manage_org_api_keys', '{}'),
    ('assert_llm_provider', '{service_role}'),
    ('assert_no_credentials', '{authenticated,service_role}'),
    ('assert_organization_keeps_an_owner', '{}'),
    ('assert_valid_custom_provider_base_url', '{authenticated,service_role}'),
    ('assert_valid_llm_configuration', '{authenticated,service_role}'),
    ('assert_valid_llm_fallbacks', '{authenticated,service_role}'),
    ('assert_valid_llm_settings', '{authenticated,service_role}'),
    ('assert_valid_processor_configuration', '{authenticated,service_role}'),
    ('can_manage_org_api_keys', '{}'),
    ('current_org_id', '{authenticated,service_role}'),
    ('current_org_role', '{authenticated,service_role}'),
    ('custom_llm_model', '{authenticated,service_role}'),
    ('custom_model_prices', '{authenticated,service_role}'),
    ('delete_org_api_key', '{authenticated,service_role}'),
    ('delete_org_api_keys_of_deleted_organization', '{}'),
    ('has_org_api_key', '{authenticated,service_role}'),
    ('list_org_api_keys', '{authenticated,service_role}'),
    ('llm_budget_period_start', '{}'),
    ('llm_budget_status', '{authenticated,service_role}'),
    ('llm_model_choices', '{authenticated,service_role}'),
    ('llm_providers', '{authenticated,service_role}'),
    ('llm_usage_summary', '{authenticated,service_role}'),
    ('notify_llm_config_changed', '{}'),
    ('open_llm_budget_period', '{}'),
    ('org_api_key_secret_name', '{service_role}'),
    ('record_llm_budget_alerts', '{}'),
    ('required_org_id', '{authenticated}'),
    ('reserve_llm_budget', '{service_role}'),
    ('reserve_llm_budgets', '{service_role}'),
    ('resolve_llm_config', '{authenticated,service_role}'),
    ('resolve_llm_fallbacks', '{authenticated,service_role}'),
    ('resolve_llm_model_choice', '{authenticated,service_role}'),
    ('set_updated_at', '{}'),
    ('set_usage_estimated_cost', '{}'),
    ('store_org_api_key', '{authenticated,service_role}'),
    ('usable_llm_profile', '{authenticated,service_role}'),
    ('validate_llm_budget', '{}'),
    ('validate_llm_custom_provider', '{}'),
    ('validate_llm_global_settings', '{}'),
    ('validate_organization_llm_configuration', '{}'),
    ('validate_processor_configuration', '{}')$$,
  'each private helper is executable by exactly the API roles that need it'
);

-- Security definer functions --------------------------------------------------------------------

select is_empty(
  $$select p.oid::regprocedure from pg_catalog.pg_proc as p
    where p.pronamespace = 'public'::regnamespace and p.prosecdef$$,
  'public holds no security definer function'
);

select results_eq(
  $$select p.oid::regprocedure::text from pg_catalog.pg_proc as p
    where p.pronamespace in ('public'::regnamespace, 'private'::regnamespace) and p.prosecdef
    order by 1$$,
  array[
    'private.account_llm_usage()',
    'private.assert_organization_keeps_an_owner()',
    'private.assert_valid_custom_provider_base_url(text,text)',
    'private.current_org_id()',
    'private.current_org_role()',
    'private.delete_org_api_key(uuid,text)',
    'private.delete_org_api_keys_of_deleted_organization()',
    'private.has_org_api_key(uuid,text)',
    'private.list_org_api_keys(uuid)',
    'private.llm_budget_status(uuid)',
    'private.llm_usage_summary(uuid,timestamp with time zone,timestamp with time zone,text)',
    'private.open_llm_budget_period()',
    'private.record_llm_budget_alerts()',
    'private.reserve_llm_budget(uuid,uuid,text,text,integer,integer,integer)',
    'private.reserve_llm_budgets(jsonb)',
    'private.store_org_api_key(uuid,text,text)'
  ],
  'security definer is used by exactly the deliberate private helpers'
);

select is_empty(
  $$select p.oid::regprocedure from pg_catalog.pg_proc as p
    where p.pronamespace in ('public'::regnamespace, 'private'::regnamespace) and p.prosecdef
      and not coalesce('search_path=""' = any (p.proconfig), false)$$,
  'every security definer function in public and private sets search_path to the empty string'
);

select * from finish();
rollback;
