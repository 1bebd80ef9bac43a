"""Opening the database: a PostgreSQL server that accepts the connection but never answers
must fail in seconds with the friendly StoreError, not hang every page."""

from __future__ import annotations

import socket
import threading

import pytest

from egp_core.store import StoreError, open_store


@pytest.fixture
def silent_server():
    """A TCP port that accepts connections (the kernel completes the handshake) and never replies."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        yield s.getsockname()[1]


def test_a_postgresql_server_that_never_answers_fails_instead_of_hanging(silent_server):
    outcome: list[BaseException | object] = []

    def open_it() -> None:
        try:
            outcome.append(open_store(f"postgresql+psycopg://nobody@127.0.0.1:{silent_server}/db"))
        except BaseException as exc:  # noqa: BLE001 - the test looks at it below
            outcome.append(exc)

    thread = threading.Thread(target=open_it, daemon=True)
    thread.start()
    thread.join(120)  # a patience limit, not a timed assertion: only a hang exceeds it
    assert outcome, "opening a silent PostgreSQL server hung (no connect_timeout)"
    assert isinstance(outcome[0], StoreError), outcome[0]
    assert "Could not open the conversation history database" in outcome[0].user_message


def test_a_connect_timeout_in_the_url_is_kept(silent_server):
    from egp_core.store.engine import make_engine

    engine = make_engine(f"postgresql://nobody@127.0.0.1:{silent_server}/db?connect_timeout=2")
    assert engine.url.query["connect_timeout"] == "2"
    _, params = engine.dialect.create_connect_args(engine.url)
    assert params.get("connect_timeout") == "2"
