"""Settings: connections (test, add after a test, keep for next time, remove) and the price table
used for every cost estimate.

The price table is shared by everyone: in team mode only admins edit it (egp_core.admins);
saving is egp_core.price_table's job.

A key typed here lives in this browser session only (st.session_state), or, in personal mode and
when asked, in a file readable only by its owner (data/connections.toml, 0600), never in the
history database. A key from secrets.toml or the environment is shown masked and is never put
back into the page.
"""

from __future__ import annotations

import streamlit as st

from egp_core.admins import NotAllowed
from egp_core.connections import (
    KINDS,
    Connection,
    forget_saved,
    save_connection,
    test_connection,
    test_new_connection,
)
from egp_core.local.sampling import DEFAULTS as LOCAL_DEFAULTS
from egp_core.price_table import price_rows, save_price_table
from egp_core.pricing import LOCAL_MODEL
from ui import services, state

ADDABLE = {"auto": "Find out from the address", "egp": "EGP workspace",
           "openai": "OpenAI-compatible server (vLLM, Ollama, llama.cpp)"}
SOURCES = {
    "builtin": "built in",
    "secrets": "set up by whoever runs this app",
    "env": "set up by whoever runs this app",
    "session": "added here, kept in this browser session only",
    "saved": "added here, kept on this computer for next time",
}
SETUP_DETAILS = (
    "Connections for everyone come from `.streamlit/secrets.toml` (`[connections.<name>]` sections) or the "
    "environment variables `EGP_ENDPOINT_URL`, `EGP_API_KEY` and `EGP_ACCOUNT_ID` (see the README). "
    "Connections kept for next time are in `data/connections.toml`, readable only by you."
)
PRICE_COLUMNS = ("Model", "Prompt $ / 1K", "Completion $ / 1K")


def _test(conn: Connection) -> None:
    """Run "Test connection" and show the round trip and models found, or the friendly error."""
    with st.spinner("Testing…"):
        result = test_connection(conn)
    if result.ok:
        n = len(result.models)
        st.success(
            f"Connected in {result.seconds * 1000:.0f} ms · {n} model{'s' if n != 1 else ''} found.",
            icon=":material/check_circle:",
        )
        if result.models:
            st.caption("Models: " + ", ".join(result.models[:20]) + (" …" if n > 20 else ""))
        return
    st.error(result.summary, icon=":material/warning:")
    if result.error is not None:
        with st.expander("Technical detail"):
            st.code(f"{result.error.kind}: {result.error.detail}", language=None, wrap_lines=True)


def _remove(conn_id: str) -> None:
    st.session_state[state.SESSION_CONNECTIONS] = [
        c for c in st.session_state[state.SESSION_CONNECTIONS] if c.id != conn_id
    ]
    if conn_id.startswith("saved-"):
        forget_saved(services.saved_connections_file(), conn_id)
    st.session_state[state.SETTINGS_BY_CONNECTION].pop(conn_id, None)


def show_connection(conn: Connection) -> None:
    with st.container(border=True):
        c1, c2 = st.columns([3, 1])
        c1.markdown(f"**{conn.name}**  \n`{conn.base_url}`")
        details = [f"Kind: {KINDS.get(conn.kind, conn.kind)}"]
        if conn.kind != "local" or conn.has_key:
            details.append(f"key: {conn.masked_key() or 'none'}")
        if conn.account_id:
            details.append(f"account: {conn.account_id}")
        details.append(f"from: {SOURCES.get(conn.source, conn.source)}")
        c1.caption(" · ".join(details))
        test = c2.button("Test connection", key=f"test-{conn.id}", icon=":material/network_check:")
        if conn.source in ("session", "saved"):
            c2.button("Remove", key=f"rm-{conn.id}", type="tertiary", on_click=_remove, args=(conn.id,),
                      icon=":material/delete:")
        if conn.kind == "local":
            local_status()
        if test:
            _test(conn)


def local_status() -> None:
    """The built-in model loads in the background: say so, or say why it failed."""
    server = services.local_server()
    if server.error:
        st.error(server.error, icon=":material/warning:")
        if server.error_detail:
            with st.expander("Technical detail"):
                st.code(server.error_detail, language=None, wrap_lines=True)
    elif not server.is_ready():
        st.info("The local model is loading; Test connection works in a few seconds.", icon=":material/hourglass_top:")
    st.caption(f"Settings a request leaves out: {LOCAL_DEFAULTS}.")


ADD_FIELDS = ("add-kind", "add-name", "add-url", "add-key", "add-account")
ADD_KEEP = "add-keep"
ADD_RESULT = "add-connection-result"  # (ok, sentence, technical detail) from the last "Add connection"


def _add() -> None:
    """The form's submit callback: test the connection, and add it only when it works (it runs
    before the page, so the new connection is listed at once)."""
    kind, name, base_url, api_key, account_id = (st.session_state.get(k) for k in ADD_FIELDS)
    taken = {c.id for c in services.connections()}
    try:
        conn, result = test_new_connection(kind, name, base_url, api_key, account_id, taken_ids=taken)
    except ValueError as exc:
        st.session_state[ADD_RESULT] = (False, str(exc), None)
        return
    if not result.ok:
        st.session_state["add-key"] = ""  # typed once, never put back into the page
        detail = f"{result.error.kind}: {result.error.detail}" if result.error is not None else None
        st.session_state[ADD_RESULT] = (False, f"Not added: {result.summary}", detail)
        return
    kept = st.session_state.get(ADD_KEEP) and services.personal_mode()
    if kept:
        conn = save_connection(services.saved_connections_file(), conn)
    else:
        st.session_state[state.SESSION_CONNECTIONS].append(conn)
    for k in ADD_FIELDS[1:]:
        st.session_state[k] = ""
    n = len(result.models)
    where = "kept on this computer for next time" if kept else "kept in this browser session"
    st.session_state[ADD_RESULT] = (
        True, f"Added {conn.name} ({conn.kind_label}, {where}): it answered with {n} model{'s' if n != 1 else ''}. "
        "Pick it in the sidebar of the Chat page.", None)


