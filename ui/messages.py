"""The conversation on the page: questions as typed, answers (live or saved), receipts, actions.

`show_answer` draws one answer's text and the notes about it; everything
around it (receipt, copy, versions, Regenerate, Continue) is `_answer_actions`.
"""

from __future__ import annotations

from datetime import UTC, datetime

import streamlit as st

from egp_core.chat import Turn, turns
from egp_core.errors import error_from_dict
from ui import answer_options, conversation, live, prompt_picker, services, state
from ui.copy_button import copy_button
from ui.errors import show_error
from ui.receipt import add_to_totals, show_receipt
from ui.sidebar import Settings
from ui.text import plural

INTERRUPTED_NOTE = "Interrupted: the app stopped before this answer was finished."


def _age_seconds(when: datetime) -> float:
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return (datetime.now(UTC) - when).total_seconds()


def _edit_warning(later: int) -> str:
    if not later:
        return "Sending replaces this question and its answer."
    return (f"Sending replaces this question and its answer, and removes the {plural(later, 'later question')} "
            "below and their answers.")


def _question(message, settings: Settings | None, conv_id: str, read_only: bool, later: int) -> None:
    """A question exactly as typed (no Markdown), with Copy and Edit; or the edit box."""
    with st.chat_message("user"):
        if st.session_state.get(state.EDITING) == message.id and settings is not None:
            edited = st.text_area("Edit your question", value=message.text, key=f"edit-text-{message.id}")
            st.caption(_edit_warning(later))
            with st.container(horizontal=True, gap="small"):
                send = st.button("Send", key=f"edit-send-{message.id}", type="primary", icon=":material/send:")
                cancel = st.button("Cancel", key=f"edit-cancel-{message.id}")
            if send:
                conversation.resend_edited(conv_id, message.id, edited, settings)
                st.rerun()
            if cancel:
                st.session_state[state.EDITING] = None
                st.rerun()
            return
        st.text(message.text, width="stretch")
        with st.container(horizontal=True, gap="small", vertical_alignment="center"):
            copy_button(message.text, key=f"copy-{message.id}", help="Copy the question")
            if not read_only:
                st.button(
                    "Edit", key=f"edit-{message.id}", type="tertiary", icon=":material/edit:",
                    on_click=lambda: st.session_state.__setitem__(state.EDITING, message.id),
                )
            prompt_picker.under_question(message, read_only)


def _stop_controls(stop_area, message_id: str) -> None:
    """Stop (also Esc), by the input, and what sending a new question would do."""
    with (stop_area if stop_area is not None else st.empty()).container(
        horizontal=True, gap="small", vertical_alignment="center", horizontal_alignment="center",
    ):
        st.button(
            "Stop", key=f"stop-{message_id}", icon=":material/stop_circle:", shortcut="Esc",
            help="Stop the answer here and keep what it has written so far",
            on_click=conversation.stop, args=(message_id,),
        )
        st.caption("Sending a new question stops this answer first.")


def _live(message, notice, body, stop_area) -> str:
    """Show an answer that is still streaming: "ended" when it was watched here to its end (it is
    saved now), "elsewhere" while another tab, replica or run is writing it, "lost" when nobody is."""
    gen = services.registry().get(message.id)
    if gen is not None and not gen.done:
        _stop_controls(stop_area, message.id)
        live.watch(gen, body, notice)
        if stop_area is not None:
            stop_area.empty()
        return "ended"  # the page carries on drawing; no rerun, so the browser redraws nothing else
    if _age_seconds(message.updated_at) > services.STALE_STREAM_SECONDS:
        services.store().mark_interrupted(stale_after_seconds=services.STALE_STREAM_SECONDS)
        return "lost"
    return "elsewhere"


@st.fragment(run_every=1.0)
def _follow(message_id: str) -> None:
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


def show_answer(message, area, *, drawn: bool = False) -> None:
    """One answer's text, drawn in `area` in the blocks the live view draws (so a rerun re-renders
    nothing), then the notes about it. `drawn`: the live view has just drawn the whole text there
    in this run (drawing it again would replace the blocks, and the browser render them anew)."""
    if message.text and not drawn:
        live.show(message.text, area)
    if message.text:
        answer_options.show_extras(message)  # its JSON check and token probabilities
    elif message.status == "complete":
        area.markdown("_(empty answer)_")
    if message.status == "interrupted":
        st.warning(INTERRUPTED_NOTE, icon=":material/warning:")
    dropped = (message.parameters or {}).get("dropped_turns") or 0
    if dropped:
        st.info(
            f"{plural(dropped, 'earlier turn')} left out: the conversation no longer fits the model's context.",
            icon=":material/content_cut:",
        )


