"""What the theme in .streamlit/config.toml cannot say, as a little CSS on every page: a visible
keyboard focus ring, destructive buttons in a warning colour, conversation rows aligned left, a copy
button that looks like the others."""

from __future__ import annotations

import streamlit as st

WARNING = "#b42318"  # 6.5:1 on white
FOCUS = "#3b3bb3"  # the primary colour, darker: 7.6:1 on white
DESTRUCTIVE_KEYS = ("del-", "rm-")  # keys of buttons that delete or remove something

CSS = f"""<style>
:focus-visible, button:focus-visible, a:focus-visible, [role="button"]:focus-visible,
input:focus-visible, textarea:focus-visible, [tabindex]:focus-visible {{
  outline: 3px solid {FOCUS} !important; outline-offset: 2px !important;
}}
{", ".join(f'[class*="st-key-{k}"] button' for k in DESTRUCTIVE_KEYS)} {{
  color: {WARNING} !important; border-color: {WARNING} !important;
}}
{", ".join(f'[class*="st-key-{k}"] button p' for k in DESTRUCTIVE_KEYS)} {{ color: {WARNING} !important; }}
[class*="st-key-open-"] button {{ justify-content: flex-start; }}  /* conversation rows read from the left */
</style>"""


def apply() -> None:
    st.html(CSS)
