"""Actions on a conversation: send a question, regenerate, pick an answer's version, edit and resend, stop.

Each action writes to the store first (nothing is lost), then starts the answer
as a background Generation that saves itself as it streams.
"""

from __future__ import annotations

import streamlit as st

from egp_core.chat import BuiltRequest, build_request, continue_request, history_of, title_from, turns
from egp_core.connections import message_form
from egp_core.types import Message
from ui import answer_options, services, state
from ui.sidebar import Settings


def open_conversation(conversation_id: str | None) -> None:
    st.session_state[state.CONVERSATION] = conversation_id
    st.session_state[state.EDITING] = None
    if conversation_id:
        st.query_params["c"] = conversation_id
        from ui.sidebar import restore_conversation_settings

        restore_conversation_settings(conversation_id)
    elif "c" in st.query_params:
        del st.query_params["c"]


def history_for(conversation_id: str) -> list[Message]:
    """The turns that go to the model: questions and the answers on show that have text."""
    return history_of(turns(services.store().messages(conversation_id)))


def stop_running(conversation_id: str | None) -> None:
    """Stop any answer still streaming in this conversation (and wait until it is saved)."""
    if not conversation_id:
        return
    reg = services.registry()
    gens = [reg.get(m.id) for m in services.store().messages(conversation_id) if m.status == "streaming"]
    gens = [g for g in gens if g is not None and not g.done]
    for g in gens:  # close every stream first (a comparison has several), then wait for the saves
        g.cancel()
    for g in gens:
        g.wait(2.0)


def ask(question: str, settings: Settings, prompt: dict | None = None) -> None:
    """Save the question (with the saved prompt's {"id", "version", "name"} it came from), then answer it."""
    store = services.store()
    conv = st.session_state.get(state.CONVERSATION)
    if conv and store.get_conversation(conv, owner=services.owner()) is None:
        conv = None
    if not conv:
        conv = store.create_conversation(
            services.owner(), title_from(question),
            settings={"connection": settings.connection.name, "model": settings.model},
        )
        open_conversation(conv)
    stop_running(conv)
    store.add_message(conv, "user", question, parameters={"prompt": prompt} if prompt else None)
    answer(conv, settings)


def answer(conversation_id: str, settings: Settings) -> None:
    """Start the answer to the conversation's last question."""
    store = services.store()
    built = _build(history_for(conversation_id), settings)
    params = settings.parameters.to_wire()
    params["dropped_turns"] = built.dropped_turns
    params["connection"] = settings.connection.name
    params["api"] = settings.api
    if settings.system_prompt:
        params["system_prompt"] = settings.system_prompt
    questions = [m for m in store.messages(conversation_id) if m.role == "user"]
    if questions and (questions[-1].parameters or {}).get("prompt"):  # the answer names the prompt too
        params["prompt"] = questions[-1].parameters["prompt"]
    store.update_settings(conversation_id, settings.snapshot())  # reopened later, it asks the same way
    answer_options.start(conversation_id, settings, built.request, params)  # one answer per candidate


def _build(history: list[Message], settings: Settings) -> BuiltRequest:
    return build_request(
        history, model=settings.model, parameters=settings.parameters, system_prompt=settings.system_prompt or None,
        api=message_form(settings.api), context_tokens=settings.context_length,
    )


def continue_answer(conversation_id: str, settings: Settings) -> None:
    """Carry on the last answer, cut off by the token limit, in the same message."""
    stop_running(conversation_id)
    store = services.store()
    thread = turns(store.messages(conversation_id))
    last = thread[-1] if thread else None
    if last is None or last.question is None or last.answer is None or not last.answer.text:
        return
    question = Message(role="user", content=last.question.text)
    request = continue_request(_build([*history_of(thread[:-1]), question], settings), question, last.answer.text)
    store.update_message(last.answer.id, status="streaming")
    services.registry().start(services.new_answer(
        settings, request, last.answer.id, prefix=last.answer.text, usage_before=last.answer.usage))


def regenerate(conversation_id: str, settings: Settings) -> None:
    """Answer the last question again. The earlier answers stay, hidden, as versions to go back to."""
    stop_running(conversation_id)
    store = services.store()
    last = turns(store.messages(conversation_id))[-1]
    store.set_hidden([m.id for m in last.answers], True)
    answer(conversation_id, settings)


def show_version(versions: list[list[str]], index: int) -> None:
    """Show version `index` of an answer (its message ids, several for candidates), hide the others."""
    store = services.store()
    store.set_hidden([mid for i, version in enumerate(versions) if i != index for mid in version], True)
    store.set_hidden(versions[index], False)


def resend_edited(conversation_id: str, message_id: str, question: str, settings: Settings) -> None:
    """Replace a question (and everything after it) with its edited text and answer it."""
    stop_running(conversation_id)
    retitle(conversation_id, message_id, question)
    services.store().delete_messages_from(conversation_id, message_id)
    services.store().add_message(conversation_id, "user", question)
    st.session_state[state.EDITING] = None
    answer(conversation_id, settings)


def retitle(conversation_id: str, message_id: str, question: str) -> None:
    """The first question was edited: a title made from it follows (a title chosen by hand stays)."""
    store = services.store()
    first = next((m for m in store.messages(conversation_id) if m.role == "user"), None)
    conv = store.get_conversation(conversation_id, owner=services.owner())
    if first is None or conv is None or first.id != message_id or conv.title != title_from(first.text):
        return
    store.rename_conversation(conversation_id, title_from(question), services.owner())


def stop(message_id: str) -> None:
    """The Stop button: close the stream and wait until the partial answer is saved."""
    gen = services.registry().get(message_id)
    if gen is not None:
        gen.cancel()
        gen.wait(2.0)