def add_connection_form() -> None:
    with st.form("add-connection"):
        st.markdown("**Add a connection** (it is tested first)")
        st.radio("Kind", list(ADDABLE), format_func=ADDABLE.get, horizontal=True, key="add-kind")
        st.text_input("Name", placeholder="My workspace", key="add-name")
        st.text_input(
            "Address", placeholder="https://api.<workspace>.workspace.egp.scale.com or http://localhost:8000",
            key="add-url",
        )
        st.text_input(
            "API key", type="password", key="add-key",
            help="Never shown again, never written to the history or the logs.",
        )
        st.text_input("Account id (EGP, optional)", key="add-account")
        if services.personal_mode():
            st.checkbox("Keep it for next time on this computer", key=ADD_KEEP,
                        help="Saved with its key in data/connections.toml, readable only by you (like "
                             ".streamlit/secrets.toml); otherwise it is gone when you close the tab.")
        st.form_submit_button("Test and add", type="primary", on_click=_add)
    result = st.session_state.pop(ADD_RESULT, None)
    if result:
        ok, sentence, detail = result
        if ok:
            st.success(sentence, icon=":material/check_circle:")
        else:
            st.error(sentence, icon=":material/warning:")
            if detail:
                with st.expander("Technical detail"):
                    st.code(detail, language=None, wrap_lines=True)


def table_rows(saved: dict[str, tuple[float, float]]) -> list[dict]:
    """The price table as the data editor shows it."""
    return [dict(zip(PRICE_COLUMNS, row, strict=True)) for row in price_rows(saved)]


PRICES_VERSION = "prices-editor-version"  # bumped after a save: a fresh editor on the saved table
PRICES_RESULT = "prices-result"  # (ok, sentence) from the last "Save prices"


def _editor_key() -> str:
    return f"prices-editor-{st.session_state.get(PRICES_VERSION, 0)}"


def apply_edits(rows: list[dict], edits: dict | None) -> list[dict]:
    """The table after the data editor's edits (its state: edited_rows, added_rows, deleted_rows)."""
    edits = edits or {}
    table = [dict(r) for r in rows]
    for index, change in (edits.get("edited_rows") or {}).items():
        if 0 <= int(index) < len(table):
            table[int(index)].update(change)
    deleted = {int(i) for i in edits.get("deleted_rows") or []}
    table = [r for i, r in enumerate(table) if i not in deleted]
    return table + [dict(r) for r in edits.get("added_rows") or []]


def _save() -> None:
    """The Save button's callback: runs before the page, so the table below shows what was saved."""
    store = services.store()
    table = apply_edits(table_rows(store.get_prices()), st.session_state.get(_editor_key()))
    try:
        problem = save_price_table(store, services.actor(), [tuple(r.get(c) for c in PRICE_COLUMNS) for r in table])
    except NotAllowed as exc:
        problem = exc.user_message
    if problem:
        st.session_state[PRICES_RESULT] = (False, problem)
        return
    st.session_state[PRICES_VERSION] = st.session_state.get(PRICES_VERSION, 0) + 1
    st.session_state[PRICES_RESULT] = (True, "Prices saved. Every cost estimate now uses them.")


def prices_editor() -> None:
    st.subheader("Prices")
    read_only = services.actor().why_read_only()
    st.caption(
        "US dollars per 1,000 tokens. Cost estimates on every page use this table; "
        f"the built-in local model ({LOCAL_MODEL}) is free."
        + ("" if read_only else " Edit a cell or add a row, then save. "
           "Deleting a well-known model's row puts its default price back.")
    )
    rows = table_rows(services.store().get_prices())
    if read_only:
        st.info(read_only, icon=":material/lock:")
        st.dataframe(rows, width="stretch", hide_index=True, key="prices-table")
        return
    st.data_editor(
        rows, num_rows="dynamic", width="stretch", key=_editor_key(),
        hide_index=True,
        column_config={
            PRICE_COLUMNS[0]: st.column_config.TextColumn(required=True),
            PRICE_COLUMNS[1]: st.column_config.NumberColumn(min_value=0.0, format="%.6f"),
            PRICE_COLUMNS[2]: st.column_config.NumberColumn(min_value=0.0, format="%.6f"),
        },
    )
    st.button("Save prices", type="primary", key="save-prices", on_click=_save)
    result = st.session_state.pop(PRICES_RESULT, None)
    if result:
        ok, sentence = result
        (st.success if ok else st.error)(sentence, icon=":material/check_circle:" if ok else ":material/warning:")


def main() -> None:
    state.init()
    st.title("Settings")
    st.subheader("Connections")
    st.caption(
        "Where answers come from. Connections set up by whoever runs this app are always listed; "
        "their keys stay hidden and never leave the server.", help=SETUP_DETAILS,
    )
    for problem in services.connection_problems():
        st.warning(problem, icon=":material/warning:")
    for conn in services.connections():
        show_connection(conn)
    add_connection_form()
    prices_editor()


main()
