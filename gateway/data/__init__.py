"""Data access: one small interface, two adapters (direct Postgres, PostgREST RPC)."""

from gateway.data.types import (
    BudgetReservation,
    Caller,
    DataAccess,
    EffectiveConfig,
    KeyInfo,
    LlmTarget,
    ModelChoice,
    ResolvedCall,
    UsageRecord,
)

__all__ = [
    "BudgetReservation",
    "Caller",
    "DataAccess",
    "EffectiveConfig",
    "KeyInfo",
    "LlmTarget",
    "ModelChoice",
    "ResolvedCall",
    "UsageRecord",
]
