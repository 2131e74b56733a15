"""Settings.from_env: every variable read in one place, and a start-up error naming a bad one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gateway.providers import DEFAULT_BASE_URLS
from gateway.settings import Settings, SettingsError

SECRET = "jwt-secret-for-settings-tests-0123456789"
DIRECT = {"DATABASE_URL": "postgresql://postgres:pw@db.example.com:6543/postgres", "SUPABASE_JWT_SECRET": SECRET}


def test_minimal_direct_postgres_deployment() -> None:
    settings = Settings.from_env(DIRECT)
    assert settings.data_adapter == "postgres"
    assert settings.jwks_url is None
    assert settings.api_keys == {}
    assert settings.base_urls == DEFAULT_BASE_URLS
    assert (settings.connect_timeout, settings.read_timeout) == (5.0, 300.0)
    assert (settings.max_retries, settings.request_deadline) == (1, 120.0)
    assert (settings.breaker_failures, settings.breaker_window, settings.breaker_cooldown) == (5, 30.0, 30.0)
    # Cached, with change notifications keeping it fresh; the TTL is only a safety net.
    assert settings.config_cache_seconds == 60 and settings.database_listen_url is None


def test_postgrest_deployment_uses_the_project_url_for_data_and_signing_keys() -> None:
    settings = Settings.from_env(
        {"SUPABASE_URL": "https://abc.supabase.co/", "SUPABASE_SERVICE_ROLE_KEY": "service-role-jwt"}
    )
    assert settings.data_adapter == "postgrest"
    assert settings.jwks_url == "https://abc.supabase.co/auth/v1/.well-known/jwks.json"
    assert settings.config_cache_seconds == 0  # nothing announces changes through PostgREST


def test_database_url_wins_when_both_adapters_are_configured() -> None:
    settings = Settings.from_env({**DIRECT, "SUPABASE_URL": "https://abc.supabase.co"})
    assert settings.data_adapter == "postgres" and settings.jwks_url is not None


def test_provider_keys_base_urls_and_timeouts_come_from_their_variables() -> None:
    settings = Settings.from_env(
        {
            **DIRECT,
            "ANTHROPIC_API_KEY": "sk-ant-1",
            "GOOGLE_API_KEY": " ",
            "OPENAI_BASE_URL": "https://proxy.internal/openai/v1/",
            "PROVIDER_CONNECT_TIMEOUT_SECONDS": "2.5",
            "PROVIDER_READ_TIMEOUT_SECONDS": "90",
            "GATEWAY_PORT": "9000",
            "GATEWAY_LOG_LEVEL": "DEBUG",
            "GATEWAY_CONFIG_CACHE_SECONDS": "2.5",
            "GATEWAY_CORS_ORIGINS": "https://app.example.com/, http://localhost:5173",
            "GATEWAY_CUSTOM_PROVIDER_ALLOWED_NETWORKS": "10.20.0.0/16, fd00:1::/64",
        }
    )
    assert [str(n) for n in settings.custom_provider_allowed_networks] == ["10.20.0.0/16", "fd00:1::/64"]
    assert settings.cors_origins == ("https://app.example.com", "http://localhost:5173")
    assert settings.api_keys == {"anthropic": "sk-ant-1"}  # blank counts as unset
    assert settings.base_urls["openai"] == "https://proxy.internal/openai/v1"
    assert settings.base_urls["mistral"] == DEFAULT_BASE_URLS["mistral"]
    assert (settings.connect_timeout, settings.read_timeout, settings.port) == (2.5, 90.0, 9000)
    assert settings.log_level == "debug"
    assert settings.config_cache_seconds == 2.5


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"SUPABASE_JWT_SECRET": SECRET}, "DATABASE_URL"),
        ({"SUPABASE_URL": "https://abc.supabase.co", "SUPABASE_JWT_SECRET": SECRET}, "SUPABASE_SERVICE_ROLE_KEY"),
        ({"DATABASE_URL": DIRECT["DATABASE_URL"]}, "SUPABASE_JWT_SECRET"),
        ({**DIRECT, "DATABASE_URL": "mysql://db/x"}, "DATABASE_URL"),
        ({**DIRECT, "SUPABASE_URL": "abc.supabase.co"}, "SUPABASE_URL"),
        ({**DIRECT, "OPENAI_BASE_URL": "ftp://proxy"}, "OPENAI_BASE_URL"),
        ({**DIRECT, "META_BASE_URL": "https://"}, "META_BASE_URL"),
        ({**DIRECT, "PROVIDER_READ_TIMEOUT_SECONDS": "soon"}, "PROVIDER_READ_TIMEOUT_SECONDS"),
        ({**DIRECT, "PROVIDER_CONNECT_TIMEOUT_SECONDS": "0"}, "PROVIDER_CONNECT_TIMEOUT_SECONDS"),
        ({**DIRECT, "PROVIDER_READ_TIMEOUT_SECONDS": "inf"}, "PROVIDER_READ_TIMEOUT_SECONDS"),
        ({**DIRECT, "GATEWAY_PORT": "70000"}, "GATEWAY_PORT"),
        ({**DIRECT, "GATEWAY_WORKERS": "two"}, "GATEWAY_WORKERS"),
        ({**DIRECT, "DATABASE_POOL_SIZE": "0"}, "DATABASE_POOL_SIZE"),
        ({**DIRECT, "GATEWAY_LOG_LEVEL": "loud"}, "GATEWAY_LOG_LEVEL"),
        ({**DIRECT, "GATEWAY_CONFIG_CACHE_SECONDS": "-1"}, "GATEWAY_CONFIG_CACHE_SECONDS"),
        ({**DIRECT, "DATABASE_LISTEN_URL": "http://db:5432"}, "DATABASE_LISTEN_URL"),
        ({**DIRECT, "PROVIDER_MAX_RETRIES": "-1"}, "PROVIDER_MAX_RETRIES"),
        ({**DIRECT, "GATEWAY_REQUEST_DEADLINE_SECONDS": "0"}, "GATEWAY_REQUEST_DEADLINE_SECONDS"),
        ({**DIRECT, "PROVIDER_BREAKER_FAILURES": "0"}, "PROVIDER_BREAKER_FAILURES"),
        ({**DIRECT, "PROVIDER_BREAKER_COOLDOWN_SECONDS": "soon"}, "PROVIDER_BREAKER_COOLDOWN_SECONDS"),
        ({**DIRECT, "GATEWAY_CORS_ORIGINS": "app.example.com"}, "GATEWAY_CORS_ORIGINS"),
        ({**DIRECT, "GATEWAY_CORS_ORIGINS": "https://app.example.com/path"}, "GATEWAY_CORS_ORIGINS"),
        (
            {**DIRECT, "GATEWAY_CUSTOM_PROVIDER_ALLOWED_NETWORKS": "10.0.0.1/8"},
            "GATEWAY_CUSTOM_PROVIDER_ALLOWED_NETWORKS",
        ),
        (
            {**DIRECT, "GATEWAY_CUSTOM_PROVIDER_ALLOWED_NETWORKS": "intranet"},
            "GATEWAY_CUSTOM_PROVIDER_ALLOWED_NETWORKS",
        ),
    ],
)
def test_missing_or_malformed_variable_is_named(env: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        Settings.from_env(env)


def test_secrets_stay_out_of_repr_and_errors() -> None:
    settings = Settings.from_env({**DIRECT, "OPENAI_API_KEY": "sk-openai-secret-value"})
    assert "pw@" not in repr(settings) and SECRET not in repr(settings) and "sk-openai" not in repr(settings)
    with pytest.raises(SettingsError) as error:
        Settings.from_env({**DIRECT, "SUPABASE_URL": "not a url with sk-secret"})
    assert "sk-secret" not in str(error.value)


def test_python_m_gateway_stops_at_start_up_naming_the_variable() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gateway"],
        cwd=Path(__file__).resolve().parents[2],
        env={"PATH": "/usr/bin:/bin", "SUPABASE_JWT_SECRET": SECRET},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "DATABASE_URL" in result.stderr
    assert "Traceback" not in result.stderr
