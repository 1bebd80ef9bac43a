"""Process-wide services the pages share: the store, the local server, live answers.

Each is created once per app process (st.cache_resource) and shared by every
browser session; each session gets its own clients (keys may differ per session).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import streamlit as st

from egp_core.admins import Actor, admins_from
from egp_core.connections import SAVED_FILE, Connection, connections_from, load_saved
from egp_core.generation import MAX_LIVE, Generation, Registry
from egp_core.local.launcher import LocalServer, ensure_local_server
from egp_core.model_catalog import ModelCatalog
from egp_core.network import is_this_machine
from egp_core.store import Store, open_store
from egp_core.store.engine import data_dir
from egp_core.store.exchange import discard_unfinished_imports
from egp_core.store.prompts import PromptLibrary
from egp_core.types import CompletionRequest
from ui.receipt import started_here

LOCAL_OWNER = "local"
STALE_STREAM_SECONDS = 10.0
"""A message still "streaming" with no save for this long has lost its writer."""
VOTE_POLL_SECONDS = 3.0
"""How often a phone's vote page (views/vote.py) looks for the next round; $EGP_PLAYGROUND_VOTE_POLL_SECONDS overrides it."""


def vote_poll_seconds() -> float:
    """VOTE_POLL_SECONDS, or $EGP_PLAYGROUND_VOTE_POLL_SECONDS when set (seconds, at least 1)."""
    try:
        seconds = float(os.environ.get("EGP_PLAYGROUND_VOTE_POLL_SECONDS") or VOTE_POLL_SECONDS)
    except ValueError:
        return VOTE_POLL_SECONDS
    return max(1.0, seconds) if math.isfinite(seconds) else VOTE_POLL_SECONDS


@st.cache_resource(show_spinner=False)
def store() -> Store:
    s = open_store(os.environ.get("EGP_PLAYGROUND_DB_URL") or _secret("database_url"))
    # Answers cut off by a crash of a previous run of the app.
    s.mark_interrupted(stale_after_seconds=STALE_STREAM_SECONDS)
    discard_unfinished_imports(s)  # and imports cut off by one (invisible until removed)
    return s


@st.cache_resource(show_spinner=False)
def prompts() -> PromptLibrary:
    """The prompt library; prompts deleted long enough ago are purged when the app starts."""
    library = PromptLibrary(store())
    library.purge_deleted()
    return library


@st.cache_resource(show_spinner=False)
def registry() -> Registry:
    """Live answers of this process, at most $EGP_PLAYGROUND_MAX_ANSWERS (default MAX_LIVE) at once."""
    try:
        cap = int(os.environ.get("EGP_PLAYGROUND_MAX_ANSWERS") or MAX_LIVE)
    except ValueError:
        cap = MAX_LIVE
    return Registry(max_live=max(1, cap))


@st.cache_resource(show_spinner=False)
def model_catalog() -> ModelCatalog:
    """Every connection's model list, remembered for every session (keyed by credentials too)."""
    return ModelCatalog()


@st.cache_resource(show_spinner=False)
def local_server() -> LocalServer:
    """The embedded server on the bundled model; starts in the background, returns at once."""
    return ensure_local_server(port=int(os.environ.get("EGP_LOCAL_PORT") or 0))


def _secret(name: str) -> Any:
    try:
        return st.secrets.get(name)
    except Exception:  # no secrets.toml at all
        return None


def _secrets_mapping() -> dict[str, Any]:
    try:
        return st.secrets.to_dict()
    except Exception:
        return {}


def new_answer(settings: Any, request: CompletionRequest, message_id: str, **more: Any) -> Generation:
    """A Generation (not started yet) that answers `request` through the settings' connection,
    saves into message `message_id`, announces rate-limit waits, and closes its client when done.
    `more`: Generation's other arguments (`prefix`, `usage_before` for an answer continued)."""
    started_here(message_id)  # its tokens and cost count in this session's totals
    gen = Generation(None, request, sink=store(), message_id=message_id, **more)
    gen.client = settings.client(on_retry=gen.note_retry)
    gen.on_finish = lambda g: g.client.close()
    return gen


def local_enabled() -> bool:
    """The built-in model runs unless a workspace is configured (or it is switched off)."""
    flag = os.environ.get("EGP_PLAYGROUND_LOCAL", "").lower()
    if flag in ("0", "false", "no", "off"):
        return False
    return flag in ("1", "true", "yes", "on") or not os.environ.get("EGP_ENDPOINT_URL")


def personal_mode() -> bool:
    """One person on their own computer: no sign-in configured ([auth] in secrets.toml)."""
    return _secret("auth") is None


def open_to_network() -> bool:
    """Personal mode serves other computers only when told: `[playground] open_to_network = true` in
    secrets.toml or $EGP_PLAYGROUND_OPEN_TO_NETWORK=1 (a container or port forward whose visitors
    come from another address)."""
    flag = os.environ.get("EGP_PLAYGROUND_OPEN_TO_NETWORK", "").strip().lower()
    if flag:
        return flag in {"1", "true", "yes", "on"}
    return bool((_secret("playground") or {}).get("open_to_network", False))


def from_another_machine() -> bool:
    """A visitor, in personal mode, from another computer: they get the voting and share links only."""
    address = st.context.ip_address  # a str, or None for loopback; neither in AppTest (no connection)
    if address is not None and not isinstance(address, str):
        return False
    return personal_mode() and not open_to_network() and not is_this_machine(address)


def vote_needs_sign_in() -> bool:
    """Team mode can keep audience voting to signed-in people: `[playground] vote_requires_sign_in = true`
    (then each person votes once, from whichever browser)."""
    playground = _secret("playground") or {}
    return not personal_mode() and bool(playground.get("vote_requires_sign_in", False))


def saved_connections_file() -> Path:
    """Connections kept for next time in personal mode: in the (git-ignored) data folder, 0600."""
    return data_dir() / SAVED_FILE


def connections() -> list[Connection]:
    """Every connection this session can use: local, secrets, environment, kept for next time
    (personal mode), added in the page."""
    from ui import state

    local_url = local_server().base_url if local_enabled() else None
    found = connections_from(os.environ, _secrets_mapping(), local_url)
    kept = load_saved(saved_connections_file()) if personal_mode() else []
    return found + kept + list(st.session_state.get(state.SESSION_CONNECTIONS, []))


def connection_problems() -> list[str]:
    """Sentences about connections in secrets.toml (or the kept ones) that could not be used."""
    problems: list[str] = []
    connections_from(os.environ, _secrets_mapping(), None, problems=problems)
    if personal_mode():
        load_saved(saved_connections_file(), problems)
    return problems


def actor() -> Actor:
    """Who is acting in this session, for the checks on shared settings."""
    return Actor(owner(), not personal_mode(), admins_from(_secrets_mapping()))


def owner() -> str:
    """Whose conversations these are: the signed-in user in team mode, else the local owner."""
    try:
        if st.user.is_logged_in:
            return str(st.user.get("email") or st.user.get("sub"))
    except Exception:
        pass
    return LOCAL_OWNER
