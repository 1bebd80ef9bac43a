"""Use a saved prompt on a page: pick it (and a version), fill its variables, preview, send.

`form(page)` draws the picker; its Send fills the prompt and queues it, and
`take(page)` hands the queued prompt to the page once, which sends
`FilledPrompt.text` as its question and records `FilledPrompt.ref` with it.
Sending also puts the prompt's system prompt, parameters and default model
(when the connection has it) into the sidebar, so what is sent is what the
sidebar shows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import streamlit as st

from egp_core.chat import title_from
from egp_core.prompts import Prompt, PromptContent, PromptVersion, ref_label
from egp_core.templates import TemplateError, Variable, check, escape
from ui import services, sidebar, state
from ui.history import plain

LONG_NAMES = ("text", "document", "content", "body", "article", "code", "email", "context", "notes",
              "transcript", "essay", "passage", "input", "draft", "message", "description", "data")
"""Variables with these words in their names get a multi-line field."""
PAGE = "views/prompts.py"


@dataclass(frozen=True)
class FilledPrompt:
    text: str  # the user message, filled
    system: str  # the system prompt, filled ("" when the prompt has none)
    ref: dict[str, Any]  # {"id", "version", "name"}: recorded with the question


def _key(page: str, part: str) -> str:
    return f"{state.PICKER_PREFIX}{page}-{part}"


def is_long(variable: Variable) -> bool:
    default = variable.default or ""
    name = variable.name.lower()
    return "\n" in default or len(default) > 60 or any(word in name for word in LONG_NAMES)


def values(page: str, version: PromptVersion) -> dict[str, str | None]:
    """What the fields hold; an empty field is None, so the variable's default applies."""
    return {v.name: (st.session_state.get(_key(page, f"var-{v.name}")) or None) for v in version.content.variables()}


def chosen(page: str) -> tuple[Prompt, PromptVersion] | None:
    """The prompt and version picked on this page, if any (and still there)."""
    pid = st.session_state.get(_key(page, "prompt"))
    if not pid:
        return None
    library = services.prompts()
    prompt = library.get(pid, services.owner())
    if prompt is None:
        return None
    number = st.session_state.get(_key(page, f"version-{pid}")) or prompt.latest.version
    version = prompt.latest if number == prompt.latest.version else library.version(pid, number, services.owner())
    return (prompt, version) if version is not None else None


def fill(page: str) -> FilledPrompt:
    """The picked prompt filled from the fields; raises TemplateError (a person's message)."""
    found = chosen(page)
    if found is None:
        raise TemplateError("Choose a prompt first.")
    _, version = found
    filled = version.content.fill(values(page, version))
    return FilledPrompt(text=filled.user, system=filled.system, ref=version.ref())


def _send(page: str) -> None:
    """Send's callback (before the page runs): queue the filled prompt, set the sidebar to match."""
    try:
        filled = fill(page)
    except TemplateError as exc:
        st.session_state[_key(page, "error")] = exc.message
        return
    st.session_state[_key(page, "error")] = None
    st.session_state.setdefault(state.PICKED, {})[page] = filled
    _, version = chosen(page)
    _apply_settings(version, filled.system)


def _apply_settings(version: PromptVersion, system: str) -> None:
    if system:
        st.session_state[state.SYSTEM_PROMPT] = system
    params = version.content.parameters or {}
    limits = {state.TEMPERATURE: ("temperature", 0.0, 1.0), state.TOP_P: ("top_p", 0.05, 1.0),
              state.MAX_TOKENS: ("max_tokens", 1, 32000)}
    for key, (name, low, high) in limits.items():
        if isinstance(params.get(name), (int, float)):
            st.session_state[key] = type(low)(min(max(params[name], low), high))
    if isinstance(params.get("stop_sequences"), list):
        st.session_state[state.STOP_SEQUENCES] = "\n".join(str(s) for s in params["stop_sequences"])
    sidebar._mark_custom()  # the style of answers says "Custom" when they no longer match it
    model = version.content.model
    if model:
        conn = next((c for c in services.connections() if c.id == st.session_state.get(state.CONNECTION)), None)
        if conn is not None and model in sidebar.model_names(conn):
            st.session_state[state.MODEL] = model


def take(page: str) -> FilledPrompt | None:
    """The prompt the picker's Send queued on this page, once."""
    return st.session_state.setdefault(state.PICKED, {}).pop(page, None)


