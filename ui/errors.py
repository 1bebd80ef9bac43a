"""An error as a person sees it: what happened, what to do, Retry, and the detail folded away."""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from egp_core.errors import EGPError


def show_error(error: EGPError, *, key: str, on_retry: Callable[[], None] | None = None) -> None:
    st.error(error.user_message, icon=":material/warning:")
    if on_retry is not None:
        st.button("Retry", key=key, on_click=on_retry, icon=":material/refresh:")
    with st.expander("Technical detail"):
        st.code(f"{error.kind}: {error.detail}", language=None, wrap_lines=True)
