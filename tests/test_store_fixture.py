"""The PostgreSQL fixture itself: a real server, and a clear failure (never a skip) without binaries."""

from __future__ import annotations

import psycopg
import pytest

from tests.plugins import postgres as plugin


def test_server_is_real_and_databases_are_fresh(postgres_url: str, postgres_database: str) -> None:
    with psycopg.connect(postgres_database.replace("+psycopg", ""), autocommit=True) as conn:
        schema = conn.execute("SELECT current_schema()").fetchone()[0]
        assert schema.startswith("t_") and schema in postgres_database
        assert conn.execute("SELECT COUNT(*) FROM pg_tables WHERE schemaname = %s", (schema,)).fetchone()[0] == 0
        conn.execute("CREATE TABLE t (x int)")
        assert conn.execute("SELECT COUNT(*) FROM pg_tables WHERE schemaname = %s", (schema,)).fetchone()[0] == 1
    assert postgres_url.startswith("postgresql+psycopg://postgres@127.0.0.1:")


def test_missing_binaries_fail_with_a_clear_message(monkeypatch) -> None:
    monkeypatch.setattr(plugin.glob, "glob", lambda pattern: [])
    with pytest.raises(pytest.fail.Exception) as info:
        plugin._pg_bin_dir()
    assert "PostgreSQL server binaries not found" in str(info.value)
    assert "apt-get install postgresql" in str(info.value)