def select(page: str, prompt_id: str, version: int | None = None) -> None:
    """Preselect a prompt (and version) in the picker of `page` (e.g. from the Prompts page)."""
    st.session_state[_key(page, "prompt")] = prompt_id
    if version is not None:
        st.session_state[_key(page, f"version-{prompt_id}")] = version


def variable_fields(page: str, version: PromptVersion) -> None:
    """One field per variable: multi-line for long text; the default shows as a hint."""
    for v in version.content.variables():
        hint = "Required" if v.default is None else (f"Default: {v.default}" if v.default else "Optional")
        key = _key(page, f"var-{v.name}")
        if is_long(v):
            st.text_area(v.name, key=key, placeholder=hint, height=120)
        else:
            st.text_input(v.name, key=key, placeholder=hint)


def preview(page: str) -> str | None:
    """The filled prompt as it will be sent, or the plain reason it cannot be; the reason, if any."""
    try:
        filled = fill(page)
    except TemplateError as exc:
        st.warning(exc.message, icon=":material/edit_note:")
        return exc.message
    st.caption("Preview")
    if filled.system:
        st.code(filled.system, language=None, wrap_lines=True)
        st.caption("↑ system prompt · ↓ message")
    st.code(filled.text, language=None, wrap_lines=True)
    return None


def form(page: str, *, disabled: bool = False) -> None:
    """The picker: a prompt, a version, its variables, a live preview, and Send."""
    library = services.prompts()
    prompts = {p.id: p for p in library.list(services.owner())}
    pkey = _key(page, "prompt")
    if st.session_state.get(pkey) not in prompts:
        st.session_state[pkey] = ""  # none chosen (None would show Streamlit's own placeholder)
    with st.expander("Use a saved prompt", icon=":material/library_books:", expanded=bool(st.session_state[pkey])):
        if not prompts:
            st.caption("No saved prompts yet: make one on the Prompts page, or use \"Save as prompt\" under a question.")
            return
        c1, c2 = st.columns([3, 1])
        pid = c1.selectbox("Prompt", ["", *prompts], key=pkey,
                           format_func=lambda i: prompts[i].name if i else "Choose a prompt…")
        if not pid:
            return
        latest = prompts[pid].latest.version
        vkey = _key(page, f"version-{pid}")
        if st.session_state.get(vkey) not in range(1, latest + 1):
            st.session_state[vkey] = latest
        c2.selectbox("Version", list(range(latest, 0, -1)), key=vkey,
                     format_func=lambda n: f"v{n} (latest)" if n == latest else f"v{n}")
        found = chosen(page)
        if found is None:
            st.warning("That version is gone. Pick another one.")
            return
        _, version = found
        if version.content.description:
            st.caption(version.content.description)
        variable_fields(page, version)
        problem = preview(page)
        error = st.session_state.pop(_key(page, "error"), None)
        if error:
            st.error(error, icon=":material/warning:")
        st.button("Send", key=f"send-prompt-{page}", type="primary", icon=":material/send:",
                  disabled=disabled or problem is not None, on_click=_send, args=(page,))


# ----- a question of a chat, as a prompt ---------------------------------------------------------


def under_question(message: Any, read_only: bool) -> None:
    """Under a question: the saved prompt it came from, and "Save as prompt"."""
    label = ref_label((message.parameters or {}).get("prompt"))
    if label:
        st.caption(plain(label[0].upper() + label[1:]))
    if not read_only and st.button("Save as prompt", key=f"save-prompt-{message.id}", type="tertiary",
                                   icon=":material/library_add:"):
        save_as_prompt(message.text)


def _as_template(text: str) -> str:
    """The text itself when it reads as a template ({{variables}} stay variables), else escaped."""
    try:
        check(text)
        return text
    except TemplateError:
        return escape(text)


def save_as_prompt(text: str) -> None:
    """Open a new prompt on the Prompts page, filled with this question and the system prompt."""
    system = st.session_state.get(state.SYSTEM_PROMPT) or ""
    st.session_state[state.PROMPT_DRAFT] = PromptContent(
        name=title_from(text), template=_as_template(text), system_prompt=_as_template(system))
    st.session_state[state.PROMPT_OPEN] = state.NEW_PROMPT
    st.switch_page(PAGE)
