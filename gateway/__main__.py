"""`python -m gateway`: serve the gateway with uvicorn, configured from the environment."""

from __future__ import annotations

import logging
import sys

import uvicorn
from litestar import Litestar

from gateway.app import create_app
from gateway.settings import Settings, SettingsError


def app_from_env() -> Litestar:
    """uvicorn's factory: each worker process builds its app from the same environment."""
    settings = Settings.from_env()
    _configure_logging(settings)
    return create_app(settings)


def _configure_logging(settings: Settings) -> None:
    # uvicorn's loggers propagate here too (log_config=None below), so one format covers all.
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def main() -> None:
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        sys.exit(f"gateway: configuration error: {exc}")
    _configure_logging(settings)
    uvicorn.run(
        "gateway.__main__:app_from_env",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_level=settings.log_level,
        log_config=None,
        server_header=False,
    )


if __name__ == "__main__":
    main()
