"""Where answers come from: the built-in local model, EGP workspaces, OpenAI-compatible servers.

Connections are read from the environment (`EGP_*`, `SGP_*`, `OPENAI_*`),
from Streamlit's secrets (`[connections.<name>]` sections, or top-level
`EGP_*` keys), or added in the page (`new_connection`). An API key is kept
on the object only: it is left out of `repr()` and `to_dict()`, and shown
masked (`masked_key()`, the last 4 characters).
"""

from __future__ import annotations

import json
import os
import re
import time
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from egp_core import errors

Kind = Literal["local", "egp", "openai"]
Source = Literal["builtin", "secrets", "env", "session", "saved"]

KINDS: dict[str, str] = {"local": "Local model", "egp": "EGP workspace", "openai": "OpenAI-compatible server"}
DEFAULT_EGP_URL = "https://api.egp.scale.com"
DEFAULT_OPENAI_URL = "https://api.openai.com"
_KIND_ALIASES = {
    "local": "local", "builtin": "local",
    "egp": "egp", "workspace": "egp", "sgp": "egp", "scale": "egp",
    "openai": "openai", "openai-compatible": "openai", "openai_compatible": "openai", "vllm": "openai",
    "ollama": "openai", "llama.cpp": "openai", "llamacpp": "openai",
}
MASK = "••••"

APIS: dict[str, str] = {
    "v5-chat": "Chat completions, SGP v5 (/v5/chat/completions): messages, candidates, seed, probabilities, JSON",
    "v5-completions": "Completions, SGP v5 (/v5/completions): a transcript prompt, candidates, seed, probabilities",
    "chat": "Chat completions (/v4/chat-completions): the chat as messages",
    "completions": "Completions (/v2/completions): the chat as a transcript prompt",
}
"""The APIs an EGP workspace (or the local model) may speak, by id."""
OPENAI_APIS: dict[str, str] = {
    "chat": "Chat completions (/v1/chat/completions): messages",
    "completions": "Completions (/v1/completions): a transcript prompt",
}
"""The APIs of an OpenAI-compatible server."""
API_WORDS: dict[str, str] = {
    "v5-chat": "Newest API, as a conversation",
    "v5-completions": "Newest API, as one text",
    "chat": "As a conversation",
    "completions": "As one text",
}
"""The APIs in plain words (the technical names, APIS and OPENAI_APIS, are one click away)."""


@dataclass
class Connection:
    """One place to send requests. `api_key` is never shown or serialised."""

    id: str
    name: str
    kind: Kind
    base_url: str
    account_id: str | None = None
    api_key: str | None = field(default=None, repr=False)
    source: Source = "session"
    declared: dict[str, Any] | None = None
    """What the connection says it supports, overriding what its API suggests (see capabilities)."""

    @property
    def kind_label(self) -> str:
        return KINDS.get(self.kind, self.kind)

    @property
    def has_key(self) -> bool:
        return bool(self.api_key)

    def masked_key(self) -> str:
        """"••••abcd" (the last 4 characters), "••••" for a short key, "" without one."""
        if not self.api_key:
            return ""
        return MASK + (self.api_key[-4:] if len(self.api_key) >= 12 else "")

    def to_dict(self) -> dict[str, Any]:
        """A secret-free description (for session state, settings and logs)."""
        return {"id": self.id, "name": self.name, "kind": self.kind, "base_url": self.base_url,
                "account_id": self.account_id, "source": self.source, "has_key": self.has_key,
                "masked_key": self.masked_key(), "declared": self.declared}

    @property
    def apis(self) -> dict[str, str]:
        """The APIs this connection can be asked to speak: {id: description}."""
        return OPENAI_APIS if self.kind == "openai" else APIS

    def make_client(self, api: str | None = None, **kw: Any):
        """A client for this connection speaking `api` (one of `apis`; default: v2 completions for a
        workspace, chat for an OpenAI-compatible server); `kw` go to it."""
        from egp_core.openai_compat import OpenAIClient, sgp_v5_client

        if self.kind == "openai":
            return OpenAIClient(self.base_url, self.api_key, api="completions" if api == "completions" else "chat", **kw)
        if api in ("v5-chat", "v5-completions"):
            return sgp_v5_client(self.base_url, self.api_key, self.account_id, api=api[3:], **kw)
        from egp_core.client import EGPClient

        if self.account_id:
            kw.setdefault("account_id", self.account_id)
        return EGPClient(self.base_url, self.api_key, api=api or "completions", **kw)


def message_form(api: str) -> str:
    """How a conversation goes to `api`: "chat" (messages) or "completions" (a transcript prompt)."""
    return "completions" if api.endswith("completions") and "chat" not in api else "chat"


