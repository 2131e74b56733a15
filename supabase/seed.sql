-- Seed for `supabase db reset`: the model catalog, then a demo organization for local use.
-- No real keys anywhere: organizations store theirs with store_org_api_key.

-- Model catalog ------------------------------------------------------------------------------
-- List prices in USD per million tokens (late 2026). Null price = unknown, billed as null cost.
insert into public.llm_global_settings (
  provider, model_name, display_name, model_category, is_default, is_active, configuration, capabilities,
  cost_per_million_input_tokens, cost_per_million_output_tokens,
  cost_per_million_cache_read_tokens, cost_per_million_cache_write_tokens
) values
-- The plan's three rows (the two Claude 3 models are deprecated by Anthropic, kept for the plan's default).
('anthropic', 'claude-3-5-sonnet-20241022', 'Claude 3.5 Sonnet', 'balanced', true, true,
 '{"temperature": 0.7, "max_tokens": 4096}',
 '{"context_window": 200000, "max_output_tokens": 8192, "supports_vision": true, "supports_tools": true, "deprecated": true}',
 3.00, 15.00, 0.30, 3.75),
('anthropic', 'claude-3-opus-20240229', 'Claude 3 Opus', 'powerful', false, true,
 '{"temperature": 0.5, "max_tokens": 8192}',
 '{"context_window": 200000, "max_output_tokens": 4096, "supports_vision": true, "supports_tools": true, "deprecated": true}',
 15.00, 75.00, 1.50, 18.75),
('mistral', 'mistral-large-latest', 'Mistral Large', 'powerful', false, true,
 '{"temperature": 0.7, "max_tokens": 4096}',
 '{"context_window": 128000, "supports_vision": true, "supports_tools": true}',
 0.50, 1.50, 0.05, null),
-- Current models.
('anthropic', 'claude-sonnet-4-5', 'Claude Sonnet 4.5', 'balanced', false, true,
 '{"temperature": 0.7, "max_tokens": 8192}',
 '{"context_window": 200000, "max_output_tokens": 64000, "supports_vision": true, "supports_tools": true}',
 3.00, 15.00, 0.30, 3.75),
('anthropic', 'claude-opus-4-5', 'Claude Opus 4.5', 'powerful', false, true,
 '{"temperature": 0.5, "max_tokens": 8192}',
 '{"context_window": 200000, "max_output_tokens": 64000, "supports_vision": true, "supports_tools": true}',
 5.00, 25.00, 0.50, 6.25),
('anthropic', 'claude-haiku-4-5', 'Claude Haiku 4.5', 'fast', false, true,
 '{"temperature": 0.7, "max_tokens": 4096}',
 '{"context_window": 200000, "max_output_tokens": 64000, "supports_vision": true, "supports_tools": true}',
 1.00, 5.00, 0.10, 1.25),
('openai', 'gpt-4o', 'GPT-4o', 'balanced', false, true,
 '{"temperature": 0.7, "max_tokens": 4096}',
 '{"context_window": 128000, "max_output_tokens": 16384, "supports_vision": true, "supports_tools": true}',
 2.50, 10.00, 1.25, null),
('openai', 'gpt-4o-mini', 'GPT-4o mini', 'fast', false, true,
 '{"temperature": 0.7, "max_tokens": 4096}',
 '{"context_window": 128000, "max_output_tokens": 16384, "supports_vision": true, "supports_tools": true}',
 0.15, 0.60, 0.075, null),
('openai', 'gpt-4.1', 'GPT-4.1', 'powerful', false, true,
 '{"temperature": 0.5, "max_tokens": 8192}',
 '{"context_window": 1047576, "max_output_tokens": 32768, "supports_vision": true, "supports_tools": true}',
 2.00, 8.00, 0.50, null),
('openai', 'gpt-4.1-mini', 'GPT-4.1 mini', 'fast', false, true,
 '{"temperature": 0.7, "max_tokens": 4096}',
 '{"context_window": 1047576, "max_output_tokens": 32768, "supports_vision": true, "supports_tools": true}',
 0.40, 1.60, 0.10, null),
