"""A stable id for this browser (kept in its localStorage), for "one vote per browser".

Streamlit sessions end with the tab; the id survives reloads and new tabs of the
same browser. Only a hash of it is ever stored (egp_core.voting.hashed).
"""

from __future__ import annotations

import streamlit as st

_JS = """
export default function({ setStateValue }) {
  const NAME = "egp-playground-browser";
  let id = null;
  try {
    id = window.localStorage.getItem(NAME);
    if (!id) {
      const bytes = new Uint8Array(16);
      window.crypto.getRandomValues(bytes);
      id = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
      window.localStorage.setItem(NAME, id);
    }
  } catch (e) {
    id = null;  // storage blocked: the page says it cannot count this browser's vote
  }
  setStateValue("id", id);
}
"""

_component = st.components.v2.component("egp_browser_id", js=_JS)


def browser_id() -> str | None:
    """This browser's id, or None until its script has run (the first run of a page)."""
    result = _component(key="egp-browser-id", default={"id": None}, on_id_change=lambda: None, height=0)
    value = getattr(result, "id", None)
    return str(value) if value else None
