"""Data access: one small interface, two adapters (direct Postgres, PostgREST RPC)."""

from gateway.data.types import Caller, DataAccess, EffectiveConfig, KeyInfo, UsageRecord

__all__ = ["Caller", "DataAccess", "EffectiveConfig", "KeyInfo", "UsageRecord"]
