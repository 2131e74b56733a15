"""`python -m gateway`: serve the gateway with uvicorn, configured from the environment."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import sys
import tempfile
from collections.abc import Iterator

import uvicorn
from litestar import Litestar
from uvicorn.supervisors import Multiprocess

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
    config = uvicorn.Config(
        "gateway.__main__:app_from_env",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_level=settings.log_level,
        log_config=None,
        server_header=False,
        # Measured against asyncio + h11 and against granian: bench/results/gateway_load.md.
        loop="uvloop",
        http="httptools",
    )
    if config.workers > 1:
        with shared_metrics_dir(settings):
            Multiprocess(config, sockets=[tcp_listener(settings.host, settings.port)]).run()
        return
    server = uvicorn.Server(config)
    try:
        server.run()
    except KeyboardInterrupt:  # uvicorn re-raises the Ctrl-C it handled; the shutdown is done
        return
    if not server.started:
        sys.exit(3)  # uvicorn's own exit status for a failed start-up


@contextlib.contextmanager
def shared_metrics_dir(settings: Settings) -> Iterator[None]:
    """The directory the workers' metrics meet in (prometheus-client's multiprocess mode): the
    operator's PROMETHEUS_MULTIPROC_DIR, or a new one removed at exit. Set in the environment
    before the workers start, which is when prometheus-client reads it."""
    if settings.metrics_dir is not None:
        yield
        return
    with tempfile.TemporaryDirectory(prefix="llm-gateway-metrics-") as directory:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
        yield


def tcp_listener(host: str, port: int) -> socket.socket:
    """The workers' shared listening socket, created with proto IPPROTO_TCP.

    uvicorn's own (`Config.bind_socket`) has proto 0, which accepted sockets inherit, and asyncio
    enables TCP_NODELAY only on IPPROTO_TCP sockets: with more than one worker every keep-alive
    request after the first would wait about 40 ms for a delayed ACK (uvicorn issue #3149)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        sys.exit(f"gateway: cannot listen on {host}:{port}: {exc.strerror}")
    sock.set_inheritable(True)
    logging.getLogger("uvicorn.error").info("listening on %s:%d", host, sock.getsockname()[1])
    return sock


if __name__ == "__main__":
    main()
