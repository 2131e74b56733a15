-- Usage costs to 10^-12 USD: numeric(10, 6) rounded a ten-token call of a cheap model by up to 16%.
--
-- Catalog prices have four decimals per million tokens, so a call's exact cost has at most ten:
-- at scale 12 nothing is rounded at all. The column keeps room for 10^8 USD in one row.
-- Objects: public.llm_usage_logs.estimated_cost, private.set_usage_estimated_cost() (body
-- otherwise unchanged; create or replace keeps its grants).
-- Grants: none change.

alter table public.llm_usage_logs alter column estimated_cost type numeric(20, 12);

-- In the database, so every writer prices calls the same way from the catalog.
create or replace function private.set_usage_estimated_cost()
returns trigger
language plpgsql
set search_path = ''  -- empty: the caller's search_path cannot redirect its schema-qualified names
as $$
declare
  v_price public.llm_global_settings;
begin
  if new.estimated_cost is not null or (new.input_tokens is null and new.output_tokens is null) then
    return new;
  end if;
  select g.* into v_price
  from public.llm_global_settings as g
  where g.provider = new.provider and g.model_name = new.model_name;
  if v_price.cost_per_million_input_tokens is null or v_price.cost_per_million_output_tokens is null then
    return new;
  end if;
  new.estimated_cost := round((
    (coalesce(new.input_tokens, 0) - new.cache_read_tokens - new.cache_write_tokens)
    * v_price.cost_per_million_input_tokens
    + new.cache_read_tokens
    * coalesce(v_price.cost_per_million_cache_read_tokens, v_price.cost_per_million_input_tokens)
    + new.cache_write_tokens
    * coalesce(v_price.cost_per_million_cache_write_tokens, v_price.cost_per_million_input_tokens)
    + coalesce(new.output_tokens, 0) * v_price.cost_per_million_output_tokens
  ) / 1000000, 12);
  return new;
end
$$;
