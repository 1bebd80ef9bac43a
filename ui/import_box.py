"""One import box (a JSON file and an Import button) for conversations and prompts.

The import runs in the button's callback, before the page is drawn, so what it
added is already in the lists below and above it. Its message stays on the
page until another file is chosen, so a rerun (an upload finishing, a click
elsewhere) cannot wipe it before the person has read it.
"""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from egp_core.store import ImportFailed


def import_box(label: str, key: str, do_import: Callable[[bytes], str]) -> None:
    """A file uploader and an Import button; `do_import` writes and returns the sentence to show."""
    upload = st.file_uploader(label, type=["json"], key=f"{key}-file")
    result_key = f"{key}-result"
    file_id = getattr(upload, "file_id", None)
    result = st.session_state.get(result_key)
    if result is not None and result[0] != file_id:
        st.session_state.pop(result_key, None)
        result = None
    if upload is None:
        return
    st.button("Import", key=f"{key}-go", on_click=_run, args=(f"{key}-file", result_key, do_import))
    if result is None:
        return
    _, ok, text, detail = result
    if ok:
        st.success(text, icon=":material/check_circle:")
    else:
        st.error(text, icon=":material/warning:")
        if detail:
            st.caption(detail)


def _run(file_key: str, result_key: str, do_import: Callable[[bytes], str]) -> None:
    upload = st.session_state.get(file_key)  # the file chosen now, not when the button was drawn
    if upload is None:
        return
    try:
        text = do_import(upload.getvalue())
    except ImportFailed as exc:
        st.session_state[result_key] = (upload.file_id, False, exc.user_message, exc.detail)
    else:
        st.session_state[result_key] = (upload.file_id, True, text, "")
