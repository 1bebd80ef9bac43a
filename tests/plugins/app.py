"""Fixtures: the real app as a `streamlit run` process, and headless Chromium (Playwright).

`app_factory(env=...)` starts the app on a free port with its own data folder;
`browser` is Debian's chromium driven by Playwright (no downloaded browsers).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RunningApp:
    """A `streamlit run` process (app.py by default). Can be killed and started again on the same port."""

    def __init__(self, env: dict[str, str], data_dir: Path, port: int | None = None,
                 script: Path = ROOT / "app.py") -> None:
        self.script = script
        self.env = env
        self.data_dir = data_dir
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.log_path = data_dir / f"streamlit-{self.port}.log"

    def start(self, timeout: float = 60) -> RunningApp:
        env = {**os.environ, "EGP_PLAYGROUND_DATA": str(self.data_dir), **self.env}
        log = open(self.log_path, "ab")  # noqa: SIM115 - lives as long as the process
        self.proc = subprocess.Popen(
            [
                sys.executable, "-m", "streamlit", "run", str(self.script),
                "--server.port", str(self.port), "--server.address", "127.0.0.1",
                "--server.headless", "true", "--browser.gatherUsageStats", "false",
                "--server.fileWatcherType", "none",
            ],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the app exited early:\n{self.log()}")
            try:
                if requests.get(self.url + "/_stcore/health", timeout=1).ok:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"the app did not become healthy:\n{self.log()}")

    def kill(self) -> None:
        """Crash it: SIGKILL the whole process group, no chance to clean up."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-5000:]
        except OSError:
            return ""


@pytest.fixture
def app_factory(tmp_path: Path) -> Iterator:
    started: list[RunningApp] = []

    def make(env: dict[str, str] | None = None, data_dir: Path | None = None, port: int | None = None) -> RunningApp:
        app = RunningApp(env or {}, data_dir or tmp_path, port)
        started.append(app)
        return app.start()

    yield make
    for app in started:
        app.stop()


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium")
    if not executable:
        pytest.fail("Debian's chromium is not installed: run `bash scripts/setup.sh --dev`.")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    p = context.new_page()
    p.set_default_timeout(30_000)
    yield p
    context.close()


IDLE = "[data-test-script-state='notRunning']"


def wait_idle(page, timeout: float = 30_000) -> None:
    """Wait until Streamlit says the script is not running (its own e2e suite's way).

    A click's rerun starts only after a round trip to the server, so "not running" seen at once
    may be the state before it. Like Streamlit's own `wait_for_app_run`, look again after a short
    pause: idle twice, 200 ms apart, is idle after the rerun too (a patience step, not an assertion).
    """
    page.wait_for_selector(IDLE, timeout=timeout, state="attached")
    page.wait_for_timeout(200)
    page.wait_for_selector(IDLE, timeout=timeout, state="attached")
