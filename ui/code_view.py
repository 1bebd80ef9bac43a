"""The "View code" panel: the request as the scale-egp SDK, requests + SSE, and curl."""

from __future__ import annotations

import streamlit as st

from egp_core.snippets import all_snippets
from egp_core.types import CompletionRequest
from ui import state

LANGUAGES = {"curl": "bash"}


def show(
    base_url: str | None, request: CompletionRequest | None, *, kind: str = "egp",
    account_id: str | None = None, key: str = "code", api: str | None = None,
) -> None:
    with st.expander("View code", icon=":material/code:"):
        if request is None or not base_url:
            st.caption("Send a prompt to see it as code.")
            return
        st.caption(
            "The request just sent, ready to run. The API key is read from an environment "
            "variable (EGP_API_KEY, or OPENAI_API_KEY for an OpenAI-compatible server); it never "
            "appears here. Use the copy icon on each block."
        )
        stream = st.toggle("Streaming", value=True, key=f"{key}-stream")
        snippets = all_snippets(
            base_url, request, stream=stream, kind="openai" if kind == "openai" else "egp", account_id=account_id,
            api=api,
        )
        for tab, (name, code) in zip(st.tabs(list(snippets)), snippets.items(), strict=True):
            with tab:
                st.code(code, language=LANGUAGES.get(name, "python"))


def remember(connection, request: CompletionRequest, api: str | None = None) -> None:
    """Keep the request just sent (where to, through which API, and what), for "View code". No key is kept."""
    st.session_state[state.LAST_REQUEST] = (connection.base_url, connection.kind, connection.account_id, request, api)


def show_last(key: str) -> None:
    last = st.session_state.get(state.LAST_REQUEST)
    if last:
        base_url, kind, account_id, request, api = (*last, None)[:5]
        show(base_url, request, kind=kind, account_id=account_id, key=key, api=api)
    else:
        show(None, None, key=key)