def probe_api(conn: Connection, *, timeout: float = 5) -> str:
    """The API a connection should speak by default: for a workspace (or the local model), SGP v5
    chat completions when it answers GET /v5/models, else (it says no: 404, 401, ...) the older v2
    completions. Raises the error when the question got no answer (unreachable, timed out, 5xx), so
    a caller that remembers the result does not remember that."""
    if conn.kind == "openai":
        return "chat"
    client = conn.make_client("v5-chat", connect_timeout=timeout, read_timeout=timeout, max_retries=0)
    try:
        client.get_json("/v5/models")
        return "v5-chat"
    except (errors.ConnectionFailed, errors.TimeoutError, errors.ServerError):
        raise
    except errors.EGPError:
        return "completions"
    finally:
        client.close()


def normalise_kind(kind: str | None) -> Kind | None:
    return _KIND_ALIASES.get(str(kind or "").strip().lower())  # type: ignore[return-value]


def check_base_url(url: str | None) -> str | None:
    """None when `url` is a usable http(s) address, else a sentence saying what is wrong."""
    if not url or not url.strip():
        return "Enter the server address, for example http://localhost:8000."
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "The address must start with http:// or https:// and name a server, for example http://localhost:8000."
    if parts.username or parts.password:
        return "Put the API key in its own field, not in the address."
    return None


def kind_from_url(url: str | None) -> Kind | None:
    """The kind an address shows: an egp.scale.com (or sgp.scale.com) host is an EGP workspace; an
    address ending in /v1, or a well-known OpenAI-compatible host or port, is an OpenAI-compatible
    server. None when the address does not say."""
    if check_base_url(url):
        return None
    parts = urlsplit(str(url).strip())
    host = (parts.hostname or "").lower()
    if host.endswith((".egp.scale.com", ".sgp.scale.com")) or host in ("egp.scale.com", "api.egp.scale.com"):
        return "egp"
    if (host.endswith("openai.com") or parts.path.rstrip("/").endswith("/v1")
            or parts.port == 11434):  # OpenAI itself, Ollama's default port
        return "openai"
    return None


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "connection"


