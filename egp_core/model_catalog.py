"""The models a connection offers, read with short timeouts and remembered for a while.

Reading the list must never hold a page for long: one try (no retries), 3 s to
connect and 10 s to read. A list is remembered for a minute and a failure for
15 seconds, so the panes of a page and the runs that follow do not each wait
again. Entries are keyed by the connection's id and address and by a salted hash
of its credentials (key and account; never the key itself), so two people whose
same-named connections hold different keys never share a list.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from egp_core.connections import Connection, explain_failure
from egp_core.errors import EGPError

CONNECT_TIMEOUT = 3.0
READ_TIMEOUT = 10.0
KEEP_LIST_SECONDS = 60.0
KEEP_FAILURE_SECONDS = 15.0

_SALT = secrets.token_bytes(16)  # per process: the hashes mean nothing outside it


def credentials_hash(conn: Connection) -> str:
    """A salted hash of the connection's key and account (never the key itself)."""
    material = "\0".join((conn.api_key or "", conn.account_id or "")).encode()
    return hmac.new(_SALT, material, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class ModelListing:
    """Model names and context lengths; or the error, a sentence saying why (`problem`, from
    connections.explain_failure), and in how many seconds it is asked again (`retry_in`)."""

    names: list[str] = field(default_factory=list)
    contexts: dict[str, int] = field(default_factory=dict)
    error: EGPError | None = None
    problem: str | None = None
    retry_in: float = 0.0


def read_models(conn: Connection, *, connect_timeout: float = CONNECT_TIMEOUT,
                read_timeout: float = READ_TIMEOUT) -> ModelListing:
    """Ask the connection for its models once (no retries); EGPError is raised."""
    client = conn.make_client(connect_timeout=connect_timeout, read_timeout=read_timeout, max_retries=0)
    try:
        info = client.list_model_info()
    finally:
        client.close()
    names: list[str] = []
    contexts: dict[str, int] = {}
    for item in info:
        name = item.get("name") or item.get("model_name") or item.get("id")
        if name and name not in names:
            names.append(name)
            if item.get("context_length"):
                contexts[name] = int(item["context_length"])
    return ModelListing(names, contexts)


@dataclass
class _Entry:
    listing: ModelListing
    until: float


class ModelCatalog:
    """Model lists per connection and credentials, remembered (lists a minute, failures 15 s).

    Thread-safe: one per process serves every session.
    """

    def __init__(self, *, keep_list: float = KEEP_LIST_SECONDS, keep_failure: float = KEEP_FAILURE_SECONDS,
                 read: Callable[[Connection], ModelListing] = read_models,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.keep_list, self.keep_failure = keep_list, keep_failure
        self._read, self._clock = read, clock
        self._entries: dict[tuple[str, str, str], _Entry] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _key(conn: Connection) -> tuple[str, str, str]:
        return (conn.id, conn.base_url, credentials_hash(conn))

    def get(self, conn: Connection) -> ModelListing:
        """The remembered listing, or a fresh one (a failure comes back as `error`, never raised)."""
        key = self._key(conn)
        now = self._clock()
        with self._lock:
            entry = self._entries.get(key)
        if entry is not None and now < entry.until:
            if entry.listing.error is None:
                return entry.listing
            return ModelListing(error=entry.listing.error, problem=entry.listing.problem, retry_in=entry.until - now)
        try:
            listing = self._read(conn)
            keep = self.keep_list
        except EGPError as exc:
            listing = ModelListing(error=exc, problem=explain_failure(conn, exc), retry_in=self.keep_failure)
            keep = self.keep_failure
        now = self._clock()
        with self._lock:
            self._entries = {k: e for k, e in self._entries.items() if now < e.until}  # drop the stale
            self._entries[key] = _Entry(listing, now + keep)
        return listing

    def failing(self, conn: Connection) -> bool:
        """Whether the connection's list failed lately (still remembered); never asks the server."""
        with self._lock:
            entry = self._entries.get(self._key(conn))
        return entry is not None and entry.listing.error is not None and self._clock() < entry.until

    def forget(self, conn: Connection) -> None:
        """Read this connection's list again next time ("Try again")."""
        with self._lock:
            self._entries.pop(self._key(conn), None)
