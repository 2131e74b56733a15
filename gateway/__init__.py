"""The LLM gateway: the plan's edge functions as one Litestar service."""
