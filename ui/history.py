"""Conversations in the sidebar: new chat, search, open, rename, delete, export, import, share."""

from __future__ import annotations

import streamlit as st

from egp_core.store.exchange import (
    ImportFailed,
    export_all_json,
    export_conversation_json,
    export_conversation_markdown,
    import_json,
)
from ui import conversation, services, state

PAGE = 50
"""Chats listed in the sidebar at first, and added by each "Show more"."""


def _slug(title: str) -> str:
    keep = "".join(c if c.isalnum() else "-" for c in title.lower()).strip("-")
    return "-".join(p for p in keep.split("-") if p)[:40] or "conversation"


def _delete(conv_id: str) -> None:
    conversation.stop_running(conv_id)
    services.store().delete_conversation(conv_id, services.owner())
    st.session_state[state.CONFIRM_DELETE] = None
    if st.session_state.get(state.CONVERSATION) == conv_id:
        conversation.open_conversation(None)


def _rename(conv_id: str, key: str) -> None:
    """The title input changed: save it (the store tidies spaces; an empty title is ignored).

    A callback, not a check in the page: comparing the input with the stored title on every run
    would rename again forever when the two differ only by spaces ("x " is stored as "x")."""
    title = st.session_state.get(key) or ""
    if title.strip():
        services.store().rename_conversation(conv_id, title, services.owner())


def current_conversation_tools(conv_id: str) -> None:
    store = services.store()
    conv = store.get_conversation(conv_id, owner=services.owner())
    if conv is None:
        return
    with st.sidebar.expander("This conversation", icon=":material/folder_open:"):
        st.text_input("Title", value=conv.title, key=f"title-{conv_id}", on_change=_rename,
                      args=(conv_id, f"title-{conv_id}"))
        name = _slug(conv.title)
        st.download_button(
            "Export as Markdown", lambda: export_conversation_markdown(store, conv_id),
            file_name=f"{name}.md", mime="text/markdown", icon=":material/description:",
        )
        st.download_button(
            "Export as JSON", lambda: export_conversation_json(store, conv_id),
            file_name=f"{name}.json", mime="application/json", icon=":material/data_object:",
        )
        if st.button("Create share link", icon=":material/link:", key=f"share-{conv_id}"):
            token = store.create_share(conv_id, services.owner())
            st.session_state[f"share-token-{conv_id}"] = token
        token = st.session_state.get(f"share-token-{conv_id}")
        if token:
            st.caption("Anyone with this link can read (not change) this conversation:")
            st.code(f"?share={token}", language=None)
            st.caption("Add it after this app's address, e.g. http://localhost:8501/?share=…")
        if st.session_state.get(state.CONFIRM_DELETE) == conv_id:
            st.warning("Delete this conversation for good?")
            c1, c2 = st.columns(2)
            c1.button("Yes, delete", key=f"del-yes-{conv_id}", type="primary", on_click=_delete, args=(conv_id,))
            c2.button(
                "Keep it", key=f"del-no-{conv_id}",
                on_click=lambda: st.session_state.__setitem__(state.CONFIRM_DELETE, None),
            )
        else:
            st.button(
                "Delete conversation", key=f"del-{conv_id}", icon=":material/delete:",
                on_click=lambda: st.session_state.__setitem__(state.CONFIRM_DELETE, conv_id),
            )


def _show_more() -> None:
    st.session_state[state.HISTORY_SHOWN] += PAGE


def conversation_list() -> None:
    sb = st.sidebar
    sb.button("New chat", icon=":material/add:", on_click=conversation.open_conversation, args=(None,), use_container_width=True)
    query = sb.text_input("Search conversations", key=state.SEARCH, placeholder="Search titles and messages")
    shown = st.session_state.setdefault(state.HISTORY_SHOWN, PAGE)
    # Chats only, filtered by the query (comparisons have their own list); one more than shown
    # tells whether there is a next page.
    found = services.store().list_conversations(services.owner(), query=query or None, limit=shown + 1,
                                                kind="chat")
    more, found = len(found) > shown, found[:shown]
    if not found:
        sb.caption("No conversations match." if query else "Your conversations will appear here.")
    current = st.session_state.get(state.CONVERSATION)
    for conv in found:
        sb.button(
            conv.title, key=f"open-{conv.id}", on_click=conversation.open_conversation, args=(conv.id,),
            type="primary" if conv.id == current else "tertiary", use_container_width=True,
        )
    if more:
        sb.button("Show more", icon=":material/expand_more:", key="history-more", on_click=_show_more)
    owner = services.owner()
    with sb.expander("Export all / import", icon=":material/import_export:"):
        st.download_button(
            "Export all conversations (JSON)",
            lambda: export_all_json(services.store(), owner),
            file_name="egp-playground-conversations.json", mime="application/json",
        )
        upload = st.file_uploader("Import a JSON export", type=["json"], key="import-file")
        if upload is not None and st.button("Import", key="import-go"):
            try:
                count = import_json(services.store(), upload.getvalue(), services.owner())
            except ImportFailed as exc:
                st.error(str(exc.user_message if hasattr(exc, "user_message") else exc), icon=":material/warning:")
            else:
                st.success(f"Imported {count} conversation{'s' if count != 1 else ''}.")
