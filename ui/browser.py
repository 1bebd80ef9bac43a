"""What only the browser can do: close the sidebar drawer on a phone (copying is ui.copy_button).

Small scripts through st.html(unsafe_allow_javascript=True); every value put into them is
JSON-encoded, never pasted in as HTML or code.
"""

from __future__ import annotations

import streamlit as st

PHONE_WIDTH = 768  # Streamlit shows the sidebar as a drawer over the page below this width


def close_sidebar_if_narrow() -> None:
    """Close the sidebar when it is a drawer over the page (a phone)."""
    st.html(
        "<script>(() => {"
        f"if (window.innerWidth >= {PHONE_WIDTH}) return;"
        "const b = document.querySelector('[data-testid=\"stSidebarCollapseButton\"] button');"
        "const open = document.querySelector('[data-testid=\"stSidebar\"][data-collapsed=\"false\"]');"
        "if (b && open) b.click();"
        "})();</script>",
        unsafe_allow_javascript=True,
    )