('mistral', 'mistral-small-latest', 'Mistral Small', 'fast', false, true,
 '{"temperature": 0.7, "max_tokens": 4096}',
 '{"context_window": 128000, "supports_vision": true, "supports_tools": true}',
 0.15, 0.60, 0.015, null),
-- Gemini 2.5 Pro doubles its input price above 200K prompt tokens; the catalog holds the base tier.
('google', 'gemini-2.5-pro', 'Gemini 2.5 Pro', 'powerful', false, true,
 '{"temperature": 0.7, "max_tokens": 8192}',
 '{"context_window": 1048576, "max_output_tokens": 65536, "supports_vision": true, "supports_tools": true, "thinking": true}',
 1.25, 10.00, 0.125, null),
('google', 'gemini-2.5-flash', 'Gemini 2.5 Flash', 'fast', false, true,
 '{"temperature": 0.7, "max_tokens": 8192}',
 '{"context_window": 1048576, "max_output_tokens": 65536, "supports_vision": true, "supports_tools": true, "thinking": true}',
 0.30, 2.50, 0.03, null),
-- Meta's Llama API publishes no per-token price: cost stays null (unknown) until an operator sets one.
('meta', 'Llama-4-Maverick-17B-128E-Instruct-FP8', 'Llama 4 Maverick', 'balanced', false, true,
 '{"temperature": 0.7, "max_tokens": 4096}',
 '{"context_window": 128000, "supports_vision": true, "supports_tools": true}',
 null, null, null, null),
('meta', 'Llama-4-Scout-17B-16E-Instruct-FP8', 'Llama 4 Scout', 'fast', false, true,
 '{"temperature": 0.7, "max_tokens": 4096}',
 '{"context_window": 128000, "supports_vision": true, "supports_tools": true}',
 null, null, null, null)
on conflict (provider, model_name) do nothing;

-- Demo organization (local only) ---------------------------------------------------------------
-- Three users of "Demo Org": owner, admin and member. Their tokens carry the org in app_metadata.
insert into auth.users (id, email, raw_app_meta_data) values
('d0000000-0000-4000-8000-000000000001', 'owner@demo.local', '{"organization_id": "de000000-0000-4000-8000-000000000001"}'),
('d0000000-0000-4000-8000-000000000002', 'admin@demo.local', '{"organization_id": "de000000-0000-4000-8000-000000000001"}'),
('d0000000-0000-4000-8000-000000000003', 'member@demo.local', '{"organization_id": "de000000-0000-4000-8000-000000000001"}')
on conflict (id) do nothing;

insert into public.organizations (id, name, llm_configuration) values
('de000000-0000-4000-8000-000000000001', 'Demo Org', '{
  "default_profile": "balanced",
  "profiles": {
    "fast": {"provider": "openai", "model": "gpt-4o-mini", "settings": {"temperature": 0.2}},
    "balanced": {"provider": "anthropic", "model": "claude-sonnet-4-5", "settings": {"max_tokens": 2048}},
    "powerful": {"provider": "google", "model": "gemini-2.5-pro"}
  }
}')
on conflict (id) do nothing;

insert into public.organization_members (organization_id, user_id, role) values
('de000000-0000-4000-8000-000000000001', 'd0000000-0000-4000-8000-000000000001', 'owner'),
('de000000-0000-4000-8000-000000000001', 'd0000000-0000-4000-8000-000000000002', 'admin'),
('de000000-0000-4000-8000-000000000001', 'd0000000-0000-4000-8000-000000000003', 'member')
on conflict do nothing;

insert into public.processors (id, organization_id, name, configuration) values
('dc000000-0000-4000-8000-000000000001', 'de000000-0000-4000-8000-000000000001', 'Contract summary', '{"llm_profile": "powerful", "settings_override": {"temperature": 0.1}}'),
('dc000000-0000-4000-8000-000000000002', 'de000000-0000-4000-8000-000000000001', 'Invoice triage', '{"llm_profile": "fast"}'),
('dc000000-0000-4000-8000-000000000003', 'de000000-0000-4000-8000-000000000001', 'Default model check', '{}')
on conflict (id) do nothing;
