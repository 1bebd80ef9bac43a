"""A shared conversation, read-only (?share=<token>): the only page a signed-out visitor can reach
with a share link."""

from __future__ import annotations

import streamlit as st

from ui import header, history, messages, services, state


def main() -> None:
    state.init()
    token = (st.query_params.get("share") or "").strip()
    conv = services.store().conversation_for_share(token) if token else None
    if conv is None:
        st.error("This share link is not valid (or the conversation was deleted).", icon=":material/link:")
        return
    st.set_page_config(page_title=header.tab_title(conv.title))
    st.title(history.plain(conv.title), anchor=False)
    st.caption("A read-only copy shared with you.")
    messages.render(conv.id, None, read_only=True)


main()
