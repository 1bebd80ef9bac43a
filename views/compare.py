"""Compare: one prompt, two to four models side by side, streaming at once; blind votes.

Each pane is its own background `Generation` with its own client, all started
together, so the answers stream concurrently; the page watches them with
`live.watch_many` (throttled redraws). A comparison is a conversation of kind
"compare": the question, then one answer per pane (`message.pane` = its
letter); each follow-up adds a question and again one answer per pane, each pane
a thread of its own (egp_core.compare). Its settings record what each pane sent (connection, model,
parameters), so "View code" can show each request, and, in blind mode, the
room's vote. Blind mode shuffles the panes, so not even the presenter knows
which letter is which model until the vote.
"""

from __future__ import annotations

import random
from typing import Any

import streamlit as st

from egp_core.chat import build_request, title_from
from egp_core.compare import CompareTurn, compare_turns, pane_thread
from egp_core.connections import message_form
from egp_core.errors import error_from_dict
from egp_core.generation import Generation
from egp_core.store.exchange import export_conversation_json, export_conversation_markdown
from egp_core.types import AnswerOptions, CompletionRequest, Message, ModelParameters
from egp_core.voting import describe, identical_panes, short_names
from ui import (
    answer_options,
    code_view,
    conversation,
    demo_panel,
    live,
    prompt_picker,
    services,
    sidebar,
    state,
)
from ui.errors import show_error
from ui.receipt import add_to_totals, show_receipt

LETTERS = "ABCD"
QUERY = "cmp"  # ?cmp=<id> reopens a comparison (a refresh keeps it on screen)
VOTABLE = ("complete", "stopped")


# ----- the panes' settings ---------------------------------------------------------------------


def pane_settings(i: int, defaults: sidebar.Settings | None, column) -> sidebar.Settings | None:
    """Each pane has its own connection, model and parameters (default: the sidebar's)."""
    prefix = f"pane{i}-"
    if defaults is not None:
        st.session_state.setdefault(prefix + state.CONNECTION, defaults.connection.id)
        st.session_state.setdefault(prefix + state.MODEL, defaults.model)
    base = defaults.parameters if defaults else ModelParameters(temperature=0.5, max_tokens=512)
    st.session_state.setdefault(prefix + "temperature", base.temperature if base.temperature is not None else 0.5)
    st.session_state.setdefault(prefix + "max_tokens", base.max_tokens or 512)
    with column.expander(f"Pane {i + 1} settings", icon=":material/tune:"):
        conn, model, contexts = sidebar.connection_and_model(st.container(), key_prefix=prefix)
        temperature = st.slider("Temperature", 0.0, 1.0, step=0.05, key=prefix + "temperature")
        max_tokens = st.number_input("Max tokens", 1, 32000, step=64, key=prefix + "max_tokens")
    if conn is None or model is None:
        return None
    params = base.model_copy(update={"temperature": temperature, "max_tokens": int(max_tokens)})
    system = defaults.system_prompt if defaults else ""
    same = defaults is not None and defaults.connection.id == conn.id
    api = defaults.api if same else sidebar.default_api(conn)
    choice = defaults.choice if defaults else None
    return sidebar.Settings(conn, model, params, system, contexts.get(model), api, choice)


def pane_spec(pane: sidebar.Settings) -> dict[str, Any]:
    """What a pane sends, as saved with the comparison (no API key: only where and what)."""
    c = pane.connection
    return {
        "connection_id": c.id, "connection": c.name, "kind": c.kind, "base_url": c.base_url,
        "account_id": c.account_id, "model": pane.model, "api": pane.api,
        "parameters": pane.parameters.to_wire(), "context_length": pane.context_length,
        "options": answer_options.pane_options(pane),
    }


def pane_request(history: list[Message], spec: dict[str, Any], system_prompt: str | None) -> CompletionRequest:
    """The request a pane sends for its thread `history` (the same for the answer and for "View code")."""
    built = build_request(
        history, model=spec["model"],
        parameters=ModelParameters.model_validate(spec.get("parameters") or {}),
        system_prompt=system_prompt or None, api=message_form(spec.get("api") or "completions"),
        context_tokens=spec.get("context_length"),
    )
    options = spec.get("options")  # seed, probabilities, JSON: where the pane's connection takes them
    return built.request.model_copy(update={"options": AnswerOptions.model_validate(options)}) if options \
        else built.request