def _clean(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def new_connection(kind: str, name: str, base_url: str, api_key: str | None = None,
                   account_id: str | None = None, *, taken_ids: set[str] | frozenset[str] = frozenset()) -> Connection:
    """A connection added in the page (its key lives in this browser session only).
    Raises ValueError with a sentence for the person when a field is wrong."""
    k = normalise_kind(kind) or kind_from_url(base_url)
    if k not in ("egp", "openai"):
        raise ValueError("Choose an EGP workspace or an OpenAI-compatible server.")
    problem = check_base_url(base_url)
    if problem:
        raise ValueError(problem)
    label = _clean(name) or KINDS[k]
    base = f"session-{_slug(label)}"
    cid, n = base, 2
    while cid in taken_ids:
        cid, n = f"{base}-{n}", n + 1
    return Connection(id=cid, name=label, kind=k, base_url=base_url.strip().rstrip("/"), account_id=_clean(account_id),
                      api_key=_clean(api_key), source="session")


def _env_connections(env: Mapping[str, Any], source: Source) -> list[Connection]:
    found = []
    key = _clean(env.get("EGP_API_KEY")) or _clean(env.get("SGP_API_KEY"))
    url = _clean(env.get("EGP_ENDPOINT_URL")) or _clean(env.get("SGP_CLIENT_BASE_URL"))
    account = _clean(env.get("EGP_ACCOUNT_ID")) or _clean(env.get("SGP_ACCOUNT_ID"))
    if key or url:
        found.append(Connection(id=f"{source}-egp", name="EGP workspace", kind="egp",
                                base_url=(url or DEFAULT_EGP_URL).rstrip("/"), account_id=account, api_key=key,
                                source=source))
    okey, ourl = _clean(env.get("OPENAI_API_KEY")), _clean(env.get("OPENAI_BASE_URL"))
    if okey or ourl:
        found.append(Connection(id=f"{source}-openai", name="OpenAI-compatible server", kind="openai",
                                base_url=(ourl or DEFAULT_OPENAI_URL).rstrip("/"), api_key=okey, source=source))
    return found


def _secret_sections(secrets: Mapping[str, Any], problems: list[str]) -> list[Connection]:
    found = []
    sections = secrets.get("connections") or {}
    if not isinstance(sections, Mapping):
        problems.append("In secrets.toml, [connections] must hold sections like [connections.my_server].")
        return found
    for key, section in sections.items():
        if not isinstance(section, Mapping):
            problems.append(f"In secrets.toml, connections.{key} must be a section with kind and base_url.")
            continue
        kind = normalise_kind(section.get("kind") or ("egp" if section.get("account_id") else None))
        if kind not in ("egp", "openai"):
            problems.append(f"In secrets.toml, connections.{key} needs kind = \"egp\" or \"openai\".")
            continue
        url = _clean(section.get("base_url") or section.get("endpoint_url") or section.get("url"))
        if url is None and kind == "egp":
            url = DEFAULT_EGP_URL
        problem = check_base_url(url)
        if problem:
            problems.append(f"In secrets.toml, connections.{key}: {problem}")
            continue
        found.append(Connection(id=f"secrets-{_slug(str(key))}", name=_clean(section.get("name")) or str(key),
                                kind=kind, base_url=url.rstrip("/"), account_id=_clean(section.get("account_id")),
                                api_key=_clean(section.get("api_key")), source="secrets",
                                declared=_declared(section.get("capabilities"))))
    return found


def _declared(table: Any) -> dict[str, Any] | None:
    """A `capabilities = {logprobs = false, ...}` table from secrets.toml, as a plain dict."""
    return {str(k): v for k, v in table.items()} if isinstance(table, Mapping) else None


def connections_from(
    env: Mapping[str, Any],
    secrets: Mapping[str, Any] | None,
    local_base_url: str | None,
    *,
    problems: list[str] | None = None,
) -> list[Connection]:
    """Every configured connection: the local model first (when running), then secrets, then the environment.

    The local model uses $EGP_LOCAL_API_KEY when the local server was told to require one.
    Duplicates (same kind, address, account and key) are listed once. Sections
    that cannot be used are skipped, with a sentence appended to `problems`.
    """
    problems = problems if problems is not None else []
    result: list[Connection] = []
    if local_base_url:
        result.append(Connection(id="local", name="Local model (offline)", kind="local", base_url=local_base_url.rstrip("/"),
                                 api_key=_clean(env.get("EGP_LOCAL_API_KEY")), source="builtin"))
    if secrets:
        result += _secret_sections(secrets, problems)
        result += _env_connections(secrets, "secrets")
    result += _env_connections(env, "env")
    unique: list[Connection] = []
    seen: set[tuple] = set()
    ids: set[str] = set()
    for conn in result:
        identity = (conn.kind, conn.base_url, conn.account_id, conn.api_key)
        if identity in seen:
            continue
        seen.add(identity)
        base, n = conn.id, 2
        while conn.id in ids:
            conn.id, n = f"{base}-{n}", n + 1
        ids.add(conn.id)
        unique.append(conn)
    return unique


REASONS: dict[str, str] = {
    "dns": "The name {host} does not exist (it does not resolve). Check the spelling of the address.",
    "refused": "{host} refused the connection on port {port}: no server is listening there. "
               "Check the port, and that the server is running.",
    "tls": "The secure connection (TLS) to {host} failed: its certificate was not accepted, or it does "
           "not speak https on port {port}. Check http:// versus https:// and the certificate.",
    "key": "The server was reached but rejected the API key. Check the key (and the account id).",
    "timeout": "{host} did not answer in time. Check the address and your network.",
    "not_found": "{host} answered, but not as this kind of server. Check the address and the kind.",
}
"""Why a connection failed, in words: filled with the address's host and port."""


def failure_reason(error: errors.EGPError | None) -> str | None:
    """Which failure this is: "dns", "refused", "tls", "key", "timeout", "not_found", or None."""
    if error is None:
        return None
    if isinstance(error, errors.AuthenticationError):
        return "key"
    if isinstance(error, errors.NotFoundError | errors.ProtocolError):
        return "not_found"
    if isinstance(error, errors.TimeoutError):
        return "timeout"
    detail = error.detail.lower()
    if "ssl" in detail or "certificate" in detail or "tls" in detail:
        return "tls"
    if any(s in detail for s in ("nameresolution", "failed to resolve", "name or service not known",
                                 "nodename nor servname", "getaddrinfo", "temporary failure in name resolution")):
        return "dns"
    if "refused" in detail or "errno 111" in detail:
        return "refused"
    return None


def explain_failure(conn: Connection, error: errors.EGPError | None) -> str:
    """One sentence saying why `conn` could not be used."""
    reason = failure_reason(error)
    if reason is None:
        return error.user_message if error is not None else "The connection failed."
    parts = urlsplit(conn.base_url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return REASONS[reason].format(host=parts.hostname or conn.base_url, port=port)


@dataclass
class ConnectionTest:
    """The result of "Test connection": round trip, models found, or the error and why."""

    ok: bool
    seconds: float
    models: list[str] = field(default_factory=list)
    error: errors.EGPError | None = None
    reason: str | None = None  # failure_reason(error)
    explanation: str = ""  # explain_failure(...)

    @property
    def summary(self) -> str:
        if self.ok:
            n = len(self.models)
            return f"Connected in {self.seconds:.2f} s: {n} model{'s' if n != 1 else ''} found."
        return self.explanation or (self.error.user_message if self.error else "The connection failed.")


def _failed(conn: Connection, started: float, error: errors.EGPError) -> ConnectionTest:
    return ConnectionTest(ok=False, seconds=time.monotonic() - started, error=error, reason=failure_reason(error),
                          explanation=explain_failure(conn, error))


def test_connection(conn: Connection, *, connect_timeout: float = 5, read_timeout: float = 20) -> ConnectionTest:
    """List the models once (no retries) and time it."""
    started = time.monotonic()
    client = None
    try:
        client = conn.make_client(connect_timeout=connect_timeout, read_timeout=read_timeout, max_retries=0)
        models = list(client.list_models())
        return ConnectionTest(ok=True, seconds=time.monotonic() - started, models=models)
    except errors.EGPError as exc:
        return _failed(conn, started, exc)
    except Exception as exc:  # a bug or an odd answer must still come back as a result
        return _failed(conn, started, errors.EGPError(detail=errors.scrub(f"{type(exc).__name__}: {exc}", conn.api_key)))
    finally:
        if client is not None:
            try:
                client.close()
            except Exception:
                pass


test_connection.__test__ = False  # not a pytest test, despite its name


def test_new_connection(kind: str | None, name: str, base_url: str, api_key: str | None = None,
                        account_id: str | None = None, *, taken_ids: set[str] | frozenset[str] = frozenset(),
                        **timeouts: float) -> tuple[Connection, ConnectionTest]:
    """Build a connection from the form and test it before it is added. `kind` None or "auto": the
    address decides, else it is tried as an EGP workspace, then as an OpenAI-compatible server.
    Raises ValueError (a sentence) when a field is wrong."""
    wanted = normalise_kind(kind) or kind_from_url(base_url)
    tries = [wanted] if wanted else ["egp", "openai"]
    result: tuple[Connection, ConnectionTest] | None = None
    for k in tries:
        conn = new_connection(k, name or "", base_url, api_key, account_id, taken_ids=taken_ids)
        if not _clean(name):  # a name that says where it points
            conn.name = f"{KINDS[conn.kind]} at {urlsplit(conn.base_url).hostname}"
        outcome = test_connection(conn, **timeouts)
        settled = (outcome.ok and outcome.models) or (not outcome.ok and outcome.reason not in ("not_found", None))
        if settled or result is None or (outcome.ok and not result[1].ok):
            result = (conn, outcome)
        if settled:
            break  # models found, or it failed before the kind mattered (name, port, TLS, key)
    assert result is not None
    return result


test_new_connection.__test__ = False


# ----- connections kept for next time (personal mode) ---------------------------------------------

SAVED_FILE = "connections.toml"
"""In the data folder (git-ignored), readable and writable by its owner only (0600)."""


def _toml_string(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)  # a TOML basic string is a JSON string


def load_saved(path: Path, problems: list[str] | None = None) -> list[Connection]:
    """Connections kept for next time, in the format of secrets.toml's [connections.*] sections."""
    problems = problems if problems is not None else []
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        return []
    except (OSError, tomllib.TOMLDecodeError) as exc:
        problems.append(f"The saved connections file {path} could not be read ({type(exc).__name__}); "
                        "fix or delete it.")
        return []
    found = _secret_sections(data, problems)
    for conn in found:
        conn.id = "saved-" + conn.id.removeprefix("secrets-")
        conn.source = "saved"
    return found


def _write_saved(path: Path, conns: list[Connection]) -> None:
    lines = ["# Connections kept for next time by EGP Playground (personal mode). Readable only by you.", ""]
    for conn in conns:
        lines.append(f"[connections.{_toml_string(conn.id.removeprefix('saved-'))}]")
        values = {"name": conn.name, "kind": conn.kind, "base_url": conn.base_url,
                  "api_key": conn.api_key, "account_id": conn.account_id}
        lines += [f"{k} = {_toml_string(v)}" for k, v in values.items() if v]
        lines.append("")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        os.fchmod(f.fileno(), 0o600)
        f.write("\n".join(lines))
    os.replace(tmp, path)


def save_connection(path: Path, conn: Connection) -> Connection:
    """Keep `conn` (with its key) in the file for next time; returns the saved connection."""
    kept = [c for c in load_saved(path) if c.id != "saved-" + _slug(conn.name)]
    saved = Connection(id="saved-" + _slug(conn.name), name=conn.name, kind=conn.kind, base_url=conn.base_url,
                       account_id=conn.account_id, api_key=conn.api_key, source="saved")
    _write_saved(path, [*kept, saved])
    return saved


def forget_saved(path: Path, connection_id: str) -> None:
    """Remove a kept connection from the file (the file goes when it is empty)."""
    kept = [c for c in load_saved(path) if c.id != connection_id]
    if kept:
        _write_saved(path, kept)
    else:
        path.unlink(missing_ok=True)
