"""Fixture: the real embedded local server with the bundled model.

`local_server` (session): `python -m egp_core.local --port 0` started once per
test session as a subprocess with the real SmolLM2 model, ready when the fixture
returns, terminated at the end. Use `local_server.base_url`, and
`local_server.health()` / `local_server.wait_idle()` to see the engine state
(`wait_idle` also makes a test independent of what ran before it).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class LocalModelServer:
    base_url: str
    process: subprocess.Popen
    log_path: Path

    def health(self) -> dict:
        return requests.get(f"{self.base_url}/health", timeout=5).json()

    def wait_until(self, predicate, timeout: float = 10.0) -> dict:
        """Polls /health until `predicate(health)` holds; fails the test after `timeout` s."""
        deadline = time.monotonic() + timeout
        while True:
            health = self.health()
            if predicate(health):
                return health
            if time.monotonic() > deadline:
                pytest.fail(f"the local server never reached the expected state; last /health: {health}")
            time.sleep(0.01)

    def wait_idle(self, timeout: float = 30.0) -> dict:
        """Waits until no generation runs and nothing is queued."""
        return self.wait_until(lambda h: not h["busy"] and h["queue_length"] == 0, timeout)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def _clean_environ() -> dict[str, str]:
    """The test process's environment without the local server's own settings."""
    return {k: v for k, v in os.environ.items() if k not in ("EGP_LOCAL_API_KEY", "EGP_LOCAL_MODELS")}


def start_local_server(log_dir: Path, *args: str, env: dict[str, str] | None = None) -> LocalModelServer:
    """Starts `python -m egp_core.local --port 0 ...` and waits for its model to be ready."""
    out_path, log_path = log_dir / "local-server.out", log_dir / "local-server.log"
    with open(out_path, "wb") as out, open(log_path, "wb") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "egp_core.local", "--host", "127.0.0.1", "--port", "0", *args],
            cwd=ROOT,
            stdout=out,
            stderr=err,
            env={**_clean_environ(), **(env or {})},
        )
    deadline = time.monotonic() + 60
    base_url = None
    while base_url is None:
        found = re.search(r"on (http://\S+)", out_path.read_text(errors="replace"))
        if found:
            base_url = found.group(1)
        elif process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"the local server did not start:\n{log_path.read_text(errors='replace')[-3000:]}")
        else:
            time.sleep(0.05)
    server = LocalModelServer(base_url, process, log_path)
    while True:
        try:
            if server.health()["ready"]:
                return server
        except requests.ConnectionError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            stop_local_server(server)
            pytest.fail(f"the local model did not load:\n{server.log()[-3000:]}")
        time.sleep(0.05)


def stop_local_server(server: LocalModelServer) -> None:
    server.process.terminate()
    try:
        server.process.wait(10)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait(5)


@pytest.fixture(scope="session")
def local_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalModelServer]:
    server = start_local_server(tmp_path_factory.mktemp("local-model"), "--threads", "2")
    try:
        yield server
    finally:
        stop_local_server(server)
