"""The top of the chat: the open conversation's title (also in the browser tab) and the active
system prompt."""

from __future__ import annotations

import streamlit as st

from ui import services, state
from ui.history import plain

APP_NAME = "EGP Playground"
PROMPT_CHARS = 60


def tab_title(title: str | None) -> str:
    return f"{title} · {APP_NAME}" if title else APP_NAME


def show(conv_id: str | None) -> None:
    """The title (of the conversation, or the app's for a new chat) and the system prompt in use."""
    conv = services.store().get_conversation(conv_id, owner=services.owner()) if conv_id else None
    st.set_page_config(page_title=tab_title(conv.title if conv else None))
    if conv is not None:
        st.subheader(plain(conv.title), anchor=False)
    system_prompt(st.session_state.get(state.SYSTEM_PROMPT) or "")


def system_prompt(text: str) -> None:
    """The system prompt every answer here follows, shown at the top (the whole of it one click away)."""
    text = text.strip()
    if not text:
        return
    line = " ".join(text.split())
    short = line if len(line) <= PROMPT_CHARS else line[: PROMPT_CHARS - 1].rstrip() + "…"
    with st.expander(f"System prompt: {plain(short)}", icon=":material/tune:"):
        st.text(text)
        st.caption("Change it in the sidebar; the next answers follow the new one.")
