"""Settings: connections (test, add) and the price table used for every cost estimate."""

from __future__ import annotations

import uuid

import streamlit as st

from egp_core.connections import Connection, test_connection
from egp_core.pricing import DEFAULT_PRICES
from ui import services, state

KINDS = {"egp": "EGP workspace", "openai": "OpenAI-compatible server (vLLM, Ollama, llama.cpp)"}


def show_connection(conn: Connection) -> None:
    with st.container(border=True):
        c1, c2 = st.columns([3, 1])
        c1.markdown(f"**{conn.name}**  \n{conn.base_url}")
        key_text = conn.masked_key() if conn.api_key else "no key"
        c1.caption(f"Kind: {KINDS.get(conn.kind, 'Built-in local model')} · key: {key_text} · from: {conn.source}")
        if c2.button("Test connection", key=f"test-{conn.id}", icon="🔌"):
            with st.spinner("Testing…"):
                result = test_connection(conn)
            if result.ok:
                st.success(f"Connected in {result.seconds * 1000:.0f} ms · {len(result.models)} models found.")
            else:
                st.error(result.error.user_message if result.error else "The connection failed.", icon="⚠️")
                if result.error is not None:
                    with st.expander("Technical detail"):
                        st.code(result.error.detail, language=None, wrap_lines=True)
        if conn.source == "session" and c2.button("Remove", key=f"rm-{conn.id}", type="tertiary"):
            st.session_state[state.SESSION_CONNECTIONS] = [
                c for c in st.session_state[state.SESSION_CONNECTIONS] if c.id != conn.id
            ]
            st.rerun()


def add_connection_form() -> None:
    with st.form("add-connection", clear_on_submit=True):
        st.markdown("**Add a connection** (kept in this browser session only)")
        kind = st.radio("Kind", list(KINDS), format_func=KINDS.get, horizontal=True)
        name = st.text_input("Name", placeholder="My workspace")
        base_url = st.text_input(
            "Endpoint URL", placeholder="https://api.<workspace>.workspace.egp.scale.com or http://localhost:8000"
        )
        api_key = st.text_input("API key", type="password", help="Stays in this browser session; never saved.")
        account_id = st.text_input("Account id (EGP, optional)")
        if st.form_submit_button("Add connection", type="primary"):
            if not base_url.strip().startswith(("http://", "https://")):
                st.error("The endpoint URL must start with http:// or https://.", icon="⚠️")
                return
            conn = Connection(
                id="session-" + uuid.uuid4().hex[:8], name=name.strip() or base_url.strip(), kind=kind,
                base_url=base_url.strip().rstrip("/"), account_id=account_id.strip() or None,
                api_key=api_key.strip() or None, source="session",
            )
            st.session_state[state.SESSION_CONNECTIONS].append(conn)
            st.success(f"Added {conn.name}. Pick it in the sidebar of the Chat page.")


def prices_editor() -> None:
    st.subheader("Prices")
    st.caption(
        "US dollars per 1,000 tokens. Cost estimates on every page use this table; "
        "the built-in local model is free. Edit a row or add one, then save."
    )
    store = services.store()
    saved = store.get_prices()
    rows = {m: (p.prompt_per_1k, p.completion_per_1k) for m, p in DEFAULT_PRICES.items()}
    rows.update(saved)
    table = [{"Model": m, "Prompt $ / 1K": p, "Completion $ / 1K": c} for m, (p, c) in sorted(rows.items())]
    edited = st.data_editor(table, num_rows="dynamic", use_container_width=True, key="prices-editor", hide_index=True)
    if st.button("Save prices", type="primary"):
        kept = set()
        for row in edited:
            model = (row.get("Model") or "").strip()
            if not model:
                continue
            try:
                prompt = float(row.get("Prompt $ / 1K") or 0)
                completion = float(row.get("Completion $ / 1K") or 0)
            except (TypeError, ValueError):
                st.error(f"The prices for {model} must be numbers.", icon="⚠️")
                return
            if prompt < 0 or completion < 0:
                st.error(f"The prices for {model} cannot be negative.", icon="⚠️")
                return
            kept.add(model)
            default = DEFAULT_PRICES.get(model)
            if default is None or (default.prompt_per_1k, default.completion_per_1k) != (prompt, completion):
                store.set_price(model, prompt, completion)
            elif model in saved:
                store.delete_price(model)
        for model in saved:
            if model not in kept:
                store.delete_price(model)
        st.success("Prices saved.")


def main() -> None:
    state.init()
    st.title("Settings")
    st.subheader("Connections")
    for conn in services.connections():
        show_connection(conn)
    add_connection_form()
    prices_editor()


main()
