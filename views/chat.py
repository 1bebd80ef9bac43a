"""Chat: ask, watch the answer stream in, stop, regenerate, edit; every answer has a receipt."""

from __future__ import annotations

import streamlit as st

from ui import (
    answer_options,
    code_view,
    conversation,
    header,
    history,
    messages,
    prompt_picker,
    services,
    sidebar,
    state,
)
from ui.receipt import show_totals

STARTERS = [
    "Explain what a large language model is, in two sentences.",
    "Write a haiku about autumn in the city.",
    "Give me three ideas for a team offsite.",
    "What is the capital of France, and why is it famous?",
]


def main() -> None:
    state.init()

    wanted = st.query_params.get("c")
    if wanted and wanted != st.session_state.get(state.CONVERSATION):
        if services.store().get_conversation(wanted, owner=services.owner()) is not None:
            conversation.open_conversation(wanted)  # with the settings it was answered with
        else:
            st.toast("That conversation does not exist (any more).", icon=":material/warning:")
            conversation.open_conversation(None)

    history_area = st.sidebar.container()  # first: on a phone, New chat and history come before the settings
    settings = sidebar.render()
    answer_options.controls(settings)  # candidates, seed, token probabilities, JSON mode
    st.sidebar.divider()
    totals_area = st.sidebar.empty()
    history.export_import()

    # Stop sits right above the input while an answer streams (ui.messages draws it here).
    stop_area = st.bottom.empty()
    prompt = st.chat_input(st.session_state.get(state.UNAVAILABLE) or "Ask anything", key="chat-input",
                           disabled=settings is None)
    picked = prompt_picker.take("chat")  # queued by the picker's Send (drawn below)
    if picked and settings is not None:
        conversation.ask(picked.text, settings, prompt=picked.ref)
    starter = st.session_state.get(state.PENDING_PROMPT)
    if starter:
        st.session_state[state.PENDING_PROMPT] = None
        prompt = prompt or starter
    if prompt and settings is not None:
        conversation.ask(prompt, settings)
    history.conversation_list(history_area)
    history.close_sidebar_on_phone()
    conv_id = st.session_state.get(state.CONVERSATION)
    header.show(conv_id)

    if not conv_id:
        # One container: the first message of a new chat replaces it whole, so no faded
        # starter buttons linger below the answer while it streams.
        with st.container():
            st.title("EGP Playground")
            st.caption("Ask anything below, or start with one of these:")
            cols = st.columns(2)
            for i, text in enumerate(STARTERS):
                cols[i % 2].button(
                    text, key=f"starter-{i}", use_container_width=True, disabled=settings is None,
                    on_click=lambda t=text: st.session_state.__setitem__(state.PENDING_PROMPT, t),
                )
            if settings is None:
                st.info(st.session_state.get(state.UNAVAILABLE) or "No model is available yet.", icon=":material/info:")
        prompt_picker.form("chat", disabled=settings is None)
        with totals_area.container():
            show_totals()
        return

    messages.render(conv_id, settings, stop_area=stop_area)
    prompt_picker.form("chat", disabled=settings is None)
    with totals_area.container():
        show_totals()
    code_view.show_for_conversation(conv_id, settings.connection if settings else None, key="chat-code")


main()
