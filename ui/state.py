"""Every st.session_state key the app uses, in one place.

Pages read and write session state only through these names, so a reader can
see the whole of the UI's state here.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

CONNECTION = "connection_id"  # id of the chosen connection
MODEL = "model"  # model id picked in the sidebar
PRESET = "preset"  # "Precise" | "Balanced" | "Creative"
TEMPERATURE = "temperature"
MAX_TOKENS = "max_tokens"
TOP_P = "top_p"
STOP_SEQUENCES = "stop_sequences"  # text, one stop sequence per line
SYSTEM_PROMPT = "system_prompt"
API = "api_style"  # the API a connection speaks: an id of Connection.apis (v5-chat, completions, ...)
CONVERSATION = "conversation_id"  # the open conversation (mirrors ?c=)
EDITING = "editing_message_id"  # user message being edited, if any
PENDING_PROMPT = "pending_prompt"  # a starter prompt clicked, to send on this run
TOTALS = "session_totals"  # running totals of this browser session
COUNTED = "counted_message_ids"  # answers already added to the totals
STARTED = "started_message_ids"  # answers this session started (only these count in the totals)
SEARCH = "history_search"
HISTORY_SHOWN = "history_shown"  # how many chats the sidebar list shows ("Show more" adds a page)
SESSION_CONNECTIONS = "session_connections"  # connections added in the page (keys stay here)
SETTINGS_BY_CONNECTION = "settings_by_connection"  # last model/parameters per connection
COMPARE_PANES = "compare_panes"  # number of panes on the compare page
COMPARE_RUN = "compare_run"  # the comparison on screen (conversation id)
BLIND = "compare_blind"
DEMO = "demo_id"  # the presenter's demo (its rounds and vote code), mirrors ?demo=
PRESENT = "presenter_view"  # the compare page drawn for a projector (also ?present=1)
CONFIRM_DELETE = "confirm_delete_conversation"
CLOSE_SIDEBAR = "close_sidebar"  # a conversation was picked: close the sidebar drawer on a phone
UNAVAILABLE = "chat_unavailable"  # why no question can be sent now (the chosen connection's state), or None
EVAL_RUN = "eval_run"  # the evaluation on screen (mirrors ?run=)
EVAL_DATASET = "eval_dataset"  # id of the dataset being set up for a new evaluation
CANDIDATES = "candidates"  # answers asked for at once (1-4)
SEED_ON = "seed_on"  # whether a seed is pinned
SEED = "seed"
PROBABILITIES = "token_probabilities"  # keep token probabilities with the answers
JSON_MODE = "json_mode"
JSON_KIND = "json_kind"  # "any" | "fields" | "schema" (ui.answer_options.JSON_KINDS)
JSON_FIELDS = "json_fields"  # "name: type" lines
JSON_SCHEMA = "json_schema"  # a pasted JSON schema
PROMPT_OPEN = "prompt_open"  # the prompt on the Prompts page (mirrors ?p=); NEW_PROMPT for a new one
PROMPT_DRAFT = "prompt_draft"  # PromptContent for a new prompt ("Save as prompt" from a chat)
PROMPT_SEARCH = "prompt_search"
PROMPT_TAG = "prompt_tag"
PROMPT_CONFIRM_DELETE = "confirm_delete_prompt"
PROMPT_UNDO = "prompt_undo"  # (id, name) of the prompt just deleted, for Undo
PICKED = "picked_prompt"  # {page: FilledPrompt} queued by a prompt picker's Send, taken once
PICKER_PREFIX = "picker-"  # a picker's widgets: picker-<page>-prompt, -version, -var-<name>
PROMPT_GO = "prompt_go"  # "chat" | "compare": a "Use in ..." button was clicked, switch there
NEW_PROMPT = "new"

DEFAULTS: dict[str, Any] = {
    PRESET: "Balanced",
    TEMPERATURE: 0.5,
    MAX_TOKENS: 512,
    TOP_P: 1.0,
    STOP_SEQUENCES: "",
    SYSTEM_PROMPT: "",
    API: None,  # None: the connection's default (ui.sidebar.default_api)
    CONVERSATION: None,
    EDITING: None,
    PENDING_PROMPT: None,
    SEARCH: "",
    COMPARE_PANES: 2,
    COMPARE_RUN: None,
    BLIND: False,
    DEMO: None,
    PRESENT: False,
    CONFIRM_DELETE: None,
    UNAVAILABLE: None,
    EVAL_RUN: None,
    EVAL_DATASET: None,
    PROMPT_OPEN: None,
    PROMPT_DRAFT: None,
    PROMPT_SEARCH: "",
    PROMPT_TAG: "",  # all tags
    PROMPT_CONFIRM_DELETE: None,
    PROMPT_UNDO: None,
    CANDIDATES: 1,
    SEED_ON: False,
    SEED: 7,
    PROBABILITIES: False,
    JSON_MODE: False,
    JSON_KIND: "any",
    JSON_FIELDS: "",
    JSON_SCHEMA: "",
}


KEPT = (CONNECTION, MODEL, PRESET, TEMPERATURE, MAX_TOKENS, TOP_P, STOP_SEQUENCES, SYSTEM_PROMPT, API,
        SEARCH, COMPARE_PANES, BLIND, PRESENT, CANDIDATES, SEED_ON, SEED, PROBABILITIES, JSON_MODE, JSON_KIND,
        JSON_FIELDS, JSON_SCHEMA)
"""Choices that must survive a visit to a page that does not draw their widgets."""
KEPT_PREFIX = ("pane", PICKER_PREFIX)  # per-pane choices (pane0-model, ...), prompt pickers' fields


def keep_choices() -> None:
    """Streamlit forgets a widget's value when a run does not draw it (another page).
    Writing the value back at the top of every page keeps it."""
    for key in list(st.session_state.keys()):
        if key in KEPT or str(key).startswith(KEPT_PREFIX):
            st.session_state[key] = st.session_state[key]


def init() -> None:
    """Fill in defaults for keys not yet set (fresh containers for mutable ones)."""
    keep_choices()
    for key, value in DEFAULTS.items():
        st.session_state.setdefault(key, value)
    st.session_state.setdefault(TOTALS, {"answers": 0, "prompt": 0, "completion": 0, "total": 0, "cost": None})
    st.session_state.setdefault(COUNTED, set())
    st.session_state.setdefault(STARTED, set())
    st.session_state.setdefault(SESSION_CONNECTIONS, [])
    st.session_state.setdefault(SETTINGS_BY_CONNECTION, {})