# ----- actions -----------------------------------------------------------------------------------


def open_comparison(conv_id: str | None) -> None:
    st.session_state[state.COMPARE_RUN] = conv_id
    if conv_id:
        st.query_params[QUERY] = conv_id
    elif QUERY in st.query_params:
        del st.query_params[QUERY]


def pane_answer(conv: str, pane: int, spec: dict[str, Any], settings: sidebar.Settings, history: list[Message],
                system: str, saved_prompt: dict | None) -> Generation:
    """Save pane `pane`'s (empty) answer to its thread `history`; the Generation that will fill it."""
    request = pane_request(history, spec, system)
    params = (spec.get("parameters") or {}) | {"connection": spec.get("connection")} | (spec.get("options") or {})
    if saved_prompt:  # the receipt says which prompt version produced it
        params["prompt"] = saved_prompt
    if system:
        params["system_prompt"] = system
    mid = services.store().add_message(
        conv, "assistant", "", status="streaming", model=spec["model"], parameters=params, pane=pane,
    )
    return services.new_answer(settings, request, mid)


def spec_settings(spec: dict[str, Any], system: str) -> sidebar.Settings | None:
    """A saved pane's settings again, to ask it a follow-up (None: its connection is gone)."""
    conn = next((c for c in services.connections() if c.id == spec.get("connection_id")), None)
    if conn is None:
        return None
    params = ModelParameters.model_validate(spec.get("parameters") or {})
    return sidebar.Settings(conn, spec["model"], params, system, spec.get("context_length"),
                            spec.get("api") or "completions")


def start(prompt: str, panes: list[sidebar.Settings], saved_prompt: dict | None = None) -> str:
    """Save the comparison (a conversation of kind "compare") and start every pane at once."""
    store = services.store()
    blind = bool(st.session_state[state.BLIND])
    if blind:  # the letters must not give the models away, not even to the presenter
        panes = random.sample(panes, len(panes))
    system = panes[0].system_prompt or ""
    specs = [pane_spec(p) for p in panes]
    conv = store.create_conversation(
        services.owner(), title_from(prompt), kind="compare",
        settings={"models": [p.model for p in panes], "blind": blind, "system_prompt": system, "panes": specs},
    )
    store.add_message(conv, "user", prompt, parameters={"prompt": saved_prompt} if saved_prompt else None)
    question = [Message(role="user", content=prompt)]
    gens = [pane_answer(conv, i, spec, pane, question, system, saved_prompt)
            for i, (pane, spec) in enumerate(zip(panes, specs, strict=True))]
    for gen in gens:  # everything is saved first, so the panes start together
        services.registry().start(gen)
    return conv


def follow_up(conv_id: str, prompt: str, saved_prompt: dict | None = None) -> None:
    """Ask every pane of the comparison a next question, each with its own thread."""
    store = services.store()
    conv = store.get_conversation(conv_id, owner=services.owner())
    if conv is None:
        return
    settings = conv.settings or {}
    specs, system = settings.get("panes") or [], settings.get("system_prompt") or ""
    panes = [spec_settings(spec, system) for spec in specs]
    if not specs or any(p is None for p in panes):
        st.error("A pane's connection is no longer available: start a new comparison with Next round.",
                 icon=":material/warning:")
        return
    if demo_panel.voting_open(conv_id):  # a saved prompt's Send from a page drawn before the round opened
        st.warning(demo_panel.VOTING_OPEN + ". Your follow-up was not sent.", icon=":material/lock:")
        return
    conversation.stop_running(conv_id)
    store.add_message(conv_id, "user", prompt, parameters={"prompt": saved_prompt} if saved_prompt else None)
    thread = compare_turns(store.messages(conv_id))
    gens = [pane_answer(conv_id, i, spec, pane, pane_thread(thread, i), system, saved_prompt)
            for i, (pane, spec) in enumerate(zip(panes, specs, strict=True))]
    for gen in gens:
        services.registry().start(gen)


