"""A small "Copy" button that puts a text on the clipboard in one click, with no rerun.

Streamlit 1.67 has a copy icon only on `st.code`; this is an inline
`st.components.v2` component (no iframe): the text travels as the
component's data and the click is handled in the browser. Where the
Clipboard API is not available (a page served over plain HTTP from another
host), it falls back to the older `execCommand("copy")`.
"""

from __future__ import annotations

import streamlit as st

# Every instance carries these in its message, so they are kept short.
_HTML = ('<button type="button" class="copy"><svg aria-hidden="true" viewBox="0 0 24 24" width="16" height="16">'
         '<path fill="currentColor" d="M9 18a2 2 0 0 1-2-2V4a2 2 0 0 1 2-2h9a2 2 0 0 1 2 2v12a2 2 0 0 1-2 2Zm0-2h9V4H9Z'
         'm-4 6a2 2 0 0 1-2-2V6h2v14h11v2Z"/></svg><span></span></button>')

_CSS = """.copy{display:inline-flex;align-items:center;gap:.3rem;padding:.15rem .25rem;border:none;border-radius:.35rem;
background:none;color:var(--st-text-color,inherit);cursor:pointer;font:inherit;font-size:.875rem;line-height:1.4}
.copy:hover{background:var(--st-secondary-background-color,#8882)}
.copy:focus-visible{outline:2px solid var(--st-primary-color,currentColor)}"""

_JS = """export default function ({ data, parentElement }) {
  const b = parentElement.querySelector("button"), l = b.querySelector("span");
  l.textContent = data.label; b.title = data.help; b.ariaLabel = data.help;
  const old = (t) => { const a = document.createElement("textarea"); a.value = t; a.style.position = "fixed";
    document.body.append(a); a.select(); const ok = document.execCommand("copy"); a.remove();
    if (!ok) throw Error("refused"); };
  b.onclick = async () => {
    try { if (navigator.clipboard && isSecureContext) await navigator.clipboard.writeText(data.text);
          else old(data.text);
          l.textContent = "Copied"; } catch (e) { l.textContent = "Could not copy"; }
    setTimeout(() => { l.textContent = data.label; }, 1500);
  };
}"""

_component = st.components.v2.component("egp_copy_button", html=_HTML, css=_CSS, js=_JS)


def copy_button(text: str, label: str = "Copy", *, key: str, help: str = "Copy to the clipboard") -> None:  # noqa: A002
    """A button that copies `text` exactly (no rerun, nothing sent back to the app)."""
    _component(key=key, data={"text": text, "label": label, "help": help}, width="content")
