"""Opening the database: the URL from the caller, the environment, or a SQLite file."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.pool import StaticPool

DB_URL_ENV = "EGP_PLAYGROUND_DB_URL"
DATA_DIR_ENV = "EGP_PLAYGROUND_DATA"
SQLITE_BUSY_TIMEOUT_S = 30.0
PG_CONNECT_TIMEOUT_S = 5
"""How long a PostgreSQL connection may take to open (libpq's connect_timeout) unless the URL says."""


def data_dir() -> Path:
    """Where local data lives: $EGP_PLAYGROUND_DATA, else ./data."""
    return Path(os.environ.get(DATA_DIR_ENV) or "data")


def default_url() -> str:
    """$EGP_PLAYGROUND_DB_URL, else the SQLite file <data dir>/history.db."""
    url = os.environ.get(DB_URL_ENV, "").strip()
    if url:
        return url
    path = data_dir() / "history.db"
    return f"sqlite:///{path.resolve()}"


def _lower(value: object) -> object:
    return value.lower() if isinstance(value, str) else value


NUL_STAND_IN = "\ufffd"
"""What a NUL character of a query's parameter becomes on PostgreSQL, which cannot take one."""


def _nul_free(value: object) -> object:
    """The parameters with every NUL character replaced by NUL_STAND_IN (the same object when there is none).

    Stored text never holds a NUL (the store drops them on writing, as SQLite could keep them but nobody
    can read them), so a looked-up id, token or search word holding one (a link's `%00`) finds nothing,
    as on SQLite, instead of failing the page."""
    if isinstance(value, str):
        return value.replace("\x00", NUL_STAND_IN) if "\x00" in value else value
    if isinstance(value, dict):
        return {k: _nul_free(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_nul_free(v) for v in value)
    return value


def make_engine(url: str) -> Engine:
    """A thread-safe engine with a connection pool.

    PostgreSQL: a connect timeout, no NUL character in a parameter (_nul_free). SQLite: WAL mode, a busy timeout, a Unicode-aware lower(), and write
    transactions that take the write lock at BEGIN (no upgrade deadlocks).
    """
    u = sa.make_url(url)
    if u.drivername in ("postgresql", "postgres"):  # plain URLs as hosting providers give them
        u = u.set(drivername="postgresql+psycopg")
    if u.get_backend_name() != "sqlite":
        # A database that does not answer must fail the page in seconds, not hang it.
        connect_args = {} if "connect_timeout" in u.query else {"connect_timeout": PG_CONNECT_TIMEOUT_S}
        engine = sa.create_engine(u, pool_pre_ping=True, future=True, connect_args=connect_args)

        @event.listens_for(engine, "before_cursor_execute", retval=True)
        def _without_nul(_conn, _cursor, statement, parameters, _context, _executemany):  # noqa: ANN001, ANN202
            return statement, _nul_free(parameters)

        return engine

    memory = u.database in (None, "", ":memory:")
    if not memory:
        Path(u.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    kwargs: dict = {"connect_args": {"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_S}}
    if memory:
        kwargs["poolclass"] = StaticPool
    engine = sa.create_engine(u, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: sqlite3.Connection, _record: object) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (below)
        cur = dbapi_conn.cursor()
        if not memory:
            cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()
        # SQLite's own lower() folds ASCII only; searches must be case-insensitive for all scripts.
        dbapi_conn.create_function("lower", 1, _lower, deterministic=True)

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        immediate = conn.get_execution_options().get("sqlite_immediate", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine
