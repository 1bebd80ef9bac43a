"""Conversations in the sidebar: new chat, search, the list grouped by day with a menu per row
(rename, share, export, delete), export all and import."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import streamlit as st

from egp_core.store.exchange import (
    export_all_json,
    export_conversation_json,
    export_conversation_markdown,
    import_json,
)
from ui import conversation, services, state
from ui.copy_button import copy_button
from ui.import_box import import_box

PAGE = 50
"""Chats listed in the sidebar at first, and added by each "Show more"."""
GROUPS = ("Today", "Yesterday", "Previous 7 days", "Older")
ROW_CHARS = 20  # a title longer than this is cut, so the time after it stays visible on one line
_MARKDOWN = set("\\`*_~[]<>:$|#")  # inline Markdown, and the directives of labels (:icon:, $math$)


def _slug(title: str) -> str:
    keep = "".join(c if c.isalnum() else "-" for c in title.lower()).strip("-")
    return "-".join(p for p in keep.split("-") if p)[:40] or "conversation"


def plain(text: str) -> str:
    """Text shown as written in a label that reads Markdown ("2*3*4" stays "2*3*4")."""
    return "".join("\\" + c if c in _MARKDOWN else c for c in text)


def _zone() -> ZoneInfo:
    try:
        return ZoneInfo(st.context.timezone or "UTC")
    except Exception:  # no browser yet (a test), or a zone this machine does not know
        return ZoneInfo("UTC")


def _local(when: datetime, zone: ZoneInfo) -> datetime:
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).astimezone(zone)


def group_of(when: datetime, today: date) -> str:
    """Today, Yesterday, Previous 7 days or Older, for a local time."""
    days = (today - when.date()).days
    if days <= 0:
        return GROUPS[0]
    if days == 1:
        return GROUPS[1]
    return GROUPS[2] if days <= 7 else GROUPS[3]


def row_label(title: str, when: datetime, today: date) -> str:
    """One line: the title (cut) and when, so two chats with the same title differ."""
    short = title if len(title) <= ROW_CHARS else title[: ROW_CHARS - 1].rstrip() + "…"
    stamp = f"{when:%H:%M}" if (today - when.date()).days <= 1 else f"{when:%d %b}".lstrip("0")
    return f"{plain(short)} · {stamp}"


def share_url(token: str, query: str = "share", page: str = "") -> str:
    """The full address of a share link, from the address this browser uses (port included):
    <root><page>?<query>=<token> (a conversation's by default)."""
    base = (st.context.url or "").split("?")[0].split("#")[0]
    if not base:  # no browser (a test run): the address the server was told to use
        host = st.get_option("browser.serverAddress") or "localhost"
        base = f"http://{host}:{st.get_option('browser.serverPort') or 8501}/"
    root = base[: base.index("/", base.index("//") + 2) + 1] if base.count("/") > 2 else base.rstrip("/") + "/"
    return f"{root}{page}?{query}={token}"


def _delete(conv_id: str) -> None:
    conversation.stop_running(conv_id)
    services.store().delete_conversation(conv_id, services.owner())
    st.session_state[state.CONFIRM_DELETE] = None
    if st.session_state.get(state.CONVERSATION) == conv_id:
        conversation.open_conversation(None)


def _rename(conv_id: str) -> None:
    """The name input changed: save it (the store tidies spaces; an empty title is ignored).

    A callback, not a check in the page: comparing the input with the stored title on every run
    would rename again forever when the two differ only by spaces ("x " is stored as "x")."""
    title = st.session_state.get(f"rename-{conv_id}") or ""
    if title.strip():
        services.store().rename_conversation(conv_id, title, services.owner())


def _show_more() -> None:
    st.session_state[state.HISTORY_SHOWN] += PAGE


def _share(conv_id: str) -> None:
    st.session_state[f"share-token-{conv_id}"] = services.store().create_share(conv_id, services.owner())


def _pick(conv_id: str) -> None:
    conversation.open_conversation(conv_id)
    st.session_state[state.CLOSE_SIDEBAR] = True  # on a phone, the drawer closes on the way to the chat


def row_menu(conv) -> None:
    """What can be done to one conversation, in its row's menu (drawn only while it is open)."""
    store = services.store()
    conv_id = conv.id
    st.text_input("Name", value=conv.title, key=f"rename-{conv_id}", on_change=_rename, args=(conv_id,))
    token = st.session_state.get(f"share-token-{conv_id}")
    if token:
        url = share_url(token)
        st.caption("Anyone with this link can read (not change) this conversation:")
        st.code(url, language=None, wrap_lines=True)
        copy_button(url, "Copy link", key=f"copy-share-{conv_id}")
    else:
        st.button("Share a read-only link", icon=":material/link:", key=f"share-{conv_id}", on_click=_share,
                  args=(conv_id,), width="stretch")
    name = _slug(conv.title)
    st.download_button(
        "Export as Markdown", lambda: export_conversation_markdown(store, conv_id),
        file_name=f"{name}.md", mime="text/markdown", icon=":material/description:", key=f"md-{conv_id}",
        width="stretch",
    )
    st.download_button(
        "Export as JSON", lambda: export_conversation_json(store, conv_id),
        file_name=f"{name}.json", mime="application/json", icon=":material/data_object:", key=f"json-{conv_id}",
        width="stretch",
    )
    if st.session_state.get(state.CONFIRM_DELETE) == conv_id:
        st.warning("Delete this conversation for good?")
        c1, c2 = st.columns(2)
        c1.button("Yes, delete", key=f"del-yes-{conv_id}", on_click=_delete, args=(conv_id,))
        c2.button("Keep it", key=f"del-no-{conv_id}",
                  on_click=lambda: st.session_state.__setitem__(state.CONFIRM_DELETE, None))
    else:
        st.button("Delete", key=f"del-{conv_id}", icon=":material/delete:", width="stretch",
                  on_click=lambda: st.session_state.__setitem__(state.CONFIRM_DELETE, conv_id))


def row_labels(convs: list, now: datetime) -> dict[str, str]:
    """Each row's label; rows that would still read the same (same title, same minute) are numbered."""
    labels: dict[str, str] = {}
    seen: dict[str, int] = {}
    for conv in reversed(convs):  # oldest first: the first keeps the plain label
        label = row_label(conv.title, _local(conv.updated_at, now.tzinfo), now.date())
        seen[label] = seen.get(label, 0) + 1
        labels[conv.id] = label if seen[label] == 1 else f"{label} ({seen[label]})"
    return labels


def _row(conv, label: str, current: str | None) -> None:
    with st.container(horizontal=True, wrap=False, gap="small", vertical_alignment="center",
                      key=f"row-{conv.id}"):
        st.button(
            label, key=f"open-{conv.id}",
            on_click=_pick, args=(conv.id,), type="primary" if conv.id == current else "tertiary",
            width="stretch", wrap=False, help=plain(conv.title),
        )
        menu = st.popover("", icon=":material/more_horiz:", key=f"menu-{conv.id}", on_change="rerun",
                          help=f"Rename, share, export or delete: {plain(conv.title)}", type="tertiary")
        if menu.open:
            with menu:
                row_menu(conv)


def conversation_list(where=None) -> None:
    """New chat, search and the conversations, grouped by day (in `where`, default the sidebar)."""
    box = where or st.sidebar
    box.button("New chat", icon=":material/add:", on_click=_pick, args=(None,), width="stretch", key="new-chat")
    query = box.text_input("Search conversations", key=state.SEARCH, placeholder="Search titles and messages",
                           label_visibility="collapsed", live=True)  # filters as you type
    shown = st.session_state.setdefault(state.HISTORY_SHOWN, PAGE)
    # Chats only, filtered by the query (comparisons have their own list); one more than shown
    # tells whether there is a next page.
    found = services.store().list_conversations(services.owner(), query=query or None, limit=shown + 1,
                                                kind="chat")
    more, found = len(found) > shown, found[:shown]
    if not found:
        box.caption("No conversations match." if query else "Your conversations will appear here.")
        return
    current = st.session_state.get(state.CONVERSATION)
    now = datetime.now(_zone())
    with box.container(height=320 if len(found) > 8 else "content", border=False, key="history-list"):
        shown = None
        labels = row_labels(found, now)
        for conv in found:
            group = group_of(_local(conv.updated_at, now.tzinfo), now.date())
            if group != shown:
                st.caption(group)
                shown = group
            _row(conv, labels[conv.id], current)
        if more:
            st.button("Show more", icon=":material/expand_more:", key="history-more", on_click=_show_more)


def export_import(where=None) -> None:
    """Export every conversation, or import an export."""
    owner = services.owner()
    with (where or st.sidebar).expander("Export all / import", icon=":material/import_export:", key="history-exchange", on_change="rerun"):
        st.download_button(
            "Export all conversations (JSON)",
            lambda: export_all_json(services.store(), owner),
            file_name="egp-playground-conversations.json", mime="application/json",
        )
        import_box("Import a JSON export", "import",
                   lambda data: _imported(import_json(services.store(), data, services.owner())))


def _imported(count: int) -> str:
    return f"Imported {count} conversation{'s' if count != 1 else ''}."


def close_sidebar_on_phone() -> None:
    """After a conversation is picked on a phone, close the sidebar drawer (the chat is behind it)."""
    if st.session_state.pop(state.CLOSE_SIDEBAR, False):
        from ui.browser import close_sidebar_if_narrow

        close_sidebar_if_narrow()