def regenerate_pane(conv_id: str, pane: int) -> None:
    """Answer the last question again in one pane; its earlier answer stays, hidden."""
    store = services.store()
    conv = store.get_conversation(conv_id, owner=services.owner())
    thread = compare_turns(store.messages(conv_id))
    if conv is None or not thread or demo_panel.voting_open(conv_id):  # the room votes on these answers
        return
    settings = conv.settings or {}
    specs, system = settings.get("panes") or [], settings.get("system_prompt") or ""
    if pane >= len(specs) or (pane_settings_ := spec_settings(specs[pane], system)) is None:
        return
    old = thread[-1].answers.get(pane)
    if old is not None:
        conversation.stop(old.id)
        store.set_hidden([old.id], True)
    saved_prompt = (thread[-1].question.parameters or {}).get("prompt")
    services.registry().start(
        pane_answer(conv_id, pane, specs[pane], pane_settings_, pane_thread(thread, pane), system, saved_prompt))


# ----- showing a comparison ----------------------------------------------------------------------


def pane_names(conv) -> list[str]:
    """Each pane's contestant: its model, and what differs from the other panes ("SmolLM2 · temperature 0.9")."""
    specs = (conv.settings or {}).get("panes") or []
    return short_names([describe(spec | {"system_prompt": conv.settings.get("system_prompt")}) for spec in specs])


def label(m, hidden: bool, names: list[str] | None = None) -> str:
    letter = LETTERS[m.pane or 0]
    if hidden:
        return f"Model {letter}"
    name = names[m.pane or 0] if names and (m.pane or 0) < len(names) else m.model
    return f"{letter} · {name}"


def show_code(conv, upto: list[CompareTurn], position: int) -> None:
    """The request pane `position` sent for the last of the turns `upto`."""
    specs = (conv.settings or {}).get("panes") or []
    if position >= len(specs):
        return
    spec = specs[position]
    request = pane_request(pane_thread(upto, position), spec, conv.settings.get("system_prompt"))
    code_view.show(
        spec.get("base_url"), request, kind=spec.get("kind") or "egp", account_id=spec.get("account_id"),
        key=f"cmp-code-{conv.id}-{position}" + (f"-{len(upto)}" if len(upto) > 1 else ""), api=spec.get("api"),
    )


def show_outcome(m, conv, upto: list[CompareTurn], hidden: bool, prices: dict) -> None:
    """Under a finished answer: its error, or its receipt, and its code once names are shown."""
    if m.status == "error":
        err = error_from_dict(m.error)
        if err is not None:
            show_error(err, key=f"cmp-err-{m.id}")
        return
    if hidden:  # tokens and speed, without the name (or a price that could give it away)
        show_receipt(m, None, model=label(m, True))
    else:
        show_receipt(m, prices)
        show_code(conv, upto, m.pane or 0)
    add_to_totals(m, prices)


def show_answer(m, conv, upto: list[CompareTurn], hidden: bool, prices: dict) -> None:
    if m.text:
        st.markdown(m.text)
        answer_options.show_extras(m, key="cmp-")
    elif m.status != "error":
        st.caption("_(no text)_")
    show_outcome(m, conv, upto, hidden, prices)


