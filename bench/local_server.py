"""For the benchmarks: start `python -m egp_core.local` in its own process, and a busy loop.

    process, url, started = start_server("--threads", "2")
    hog = busy_core()          # a process spinning on one core until hog.terminate()
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def start_server(*args: str) -> tuple[subprocess.Popen, str, float]:
    """Starts the local server on a free port; returns it, its URL and the monotonic time it began."""
    env = {k: v for k, v in os.environ.items() if k not in ("EGP_LOCAL_API_KEY", "EGP_LOCAL_MODELS")}
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "egp_core.local", "--port", "0", "--log-level", "warning", *args],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
    )
    line = process.stdout.readline()
    found = re.search(r"on (http://\S+)", line)
    if not found:
        process.kill()
        raise SystemExit(f"the server did not start: {line!r}")
    return process, found.group(1), started


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


def busy_core() -> subprocess.Popen:
    """Another program keeping one core busy (what a browser or an IDE does to a laptop)."""
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])
