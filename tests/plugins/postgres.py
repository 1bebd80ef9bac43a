"""Fixture: a throwaway PostgreSQL server (Debian's postgresql package).

- `postgres_url` (session): a cluster started with Debian's initdb/pg_ctl in a temp
  dir, on a free port of 127.0.0.1, trust auth; the URL of its `postgres` database
  (`postgresql+psycopg://postgres@127.0.0.1:<port>/postgres`). Stopped and removed
  at the end of the session.
- `postgres_database` (function): a fresh, empty schema on that server, made the
  default through the URL; to the app it is an empty database.
- `db_url` (function, parametrized): a fresh SQLite file, then a fresh PostgreSQL one.
- `store` (function): an open Store on `db_url`.

When we are root the server runs as the `postgres` user (initdb refuses root).
Missing binaries make the fixture FAIL, never skip: install `postgresql`
(`bash scripts/setup.sh --dev` does).
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator

import pytest


def _pg_bin_dir() -> str:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if not found:
        pytest.fail(
            "PostgreSQL server binaries not found (/usr/lib/postgresql/*/bin/initdb). "
            "Install Debian's postgresql package: `bash scripts/setup.sh --dev` "
            "or `apt-get install postgresql`.",
            pytrace=False,
        )
    return os.path.dirname(found[-1])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Cluster:
    def __init__(self) -> None:
        self.bin = _pg_bin_dir()
        self.as_root = os.geteuid() == 0
        self.root = tempfile.mkdtemp(prefix="egp-pg-")
        self.data = os.path.join(self.root, "data")
        self.log = os.path.join(self.root, "server.log")
        if self.as_root:
            import pwd

            try:
                pw = pwd.getpwnam("postgres")
            except KeyError:
                pytest.fail("We run as root but there is no `postgres` user to run the server as.", pytrace=False)
            os.chown(self.root, pw.pw_uid, pw.pw_gid)
        self.port = 0

    def _run(self, *args: str) -> subprocess.CompletedProcess:
        cmd = [os.path.join(self.bin, args[0]), *args[1:]]
        if self.as_root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, cwd=self.root, capture_output=True, text=True, timeout=120)

    def _check(self, proc: subprocess.CompletedProcess, what: str) -> None:
        if proc.returncode != 0:
            log = ""
            if os.path.exists(self.log):
                with open(self.log, errors="replace") as f:
                    log = f.read()[-2000:]
            pytest.fail(f"PostgreSQL {what} failed:\n{proc.stdout}\n{proc.stderr}\n{log}", pytrace=False)

    def start(self) -> None:
        self._check(
            self._run("initdb", "-D", self.data, "-A", "trust", "-U", "postgres", "-E", "UTF8",
                      "--locale=C.UTF-8", "--no-sync"),
            "initdb",
        )
        for attempt in range(3):
            self.port = _free_port()
            opts = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
                    "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
            proc = self._run("pg_ctl", "-D", self.data, "-l", self.log, "-w", "-t", "60", "-o", opts, "start")
            if proc.returncode == 0:
                return
            if attempt == 2:
                self._check(proc, "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """URL of the `postgres` database of a throwaway server, for the whole session."""
    cluster = _Cluster()
    try:
        cluster.start()
        yield cluster.url
    finally:
        cluster.stop()


@pytest.fixture
def postgres_database(postgres_url: str) -> str:
    """URL of a fresh, empty place on the session's server.

    A new schema made the default through the URL (`options=-csearch_path=<schema>`):
    to the app it is an empty database, and it is made in a millisecond.
    """
    import psycopg

    name = "t_" + uuid.uuid4().hex[:16]
    conninfo = postgres_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{name}"')
    return f"{postgres_url}?options=-csearch_path%3D{name}"


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path) -> str:
    """A fresh, empty database on each backend: a SQLite file in tmp_path, then PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'history.db'}"
    return request.getfixturevalue("postgres_database")


@pytest.fixture
def store(db_url: str):
    """An open Store on `db_url` (so: once on SQLite, once on PostgreSQL), closed afterwards."""
    from egp_core.store import open_store

    opened = open_store(db_url)
    yield opened
    opened.close()