def show_run(conv_id: str) -> None:
    store = services.store()
    conv = store.get_conversation(conv_id, owner=services.owner())
    if conv is None:
        return
    reg = services.registry()
    msgs = store.messages(conv_id)
    live_ids = {m.id for m in msgs if m.status == "streaming" and (g := reg.get(m.id)) is not None and not g.done}
    if any(m.status == "streaming" and m.id not in live_ids for m in msgs):
        msgs = store.messages(conv_id)  # an answer ended while we looked: its final save is in now
    thread = compare_turns(msgs)
    if not thread or not thread[0].answers:
        return
    answers = thread[0].in_order()
    settings = conv.settings or {}
    blind = bool(settings.get("blind"))
    rnd = demo_panel.blind_round(conv_id) if blind else None
    voting = rnd is not None and rnd.status == "open"  # what the room votes on stays as it is
    voted = settings.get("voted")  # a one-click vote of an older version
    if rnd is not None and rnd.status == "revealed":
        voted = (rnd.outcome or {}).get("winner", -1)
        voted = -1 if voted is None else voted  # revealed as a tie: no trophy
    votable = {m.pane for t in thread for m in t.in_order() if m.status in VOTABLE and m.text}
    names = pane_names(conv)
    # Names stay hidden until the reveal, across every turn (or until no vote is possible: fewer
    # than two panes ever answered).
    hidden = blind and voted is None and (bool(live_ids) or len(votable) >= 2)
    prices = store.get_prices()

    live_panes: list[tuple[Generation, Any, Any]] = []
    finish_areas: list[tuple[Any, Any]] = []
    for number, turn in enumerate(thread, start=1):
        last = number == len(thread)
        with st.chat_message("user"):
            st.markdown(turn.question.text)
        if last and live_ids:
            st.button("Stop all", icon=":material/stop_circle:", on_click=conversation.stop_running,
                      args=(conv_id,), key=f"stop-all-{conv_id}", shortcut="Escape")
        upto = thread[:number]
        shown = turn.in_order()
        if not shown:
            continue
        for col, m in zip(st.columns(len(shown)), shown, strict=True):
            with col:
                title = label(m, hidden, names)
                if voted is not None and m.pane == voted:
                    title += " :material/trophy:"
                st.subheader(title, anchor=False)
                if m.id in live_ids:
                    gen = reg.get(m.id)
                    if len(live_ids) > 1:  # one pane stops on its own ("Stop all" stops them all)
                        st.button("Stop", icon=":material/stop:", key=f"stop-{m.id}", on_click=conversation.stop,
                                  args=(m.id,))
                    notice, text, after = st.empty(), st.empty(), st.empty()
                    text.markdown(gen.text + live.CURSOR if gen.text else "_Thinking…_")
                    live_panes.append((gen, text, notice))
                    finish_areas.append((m, after))
                    continue
                show_answer(m, conv, upto, hidden, prices)
                if m.status == "streaming":
                    st.caption("Answering… (in another window, or interrupted)")
                elif last and not live_ids:
                    st.button("Regenerate", icon=":material/refresh:", key=f"regen-{conv_id}-{m.pane}",
                              on_click=regenerate_pane, args=(conv_id, m.pane), disabled=voting,
                              help=demo_panel.VOTING_OPEN + "." if voting
                              else "Answer this question again in this pane only.")

    if live_panes:
        def finished(i: int) -> None:
            """One pane ended while others stream: draw its end (error or receipt) now."""
            m, after = finish_areas[i]  # (watch_many has drawn its whole text)
            saved = store.get_message(m.id) or m
            with after.container():
                show_outcome(saved, conv, thread, hidden, prices)

        live.watch_many(live_panes, on_finish=finished)
        st.rerun()  # every pane ended: draw the comparison from the store

    if blind and voted is None:
        if hidden:
            demo_panel.room_panel(conv_id, settings.get("panes") or [], len(answers))
        else:
            st.info("A vote needs at least two answers, so the names are shown.", icon=":material/info:")
        return  # the export would give the names away
    if blind:
        sentence = demo_panel.revealed_sentence(conv_id, names)
        winner = next((m for m in answers if m.pane == voted), None)
        if sentence:
            st.success(sentence + " The names are revealed above.", icon=":material/how_to_vote:")
        elif winner is not None:
            st.success(f"The room voted for {LETTERS[voted]}: {winner.model}. The names are revealed above.",
                       icon=":material/how_to_vote:")
    c1, c2 = st.columns(2)
    name = f"comparison-{conv_id[:8]}"
    c1.download_button(
        "Export as Markdown", lambda: export_conversation_markdown(store, conv_id),
        file_name=f"{name}.md", mime="text/markdown", key=f"cmp-md-{conv_id}", icon=":material/description:",
    )
    c2.download_button(
        "Export as JSON", lambda: export_conversation_json(store, conv_id),
        file_name=f"{name}.json", mime="application/json", key=f"cmp-json-{conv_id}",
        icon=":material/data_object:",
    )


