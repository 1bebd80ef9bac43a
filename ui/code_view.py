"""The "View code" panel: a request as code (the SDK, requests + SSE, curl) for its connection and API.

On the chat page the request is that of the open conversation's last answer,
rebuilt from the store, so it is there after a reload too; and the snippets are
drawn only while the panel is open, since syntax highlighting three blocks costs
the browser a noticeable pause on every run of the page otherwise.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import streamlit as st

from egp_core.chat import saved_request, turns
from egp_core.snippets import all_snippets
from egp_core.types import CompletionRequest
from ui import services

LANGUAGES = {"curl": "bash"}


@dataclass(slots=True)
class Target:
    """Where a request goes (never the key), through which API, and what it is."""

    base_url: str
    request: CompletionRequest
    kind: str = "egp"
    account_id: str | None = None
    api: str | None = None


def panel(find: Callable[[], Target | None], *, key: str, what: str = "The request just sent",
          lazy: bool = True) -> None:
    """The collapsed "View code" panel. `lazy`: `find` is asked for the request, and the snippets
    drawn, only once it is opened (opening it reruns the page)."""
    if lazy:
        expander = st.expander("View code", icon=":material/code:", key=f"{key}-open", on_change="rerun")
    else:
        expander = st.expander("View code", icon=":material/code:")
    with expander:
        if lazy and not expander.open:
            return
        target = find()
        if target is None or not target.base_url:
            st.caption("Send a prompt to see it as code.")
            return
        st.caption(
            f"{what}, ready to run. The API key is read from an environment variable (EGP_API_KEY, or "
            "OPENAI_API_KEY for an OpenAI-compatible server); it never appears here. Use the copy icon on each block."
        )
        stream = st.toggle("Streaming", value=True, key=f"{key}-stream")
        snippets = all_snippets(
            target.base_url, target.request, stream=stream, kind="openai" if target.kind == "openai" else "egp",
            account_id=target.account_id, api=target.api,
        )
        for tab, (name, code) in zip(st.tabs(list(snippets)), snippets.items(), strict=True):
            with tab:
                st.code(code, language=LANGUAGES.get(name, "python"))


def show(
    base_url: str | None, request: CompletionRequest | None, *, kind: str = "egp",
    account_id: str | None = None, key: str = "code", api: str | None = None,
) -> None:
    """A request known now, drawn at once (the compare page's panes)."""
    panel(lambda: Target(base_url, request, kind, account_id, api) if base_url and request else None, key=key,
          lazy=False)


def last_answer(conversation_id: str, fallback_connection=None) -> Target | None:
    """The request of the conversation's last answer, from the store. Its connection is found by the
    name saved with the answer (else `fallback_connection`, the one chosen now)."""
    thread = turns(services.store().messages(conversation_id))
    if not thread or thread[-1].answer is None:
        return None
    request = saved_request(thread, len(thread) - 1)
    if request is None:
        return None
    saved = thread[-1].answer.parameters or {}
    conn = next((c for c in services.connections() if c.name == saved.get("connection")), None) or fallback_connection
    if conn is None:
        return None
    return Target(conn.base_url, request, conn.kind, conn.account_id, saved.get("api"))


def show_for_conversation(conversation_id: str, fallback_connection=None, *, key: str) -> None:
    panel(lambda: last_answer(conversation_id, fallback_connection), key=key,
          what="The request of the last answer")
