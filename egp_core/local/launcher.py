"""Start the local server once per process, in a background thread, for the app.

`ensure_local_server()` returns at once: it binds a loopback port, starts
uvicorn in a daemon thread and lets the model load in the background. Calling
it again (a Streamlit rerun) returns the same `LocalServer`. While the model
loads, completions requests to it simply wait for the model (see server.py).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from typing import Any

import uvicorn

from egp_core.local.registry import Registry
from egp_core.local.server import create_app

log = logging.getLogger(__name__)

_lock = threading.Lock()
_instance: LocalServer | None = None


class LocalServer:
    """A running local server: where it listens and whether its model is ready."""

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, *, registry: Registry | None = None, **app_options: Any
    ) -> None:
        """`app_options` go to `create_app` (api_key, load_timeout, keep_alive)."""
        self.registry = registry if registry is not None else Registry()
        self._api_key = app_options.get("api_key") or os.environ.get("EGP_LOCAL_API_KEY") or None
        self._sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self._sock.listen(128)  # connections wait in the backlog until uvicorn accepts them
        self.host = host
        self.port = self._sock.getsockname()[1]
        url_host = f"[{host}]" if ":" in host else host
        self.base_url = f"http://{url_host}:{self.port}"
        self._start_error: str | None = None
        config = uvicorn.Config(
            create_app(self.registry, **app_options),
            log_level="warning",
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=2,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._serve, name="egp-local-server", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        try:
            self._server.run(sockets=[self._sock])
        except BaseException as exc:  # noqa: BLE001 - SystemExit from uvicorn included
            log.exception("local model server stopped")
            self._start_error = f"The local model server stopped unexpectedly ({type(exc).__name__})."

    @property
    def api_key(self) -> str | None:
        """The key this server requires (api_key, else $EGP_LOCAL_API_KEY at start), or None."""
        return self._api_key

    @property
    def error(self) -> str | None:
        """A sentence for the user if the server or its model failed, else None."""
        return self._start_error or self.registry.default.error

    @property
    def error_detail(self) -> str | None:
        """The technical reason behind `error` (for an expander), else None."""
        return self.registry.default.error_detail if self._start_error is None else self._start_error

    def is_ready(self) -> bool:
        return self._server.started and self.registry.default.state == "ready" and self.error is None

    def wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not self.is_ready():
            if self.error is not None or time.monotonic() >= deadline or not self._thread.is_alive():
                return self.is_ready()
            time.sleep(0.02)
        return True

    def stop(self, timeout: float = 5.0) -> None:
        self._server.should_exit = True
        self._thread.join(timeout)

    def __repr__(self) -> str:  # never shows the key
        return f"LocalServer({self.base_url!r}, ready={self.is_ready()})"


def ensure_local_server(host: str = "127.0.0.1", port: int = 0) -> LocalServer:
    """The process's local server, started on first call; later calls return the same one.

    Port 0 picks a free port. If the port asked for is taken (another app process
    has it), a free port is used instead, with a warning in the log.
    """
    global _instance
    with _lock:
        if _instance is None or not _instance._thread.is_alive():
            try:
                _instance = LocalServer(host, port)
            except OSError as exc:
                if port == 0:
                    raise
                log.warning("port %s is not available (%s); the local model uses a free port", port, exc)
                _instance = LocalServer(host, 0)
        return _instance