def earlier_comparisons() -> None:
    found = services.store().list_conversations(services.owner(), kind="compare", limit=20)
    with st.sidebar.expander("Earlier comparisons", icon=":material/history:"):
        if not found:
            st.caption("Your comparisons will appear here.")
        current = st.session_state.get(state.COMPARE_RUN)
        for c in found:
            st.button(
                c.title, key=f"cmp-open-{c.id}", on_click=open_comparison, args=(c.id,),
                type="primary" if c.id == current else "secondary", use_container_width=True,
            )


def main() -> None:
    state.init()  # also keeps the sidebar's choices across page changes
    wanted = st.query_params.get(QUERY)
    if wanted and wanted != st.session_state.get(state.COMPARE_RUN):
        found = services.store().get_conversation(wanted, owner=services.owner())
        open_comparison(wanted if found is not None and found.kind == "compare" else None)
    defaults = sidebar.render()
    answer_options.controls(defaults, allow_candidates=False)  # seed, probabilities, JSON for every pane
    earlier_comparisons()
    presenting = demo_panel.presenting()
    if presenting:
        demo_panel.apply_presenter_view()
    else:
        st.title("Compare models")
    with st.container(key="compare-controls"):  # hidden in the presenter view, but kept
        c1, c2, c3 = st.columns([2, 1, 1])
        c1.segmented_control("Panes", [2, 3, 4], key=state.COMPARE_PANES, selection_mode="single")
        c2.toggle(
            "Blind mode", key=state.BLIND,
            help="Hide the model names (and shuffle the panes) until the audience votes for the best answer.",
        )
        c3.toggle("Presenter view", key=state.PRESENT, on_change=lambda: demo_panel.set_presenting(
            bool(st.session_state[state.PRESENT])), help="Large type for a projector; settings and sidebar hidden.")
        n = st.session_state[state.COMPARE_PANES] or 2
        cols = st.columns(n)
        panes = [pane_settings(i, defaults, cols[i]) for i in range(n)]
    ready = [p for p in panes if p is not None]
    system = defaults.system_prompt if defaults else ""
    if st.session_state[state.BLIND] and identical_panes([pane_spec(p) | {"system_prompt": system} for p in ready]):
        st.warning("Two panes are the same model with the same settings, so a blind vote between them tells "
                   "nothing. Change a pane's model or settings first.", icon=":material/content_copy:")
    on_screen = st.session_state.get(state.COMPARE_RUN)
    voting = demo_panel.voting_open(on_screen)  # the room votes on the answers on screen: no follow-up
    if voting:  # no box at all: letters typed into a disabled one would reach the presenter's keys (X, N)
        with st.bottom:
            st.info(demo_panel.VOTING_OPEN + ".", icon=":material/lock:")
        prompt = None
    else:
        prompt = st.chat_input("A follow-up for every pane (Next round starts anew)" if on_screen
                               else "One prompt for every pane", key="compare-input")
    prompt_picker.form("compare", disabled=voting)
    picked = prompt_picker.take("compare")
    prompt = picked.text if picked else prompt
    if prompt and on_screen:  # a comparison on screen: the prompt is a follow-up to every pane
        follow_up(on_screen, prompt, picked.ref if picked else None)
    elif prompt:
        if len(ready) < 2:
            st.error("Pick a model in at least two panes first.", icon=":material/warning:")
        else:
            open_comparison(start(prompt, ready, picked.ref if picked else None))
    run = st.session_state.get(state.COMPARE_RUN)
    if run:
        show_run(run)
        st.button("Next round", key="next-round", icon=":material/skip_next:", on_click=open_comparison,
                  args=(None,), shortcut="N", disabled=voting,  # the room's vote stays on screen until closed
                  help="Close voting first: the room is voting on these answers." if voting
                  else "Clear the screen for the next prompt.")
    else:
        st.caption("Type a prompt below: every pane answers it at once.")
    demo_panel.leaderboard()


main()
