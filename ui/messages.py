"""The conversation on the page: questions, answers (live or saved), receipts, actions."""

from __future__ import annotations

from datetime import UTC, datetime

import streamlit as st

from egp_core.errors import error_from_dict
from ui import answer_options, conversation, live, prompt_picker, services, state
from ui.errors import show_error
from ui.receipt import add_to_totals, show_receipt
from ui.sidebar import Settings

INTERRUPTED_NOTE = "Interrupted: the app stopped before this answer was finished."


def _age_seconds(when: datetime) -> float:
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return (datetime.now(UTC) - when).total_seconds()


def _user(message, settings: Settings | None, conv_id: str, read_only: bool) -> None:
    with st.chat_message("user"):
        if st.session_state.get(state.EDITING) == message.id and settings is not None:
            edited = st.text_area("Edit your question", value=message.text, key=f"edit-text-{message.id}")
            c1, c2 = st.columns(2)
            if c1.button("Send", key=f"edit-send-{message.id}", type="primary"):
                conversation.resend_edited(conv_id, message.id, edited, settings)
                st.rerun()
            if c2.button("Cancel", key=f"edit-cancel-{message.id}"):
                st.session_state[state.EDITING] = None
                st.rerun()
            return
        st.markdown(message.text)
        prompt_picker.under_question(message, read_only)
        if not read_only:
            st.button(
                "Edit", key=f"edit-{message.id}", type="tertiary", icon=":material/edit:",
                on_click=lambda: st.session_state.__setitem__(state.EDITING, message.id),
            )


def _live(message) -> bool:
    """Show an answer that is still streaming. True if it is being watched live here."""
    gen = services.registry().get(message.id)
    if gen is not None and not gen.done:
        notice = st.empty()
        text = st.empty()
        text.markdown((gen.text + live.CURSOR) if gen.text else "_Thinking…_")
        st.button("Stop", key=f"stop-{message.id}", icon=":material/stop_circle:", on_click=conversation.stop, args=(message.id,))
        live.watch(gen, text, notice)
        st.rerun()  # the answer ended: draw it from the store with its receipt
    if _age_seconds(message.updated_at) > services.STALE_STREAM_SECONDS:
        services.store().mark_interrupted(stale_after_seconds=services.STALE_STREAM_SECONDS)
        return False
    return True


@st.fragment(run_every=1.0)
def _follow(message_id: str, conv_id: str) -> None:
    """An answer streaming elsewhere (another tab, replica or an earlier run): poll the store."""
    current = services.store().get_message(message_id)
    if current is None or current.status != "streaming":
        st.rerun(scope="app")
    gen = services.registry().get(message_id)
    if gen is not None and not gen.done:
        st.rerun(scope="app")
    st.markdown((current.text + live.CURSOR) if current.text else "_Thinking…_")
    st.caption("Answering… (updates as it arrives)")
    if _age_seconds(current.updated_at) > services.STALE_STREAM_SECONDS:
        st.rerun(scope="app")


def _assistant(
    message, settings: Settings | None, conv_id: str, is_last: bool, read_only: bool, prices: dict,
) -> None:
    with st.chat_message("assistant"):
        if message.status == "streaming" and not read_only:
            if _live(message):
                _follow(message.id, conv_id)
                return
            message = services.store().get_message(message.id) or message
        if message.text:
            st.markdown(message.text)
            answer_options.show_extras(message)
        elif message.status == "complete":
            st.markdown("_(empty answer)_")
        if message.status == "interrupted":
            st.warning(INTERRUPTED_NOTE, icon=":material/warning:")
        dropped = (message.parameters or {}).get("dropped_turns") or 0
        if dropped:
            st.info(
                f"{dropped} earlier turn{'s' if dropped != 1 else ''} left out: the conversation no "
                "longer fits the model's context.", icon=":material/content_cut:",
            )
        retry = None
        if is_last and settings is not None and not read_only:
            def retry(mid=message.id):
                conversation.regenerate(conv_id, mid, settings)
        if message.status == "error":
            err = error_from_dict(message.error)
            if err is not None:
                show_error(err, key=f"retry-{message.id}", on_retry=retry)
        if message.status != "error":
            show_receipt(message, prices)
            add_to_totals(message, prices)
            if retry is not None:
                st.button("Regenerate", key=f"regen-{message.id}", icon=":material/refresh:", on_click=retry, type="tertiary")


def render(conv_id: str, settings: Settings | None, *, read_only: bool = False) -> None:
    messages = services.store().messages(conv_id)
    prices = services.store().get_prices()  # once per page, not once per answer
    groups = answer_options.grouped(messages)  # several candidates answering one question stay together
    for i, group in enumerate(groups):
        is_last = i == len(groups) - 1
        if len(group) > 1:
            answer_options.show_candidates(
                group, lambda m: _assistant(m, settings, conv_id, False, read_only, prices),
                conv_id, settings if is_last and not read_only else None)
            continue
        message = group[0]
        if message.role == "user":
            _user(message, settings, conv_id, read_only)
        elif message.role == "assistant":
            _assistant(message, settings, conv_id, is_last, read_only, prices)
