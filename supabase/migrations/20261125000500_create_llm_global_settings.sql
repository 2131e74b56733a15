-- The global model catalog: which models exist, their defaults, capabilities and list prices.
--
-- Objects: public.llm_global_settings (unique per provider and model, at most one default,
-- updated_at maintained, configuration validated like any other settings).
-- Grants: authenticated reads (the frontend's model pickers); only the service role writes;
-- anon gets nothing.

create table public.llm_global_settings (
  id uuid primary key default gen_random_uuid(),
  provider text not null check (provider = any(private.llm_providers())),
  model_name text not null check (btrim(model_name) <> ''),
  display_name text not null check (btrim(display_name) <> ''),
  model_category text check (model_category in ('fast', 'balanced', 'powerful', 'specialized')),
  is_default boolean not null default false,
  is_active boolean not null default true,
  configuration jsonb not null default '{}',
  capabilities jsonb not null default '{}' check (jsonb_typeof(capabilities) = 'object'),
  cost_per_million_input_tokens numeric(10, 4) check (cost_per_million_input_tokens >= 0),
  cost_per_million_output_tokens numeric(10, 4) check (cost_per_million_output_tokens >= 0),
  cost_per_million_cache_read_tokens numeric(10, 4) check (cost_per_million_cache_read_tokens >= 0),
  cost_per_million_cache_write_tokens numeric(10, 4) check (cost_per_million_cache_write_tokens >= 0),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint llm_global_settings_provider_model_name_key unique (provider, model_name),
  constraint llm_global_settings_default_is_active check (not is_default or is_active)
);

comment on table public.llm_global_settings is
'Model catalog. configuration = default settings; prices in USD per million tokens, null when unknown.';
comment on column public.llm_global_settings.cost_per_million_cache_read_tokens is
'Price of cached input tokens read; null bills them at the input price.';
comment on column public.llm_global_settings.cost_per_million_cache_write_tokens is
'Price of input tokens written to the cache; null bills them at the input price.';

-- At most one default model.
create unique index llm_global_settings_one_default_idx on public.llm_global_settings (is_default) where is_default;
-- Category fallback of get_effective_llm_config: active models of a category, default first.
create index llm_global_settings_category_idx on public.llm_global_settings (model_category, is_default desc, model_name)
where is_active;

create trigger llm_global_settings_set_updated_at
before update on public.llm_global_settings
for each row execute function private.set_updated_at();

create function private.validate_llm_global_settings()
returns trigger
language plpgsql
set search_path = ''  -- empty: the caller's search_path cannot redirect its schema-qualified names
as $$
begin
  perform private.assert_no_credentials(new.configuration, 'configuration');
  perform private.assert_valid_llm_settings(new.configuration, 'configuration');
  return new;
end
$$;

create trigger llm_global_settings_validate
before insert or update of configuration on public.llm_global_settings
for each row execute function private.validate_llm_global_settings();

-- RLS on: the API roles see and change only the rows a policy below allows.
alter table public.llm_global_settings enable row level security;

-- Signed-in users read the whole catalog; anon does not (the plan's USING (true) let it).
create policy "Signed-in users can read the model catalog"
on public.llm_global_settings for select to authenticated
using (true);

-- Undo any default privileges, then grant exactly: authenticated reads, the service role writes.
revoke all on table public.llm_global_settings from public, anon, authenticated, service_role;
grant select on table public.llm_global_settings to authenticated;
grant select, insert, update, delete on table public.llm_global_settings to service_role;

-- Trigger function: the trigger invokes it without EXECUTE privilege, so nobody needs a grant.
revoke execute on function private.validate_llm_global_settings() from public;
