"""The sidebar shared by pages: connection, model, parameters in plain words, system prompt;
and the settings a conversation keeps (saved with each answer, put back when it is reopened)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import streamlit as st

from egp_core.connections import API_WORDS, Connection, probe_api
from egp_core.errors import EGPError
from egp_core.model_catalog import ModelListing, credentials_hash
from egp_core.types import ModelParameters
from ui import services, state

PRESETS: dict[str, dict] = {
    "Precise": {"temperature": 0.1, "top_p": 1.0, "help": "Focused and repeatable: facts, code, extraction."},
    "Balanced": {"temperature": 0.5, "top_p": 1.0, "help": "A sensible default for most questions."},
    "Creative": {"temperature": 0.9, "top_p": 0.95, "help": "More varied wording: brainstorming, stories."},
}
CUSTOM = "Custom"
CUSTOM_HELP = "Your own settings, from Advanced below."
KEPT_SETTINGS = (state.PRESET, state.TEMPERATURE, state.MAX_TOKENS, state.TOP_P, state.STOP_SEQUENCES,
                 state.SYSTEM_PROMPT, state.API)
"""What a conversation keeps, besides its connection and model."""


@dataclass
class Settings:
    connection: Connection
    model: str
    parameters: ModelParameters
    system_prompt: str
    context_length: int | None
    api: str = "completions"
    choice: Any = None  # ui.answer_options.Choice: candidates, seed, probabilities, JSON

    def snapshot(self) -> dict:
        """What the conversation keeps of these settings (no key: the connection by id and name)."""
        kept = {k: st.session_state.get(k) for k in KEPT_SETTINGS}
        return {"connection_id": self.connection.id, "connection": self.connection.name, "model": self.model,
                **kept, "system_prompt": self.system_prompt, "api": self.api}

    def client(self, **kw):
        """A client for this connection speaking the chosen API."""
        return self.connection.make_client(self.api, **kw)


@st.cache_data(ttl=600, show_spinner=False)
def _probed_api(_connection: Connection, connection_id: str, base_url: str, credentials: str) -> str:
    return probe_api(_connection, timeout=3)


def default_api(connection: Connection) -> str:
    """The API a connection speaks unless the person picks another: SGP v5 where the workspace
    (or the local model) has it, else the older completions API; chat for OpenAI-compatible servers.
    A server that did not answer is asked again on the next run, but not while its model list is
    remembered as failing (so a hanging server costs one short wait, not one per run)."""
    if services.model_catalog().failing(connection):
        return "completions"
    try:
        return _probed_api(connection, connection.id, connection.base_url, credentials_hash(connection))
    except EGPError:
        return "completions"


def model_names(conn: Connection) -> list[str]:
    """The models the connection offers (remembered, see egp_core.model_catalog); [] when unreadable."""
    return services.model_catalog().get(conn).names


def _unavailable(conn: Connection, listing: ModelListing, where, key_prefix: str) -> None:
    """Say plainly why the connection's models could not be read, when they are asked for again
    (failures are remembered a few seconds, see egp_core.model_catalog), and offer Try again."""
    where.error(listing.problem, icon=":material/cloud_off:")
    where.caption(f"Asked again in {max(1, round(listing.retry_in))} s, or now:")
    # (key_prefix not first: state.keep_choices writes back "pane..." keys, and a button's cannot be)
    where.button("Try again", key=f"models-retry-{key_prefix}", icon=":material/refresh:",
                 on_click=services.model_catalog().forget, args=(conn,))
    if not key_prefix:
        st.session_state[state.UNAVAILABLE] = f"{conn.name} cannot be reached. {listing.problem}"


@st.fragment(run_every=1.0)
def _await_local(server) -> None:
    """Say the model is loading, and redraw the page by itself once it is ready."""
    if server.is_ready() or server.error:
        st.rerun(scope="app")
    st.info("The local model is loading; it is ready in a few seconds.", icon=":material/hourglass_top:")


def _apply_preset() -> None:
    preset = PRESETS.get(st.session_state[state.PRESET])
    if preset:
        st.session_state[state.TEMPERATURE] = preset["temperature"]
        st.session_state[state.TOP_P] = preset["top_p"]


def _mark_custom() -> None:
    """A slider moved away from the chosen style: the style is now Custom."""
    preset = PRESETS.get(st.session_state[state.PRESET])
    if preset and (preset["temperature"], preset["top_p"]) != (
        st.session_state[state.TEMPERATURE], st.session_state[state.TOP_P]
    ):
        st.session_state[state.PRESET] = CUSTOM


def restore_conversation_settings(conversation_id: str) -> None:
    """Put back the settings the conversation's last answer used (saved with it): style, parameters,
    system prompt, API, and the connection and model when they still exist."""
    conv = services.store().get_conversation(conversation_id, owner=services.owner())
    saved = dict(conv.settings or {}) if conv is not None else {}
    if "preset" not in saved:  # a conversation from before settings were kept: leave the sidebar alone
        return
    for key in KEPT_SETTINGS:
        if key in saved and saved[key] is not None:
            st.session_state[key] = saved[key]
    if st.session_state.get(state.PRESET) not in (*PRESETS, CUSTOM):
        st.session_state[state.PRESET] = CUSTOM
    ids = {c.id for c in services.connections()}
    if saved.get("connection_id") in ids:
        st.session_state[state.CONNECTION] = saved["connection_id"]
        if saved.get("model"):
            st.session_state[state.MODEL] = saved["model"]


def _remember(connection_id: str) -> None:
    """Each connection remembers its last model and parameters (this session)."""
    st.session_state[state.SETTINGS_BY_CONNECTION][connection_id] = {
        k: st.session_state.get(k)
        for k in (state.MODEL, state.PRESET, state.TEMPERATURE, state.MAX_TOKENS, state.TOP_P, state.API)
    }


def _restore() -> None:
    saved = st.session_state[state.SETTINGS_BY_CONNECTION].get(st.session_state[state.CONNECTION])
    st.session_state[state.API] = None  # a connection not used before: its default API (see render)
    for k, v in (saved or {}).items():
        st.session_state[k] = v


def connection_and_model(container=None, key_prefix: str = "") -> tuple[Connection | None, str | None, dict]:
    """Connection and model pickers; returns (connection, model, {model: context length})."""
    where = container or st.sidebar
    conns = services.connections()
    if not conns:
        where.warning("No connection configured. Add one in Settings.")
        return None, None, {}
    by_id = {c.id: c for c in conns}
    ckey = key_prefix + state.CONNECTION
    if st.session_state.get(ckey) not in by_id:
        st.session_state[ckey] = conns[0].id
    cid = where.selectbox(
        "Connection", list(by_id), key=ckey, format_func=lambda i: by_id[i].name,
        on_change=_restore if not key_prefix else None,
        help="Where the model runs: the built-in local model, an EGP workspace, or another server.",
    )
    conn = by_id[cid]
    notice = where.empty()  # always present, so the widgets below keep their place
    local_not_ready = conn.kind == "local" and not services.local_server().is_ready()
    if conn.kind == "local":
        server = services.local_server()
        if server.error:
            notice.error(server.error)
        elif not server.is_ready():
            with notice.container():
                _await_local(server)
    catalog = services.model_catalog()  # per connection and credentials; short waits, failures remembered
    listing = catalog.get(conn)
    if local_not_ready:  # the notice above says why; what it lists now is not remembered
        catalog.forget(conn)
    elif listing.problem:  # this connection's own state, never another connection's model
        _unavailable(conn, listing, where, key_prefix)
        return conn, None, {}
    models, contexts = listing.names, listing.contexts
    mkey = key_prefix + state.MODEL
    if not models:
        models = [st.session_state.get(mkey)] if st.session_state.get(mkey) else []
    if not models:
        return conn, None, contexts
    if st.session_state.get(mkey) not in models:
        st.session_state[mkey] = models[0]
    model = where.selectbox("Model", models, key=mkey, help="The model that answers.")
    return conn, model, contexts


def parameters_from_state() -> ModelParameters:
    stops = [s for s in st.session_state[state.STOP_SEQUENCES].splitlines() if s][:4]
    return ModelParameters(
        temperature=st.session_state[state.TEMPERATURE],
        max_tokens=st.session_state[state.MAX_TOKENS],
        top_p=st.session_state[state.TOP_P],
        stop_sequences=stops or None,
    )


def parameters(conn: Connection | None = None) -> ModelParameters:
    sb = st.sidebar
    if st.session_state.get(state.PRESET) not in (*PRESETS, CUSTOM):
        st.session_state[state.PRESET] = CUSTOM
    sb.radio(
        "Style of answers", [*PRESETS, CUSTOM], key=state.PRESET, on_change=_apply_preset, horizontal=True,
        captions=None, help=" ".join(f"{k}: {v['help']}" for k, v in PRESETS.items()) + f" {CUSTOM}: {CUSTOM_HELP}",
    )
    preset = PRESETS.get(st.session_state[state.PRESET])
    sb.caption(preset["help"] if preset else CUSTOM_HELP)
    with sb.expander("Advanced"):
        st.slider("Temperature", 0.0, 1.0, step=0.05, key=state.TEMPERATURE, on_change=_mark_custom)
        st.caption("Randomness: 0 always picks the likeliest word, 1 takes more chances.")
        st.number_input("Max tokens", min_value=1, max_value=32000, step=64, key=state.MAX_TOKENS)
        st.caption("Longest answer allowed, in tokens (about ¾ of a word each); longer ones are cut off.")
        st.slider("Top p", 0.05, 1.0, step=0.05, key=state.TOP_P, on_change=_mark_custom)
        st.caption("Pick only among the likeliest words making up this share of chance. 1 = no limit.")
        st.text_area("Stop sequences", key=state.STOP_SEQUENCES, height=68)
        st.caption("One per line, at most 4: the answer ends where the model writes one of them.")
        if conn is not None:
            apis = conn.apis
            if st.session_state.get(state.API) not in apis:
                st.session_state[state.API] = default_api(conn)
            st.radio("How the chat is sent", list(apis), key=state.API,
                     format_func=lambda a: API_WORDS.get(a, apis[a]),
                     help="  \n".join(f"{API_WORDS.get(a, a)}: {apis[a]}" for a in apis))
            st.caption("As a conversation, each turn goes separately; as one text, the whole chat is "
                       "written out as a transcript.")
    return parameters_from_state()


def render() -> Settings | None:
    """The whole shared sidebar. None when no model can be used yet (state.UNAVAILABLE says why)."""
    state.init()
    st.session_state[state.UNAVAILABLE] = None
    conn, model, contexts = connection_and_model()
    if conn is None:
        st.session_state[state.UNAVAILABLE] = "No connection yet: add one on the Settings page."
    elif model is None and not st.session_state[state.UNAVAILABLE]:
        st.session_state[state.UNAVAILABLE] = (
            "The local model is loading; ask in a few seconds." if conn.kind == "local"
            else f"{conn.name} offers no model. Pick another connection."
        )
    params = parameters(conn)
    st.sidebar.text_area(
        "System prompt", key=state.SYSTEM_PROMPT, height=80,
        help="Instructions the model follows for the whole chat, e.g. 'Answer in French.'",
    )
    if conn is not None:
        _remember(conn.id)
    if conn is None or model is None:
        return None
    api = st.session_state[state.API] if st.session_state.get(state.API) in conn.apis else default_api(conn)
    return Settings(conn, model, params, st.session_state[state.SYSTEM_PROMPT], contexts.get(model), api)
