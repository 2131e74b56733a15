-- Supabase Security Advisor (splinter) lints over the product's schemas, as plain SQL: each lint is
-- a temporary view listing what it would report. The schema must produce no finding; then a set
-- of deliberately bad probe objects proves that every lint query finds what it is meant to find.
begin;
select plan(32);

-- Policy text is deparsed against the search_path: keep auth, private and public off it, so that
-- every name in pg_policies comes out schema-qualified (splinter's auth_rls_initplan relies on it).
set local search_path = extensions;

-- The lints -------------------------------------------------------------------------------------
-- Each view returns one text column, `finding`, naming the offending object. "Exposed" means
-- public, the only schema PostgREST serves; private is checked where it matters too.

-- function_search_path_mutable: a function without a fixed search_path.
create temp view function_search_path_mutable as
select format('%s.%s(%s)', p.pronamespace::regnamespace, p.proname,
              pg_catalog.pg_get_function_identity_arguments(p.oid)) collate "default" as finding
from pg_catalog.pg_proc as p
where p.pronamespace in ('public'::regnamespace, 'private'::regnamespace)
  and not exists (select from unnest(p.proconfig) as c (setting) where c.setting like 'search_path=%');

-- anon_security_definer_function_executable / authenticated_security_definer_function_executable.
create temp view anon_security_definer_function_executable as
select format('%s.%s(%s)', p.pronamespace::regnamespace, p.proname,
              pg_catalog.pg_get_function_identity_arguments(p.oid)) collate "default" as finding
from pg_catalog.pg_proc as p
where p.pronamespace = 'public'::regnamespace and p.prosecdef
  and pg_catalog.has_function_privilege('anon', p.oid, 'EXECUTE');

create temp view authenticated_security_definer_function_executable as
select format('%s.%s(%s)', p.pronamespace::regnamespace, p.proname,
              pg_catalog.pg_get_function_identity_arguments(p.oid)) collate "default" as finding
from pg_catalog.pg_proc as p
where p.pronamespace = 'public'::regnamespace and p.prosecdef
  and pg_catalog.has_function_privilege('authenticated', p.oid, 'EXECUTE');

-- Not a splinter lint: nothing in private is for anon, definer or not.
create temp view anon_private_function_executable as
select format('%s.%s(%s)', p.pronamespace::regnamespace, p.proname,
              pg_catalog.pg_get_function_identity_arguments(p.oid)) collate "default" as finding
from pg_catalog.pg_proc as p
where p.pronamespace = 'private'::regnamespace
  and pg_catalog.has_function_privilege('anon', p.oid, 'EXECUTE');

-- rls_disabled_in_public.
create temp view rls_disabled_in_public as
select format('%s.%s', c.relnamespace::regnamespace, c.relname) collate "default" as finding
from pg_catalog.pg_class as c
where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p') and not c.relrowsecurity;

-- policy_exists_rls_disabled.
create temp view policy_exists_rls_disabled as
select distinct format('%s.%s', c.relnamespace::regnamespace, c.relname) collate "default" as finding
from pg_catalog.pg_policy as p
join pg_catalog.pg_class as c on c.oid = p.polrelid
where c.relnamespace = 'public'::regnamespace and not c.relrowsecurity;

-- rls_enabled_no_policy.
create temp view rls_enabled_no_policy as
select format('%s.%s', c.relnamespace::regnamespace, c.relname) collate "default" as finding
from pg_catalog.pg_class as c
where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p') and c.relrowsecurity
  and not exists (select from pg_catalog.pg_policy as p where p.polrelid = c.oid);

-- rls_references_user_metadata (users edit user_metadata themselves).
create temp view rls_references_user_metadata as
select format('public.%s: %s', p.tablename, p.policyname) collate "default" as finding
from pg_catalog.pg_policies as p
where p.schemaname = 'public'
  and (coalesce(p.qual, '') ~* 'user_metadata' or coalesce(p.with_check, '') ~* 'user_metadata');

-- Not a splinter lint, the same rule one level down: the helpers policies call must not read it.
create temp view function_references_user_metadata as
select format('%s.%s(%s)', p.pronamespace::regnamespace, p.proname,
              pg_catalog.pg_get_function_identity_arguments(p.oid)) collate "default" as finding
from pg_catalog.pg_proc as p
where p.pronamespace in ('public'::regnamespace, 'private'::regnamespace)
  and p.prosrc ~* 'user_metadata';

-- rls_policy_always_true, for writes: a permissive insert/update/delete policy that lets every
-- row through (`true`, `1=1`, or no expression at all).
create temp view rls_policy_always_true as
select format('public.%s: %s', p.tablename, p.policyname) collate "default" as finding
from pg_catalog.pg_policies as p
cross join lateral (
  select regexp_replace(lower(coalesce(p.qual, '')), '\s', '', 'g') as qual,
         regexp_replace(lower(coalesce(p.with_check, '')), '\s', '', 'g') as with_check
) as n
where p.schemaname = 'public' and p.permissive = 'PERMISSIVE' and p.cmd <> 'SELECT'
  and (
    (p.cmd in ('UPDATE', 'DELETE', 'ALL') and (p.qual is null or n.qual in ('true', '(true)', '1=1', '(1=1)')))
    or n.with_check in ('true', '(true)', '1=1', '(1=1)')
    or (p.cmd = 'INSERT' and p.with_check is null)
  );

-- auth_rls_initplan: every call of auth.* or of the caller's-organization helpers must be wrapped
-- as `(select fn())` so that it runs once per statement, not once per row. Remove the wrapped
-- calls; any call left over is a finding.
create temp view auth_rls_initplan as
select format('public.%s: %s', p.tablename, p.policyname) collate "default" as finding
from pg_catalog.pg_policies as p
where p.schemaname = 'public'
  and regexp_replace(coalesce(p.qual, '') || ' ' || coalesce(p.with_check, ''),
                     '\( SELECT (auth|private)\.\w+\(\) AS \w+\)', '', 'g')
      ~ '(auth\.\w+|private\.current_org_\w+)\(';

-- multiple_permissive_policies: two permissive policies for the same role and command.
create temp view multiple_permissive_policies as
select format('public.%s: %s %s', p.tablename, r.role, a.action) collate "default" as finding
from pg_catalog.pg_policies as p
cross join lateral unnest(case when p.roles = '{public}' then array['anon', 'authenticated', 'service_role']::name[]
                               else p.roles end) as r (role)
cross join lateral unnest(case when p.cmd = 'ALL' then array['SELECT', 'INSERT', 'UPDATE', 'DELETE']
                               else array[p.cmd] end) as a (action)
where p.schemaname = 'public' and p.permissive = 'PERMISSIVE'
group by p.tablename, r.role, a.action
having count(*) > 1;

-- unindexed_foreign_keys: no index whose leading columns are the foreign key's columns.
create temp view unindexed_foreign_keys as
select format('public.%s: %s', t.relname, c.conname) collate "default" as finding
from pg_catalog.pg_constraint as c
join pg_catalog.pg_class as t on t.oid = c.conrelid
where c.contype = 'f' and c.connamespace = 'public'::regnamespace
  and not exists (
    select from pg_catalog.pg_index as i
    where i.indrelid = c.conrelid and i.indisvalid
      and (string_to_array(i.indkey::text, ' ')::smallint[])[1:cardinality(c.conkey)] = c.conkey
  );

-- no_primary_key.
create temp view no_primary_key as
select format('%s.%s', c.relnamespace::regnamespace, c.relname) collate "default" as finding
from pg_catalog.pg_class as c
where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p')
  and not exists (select from pg_catalog.pg_constraint as k where k.conrelid = c.oid and k.contype = 'p');

-- security_definer_view: a view that runs with its owner's rights (no security_invoker).
create temp view security_definer_view as
select format('%s.%s', c.relnamespace::regnamespace, c.relname) collate "default" as finding
from pg_catalog.pg_class as c
where c.relnamespace = 'public'::regnamespace and c.relkind = 'v'
  and not coalesce(c.reloptions && array['security_invoker=true', 'security_invoker=on', 'security_invoker=1'], false);

-- sensitive_columns_exposed: a credential-like column in a table an API role can read. Stricter
-- than splinter, which only looks at tables without RLS.
create temp view sensitive_columns_exposed as
select format('%s.%s.%s', c.relnamespace::regnamespace, c.relname, a.attname) collate "default" as finding
from pg_catalog.pg_class as c
join pg_catalog.pg_attribute as a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p', 'v', 'm')
  and (pg_catalog.has_table_privilege('anon', c.oid, 'SELECT')
       or pg_catalog.has_table_privilege('authenticated', c.oid, 'SELECT'))
  and replace(lower(a.attname), '-', '_')
      ~ ('(^|_)(api_?key|auth_key|private_key|secret|secret_key|passw(or)?d|pwd|passphrase|jwt'
         || '|(access_|refresh_|session_|bearer_|oauth_)?token)$');

-- The schema passes every lint ------------------------------------------------------------------

select is_empty('select * from function_search_path_mutable',
  'function_search_path_mutable: every function in public and private fixes its search_path');
select is_empty('select * from anon_security_definer_function_executable',
  'anon_security_definer_function_executable: anon can execute no security definer function in public');
select is_empty('select * from authenticated_security_definer_function_executable',
  'authenticated_security_definer_function_executable: signed-in users can execute no security definer function in public');
select is_empty('select * from anon_private_function_executable',
  'anon can execute no function in private');
select is_empty('select * from rls_disabled_in_public',
  'rls_disabled_in_public: every table in public has row level security enabled');
select is_empty('select * from policy_exists_rls_disabled',
  'policy_exists_rls_disabled: no table in public has policies that RLS would ignore');
select is_empty('select * from rls_enabled_no_policy',
  'rls_enabled_no_policy: every table in public with RLS has at least one policy');
select is_empty('select * from rls_references_user_metadata',
  'rls_references_user_metadata: no policy reads user_metadata');
select is_empty('select * from function_references_user_metadata',
  'no function in public or private reads user_metadata');
select is_empty('select * from rls_policy_always_true',
  'rls_policy_always_true: no insert, update or delete policy lets every row through');
select is_empty('select * from auth_rls_initplan',
  'auth_rls_initplan: every auth and caller''s-organization call in a policy is wrapped in a select');
select is_empty('select * from multiple_permissive_policies',
  'multiple_permissive_policies: no table has two permissive policies for one role and command');
select is_empty('select * from unindexed_foreign_keys',
  'unindexed_foreign_keys: every foreign key in public leads an index');
select is_empty('select * from no_primary_key',
  'no_primary_key: every table in public has a primary key');
select is_empty('select * from security_definer_view',
  'security_definer_view: no view in public runs with its owner''s rights');
select is_empty('select * from sensitive_columns_exposed',
  'sensitive_columns_exposed: no credential-like column in a table the API roles can read');

-- Each lint finds what it is meant to find ------------------------------------------------------
-- Probe objects, each breaking one or more rules; the transaction rolls them back.

create table public.lint_probe_open (
  id uuid,
  organization_id uuid references public.organizations (id),
  api_key text
);
grant select on public.lint_probe_open to anon;
create policy "probe always true" on public.lint_probe_open for update to authenticated using (true);
create policy "probe unwrapped helper" on public.lint_probe_open for select to authenticated
using (organization_id = private.current_org_id());
create policy "probe unwrapped uid" on public.lint_probe_open for delete to authenticated using (id = auth.uid());
create policy "probe reads user_metadata" on public.lint_probe_open for select to authenticated
using (organization_id = ((select auth.jwt()) -> 'user_metadata' ->> 'organization_id')::uuid);

create table public.lint_probe_locked (id uuid primary key);
alter table public.lint_probe_locked enable row level security;

create view public.lint_probe_view as select 1 as one;

create function public.lint_probe_definer() returns integer language sql security definer as $$ select 1 $$;
grant execute on function public.lint_probe_definer() to anon, authenticated;

create function private.lint_probe_helper() returns text language sql stable
as $$ select auth.jwt() -> 'user_metadata' ->> 'organization_id' $$;
grant execute on function private.lint_probe_helper() to anon;

select set_eq('select * from function_search_path_mutable',
  array['public.lint_probe_definer()', 'private.lint_probe_helper()'],
  'function_search_path_mutable finds functions without a fixed search_path');
select set_eq('select * from anon_security_definer_function_executable', array['public.lint_probe_definer()'],
  'anon_security_definer_function_executable finds a definer function anon can call');
select set_eq('select * from authenticated_security_definer_function_executable', array['public.lint_probe_definer()'],
  'authenticated_security_definer_function_executable finds a definer function signed-in users can call');
select set_eq('select * from anon_private_function_executable', array['private.lint_probe_helper()'],
  'the private-schema check finds a helper anon can call');
select set_eq('select * from rls_disabled_in_public', array['public.lint_probe_open'],
  'rls_disabled_in_public finds a table without RLS');
select set_eq('select * from policy_exists_rls_disabled', array['public.lint_probe_open'],
  'policy_exists_rls_disabled finds policies on a table without RLS');
select set_eq('select * from rls_enabled_no_policy', array['public.lint_probe_locked'],
  'rls_enabled_no_policy finds a table with RLS and no policy');
select set_eq('select * from rls_references_user_metadata', array['public.lint_probe_open: probe reads user_metadata'],
  'rls_references_user_metadata finds a policy reading user_metadata');
select set_eq('select * from function_references_user_metadata', array['private.lint_probe_helper()'],
  'the helper check finds a function reading user_metadata');
select set_eq('select * from rls_policy_always_true', array['public.lint_probe_open: probe always true'],
  'rls_policy_always_true finds an update policy using (true)');
select set_eq('select * from auth_rls_initplan',
  array['public.lint_probe_open: probe unwrapped helper', 'public.lint_probe_open: probe unwrapped uid'],
  'auth_rls_initplan finds unwrapped auth.uid() and current_org_id() calls and accepts a wrapped auth.jwt()');
select set_eq('select * from multiple_permissive_policies', array['public.lint_probe_open: authenticated SELECT'],
  'multiple_permissive_policies finds two select policies for signed-in users');
select set_eq('select * from unindexed_foreign_keys', array['public.lint_probe_open: lint_probe_open_organization_id_fkey'],
  'unindexed_foreign_keys finds a foreign key without an index');
select set_eq('select * from no_primary_key', array['public.lint_probe_open'],
  'no_primary_key finds a table without a primary key');
select set_eq('select * from security_definer_view', array['public.lint_probe_view'],
  'security_definer_view finds a view without security_invoker');
select set_eq('select * from sensitive_columns_exposed', array['public.lint_probe_open.api_key'],
  'sensitive_columns_exposed finds an api_key column anon can read');

select * from finish();
rollback;