def _versions(turn: Turn) -> None:
    """‹ 2/3 ›: the earlier answers Regenerate kept."""
    ids = [[m.id for m in version] for version in turn.versions]
    shown = turn.shown
    key = turn.versions[0][0].id
    st.button("‹", key=f"prev-{key}", type="tertiary", help="Previous version of this answer",
              disabled=shown == 0, on_click=conversation.show_version, args=(ids, shown - 1))
    st.caption(f"{shown + 1}/{len(ids)}", width="content")
    st.button("›", key=f"next-{key}", type="tertiary", help="Next version of this answer",
              disabled=shown == len(ids) - 1, on_click=conversation.show_version, args=(ids, shown + 1))


def _answer_actions(turn: Turn, message, retry, read_only: bool, versions: bool, carry_on=None) -> None:
    with st.container(horizontal=True, gap="small", vertical_alignment="center"):
        if message.text:
            copy_button(message.text, key=f"copy-{message.id}", help="Copy the answer (as Markdown)")
        if versions and len(turn.versions) > 1 and not read_only:
            _versions(turn)
        if retry is not None:
            st.button("Regenerate", key=f"regen-{message.id}", icon=":material/refresh:", on_click=retry,
                      type="tertiary", help="Answer again; this answer stays as an earlier version")
        if carry_on is not None and message.finish_reason == "length" and message.status == "complete":
            st.button("Continue", key=f"continue-{message.id}", icon=":material/double_arrow:", on_click=carry_on,
                      type="tertiary", help="The answer reached the length limit: let the model carry on")


def _answer(
    turn: Turn, message, settings: Settings | None, conv_id: str, is_last: bool, read_only: bool, prices: dict,
    stop_area=None, candidate: bool = False,
) -> None:
    """One answer with its receipt and actions. `candidate`: one of several answered together
    (ui.answer_options draws their tabs, Regenerate and the versions)."""
    with st.chat_message("assistant"):
        notice, body = st.empty(), st.empty()  # the live view's layout (ui.live.watch)
        drawn = False
        if message.status == "streaming" and not read_only:
            seen = _live(message, notice, body, stop_area)
            if seen == "elsewhere":
                _follow(message.id)
                return
            message = services.store().get_message(message.id) or message
            drawn = seen == "ended"
        show_answer(message, body, drawn=drawn)
        retry = carry_on = None
        if is_last and settings is not None and not read_only and not candidate:
            def retry():
                conversation.regenerate(conv_id, settings)

            def carry_on():
                conversation.continue_answer(conv_id, settings)
        if message.status == "error":
            err = error_from_dict(message.error)
            if err is not None:
                show_error(err, key=f"retry-{message.id}", on_retry=retry)
            _answer_actions(turn, message, None, read_only, versions=not candidate)
            return
        show_receipt(message, prices)
        add_to_totals(message, prices)
        _answer_actions(turn, message, retry, read_only, versions=not candidate, carry_on=carry_on)


def _candidates(turn: Turn, settings: Settings | None, conv_id: str, is_last: bool, read_only: bool,
                prices: dict) -> None:
    """Several candidates answering one question, as tabs (ui.answer_options), then the versions."""
    answer_options.show_candidates(
        turn.answers, lambda m: _answer(turn, m, settings, conv_id, False, read_only, prices, candidate=True),
        conv_id, settings if is_last and not read_only else None)
    if len(turn.versions) > 1 and not read_only:
        with st.container(horizontal=True, gap="small", vertical_alignment="center"):
            _versions(turn)


def render(conv_id: str, settings: Settings | None, *, read_only: bool = False, stop_area=None) -> None:
    """The conversation. `stop_area`: where the Stop button of a streaming answer goes (by the input)."""
    thread = turns(services.store().messages(conv_id))
    prices = services.store().get_prices()  # once per page, not once per answer
    for i, turn in enumerate(thread):
        if turn.question is not None:
            _question(turn.question, settings, conv_id, read_only, later=len(thread) - i - 1)
        is_last = i == len(thread) - 1
        if len(turn.answers) > 1:
            _candidates(turn, settings, conv_id, is_last, read_only, prices)
        elif turn.answers:
            _answer(turn, turn.answer, settings, conv_id, is_last, read_only, prices, stop_area)
