"""What only the browser can do: copy text to the clipboard, close the sidebar drawer on a phone.

Small scripts through st.html(unsafe_allow_javascript=True); every value put into them is
JSON-encoded, never pasted in as HTML or code.
"""

from __future__ import annotations

import html
import json

import streamlit as st

PHONE_WIDTH = 768  # Streamlit shows the sidebar as a drawer over the page below this width


def copy_button(text: str, label: str = "Copy", *, key: str) -> None:
    """A button that copies `text` to the clipboard and says "Copied"."""
    element = f"egp-copy-{''.join(c if c.isalnum() else '-' for c in key)}"
    st.html(
        f'<button type="button" id="{element}" class="egp-copy">{html.escape(label)}</button>'
        "<script>(() => {"
        f"const b = document.getElementById({json.dumps(element)}); if (!b) return;"
        f"const text = {json.dumps(text)};"
        "b.onclick = async () => {"
        " try { await navigator.clipboard.writeText(text); }"
        " catch (e) { const t = document.createElement('textarea'); t.value = text; document.body.appendChild(t);"
        "   t.select(); document.execCommand('copy'); t.remove(); }"
        f" b.textContent = 'Copied'; setTimeout(() => {{ b.textContent = {json.dumps(label)}; }}, 2000);"
        "};})();</script>",
        unsafe_allow_javascript=True,
    )


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
