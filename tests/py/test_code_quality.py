"""The Python code is typed (mypy --strict) and lint-clean (ruff), as STYLE.md asks."""

from __future__ import annotations

import subprocess
import sys

from devstack.database import ROOT


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=600, check=False
    )


def test_ruff_finds_nothing() -> None:
    result = _run("ruff", "check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_changes_nothing() -> None:
    result = _run("ruff", "format", "--check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_gateway_and_devstack_pass_mypy_strict() -> None:
    result = _run("mypy", "--strict", "gateway", "devstack", "bench")
    assert result.returncode == 0, result.stdout + result.stderr
