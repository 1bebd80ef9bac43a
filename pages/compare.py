"""Compare: one prompt, two to four models side by side, streaming at once; blind votes."""

from __future__ import annotations

import streamlit as st

from egp_core.chat import build_request, title_from
from egp_core.errors import error_from_dict
from egp_core.generation import Generation
from egp_core.store.exchange import export_conversation_json, export_conversation_markdown
from egp_core.types import Message, ModelParameters
from ui import code_view, live, services, sidebar, state
from ui.errors import show_error
from ui.receipt import add_to_totals, show_receipt

LETTERS = "ABCD"


def pane_settings(i: int, defaults: sidebar.Settings | None, column) -> sidebar.Settings | None:
    """Each pane has its own connection, model and parameters (default: the sidebar's)."""
    prefix = f"pane{i}-"
    with column.expander(f"Pane {LETTERS[i]} settings", expanded=False):
        conn, model, contexts = sidebar.connection_and_model(st.container(), key_prefix=prefix)
        base = defaults.parameters if defaults else ModelParameters(temperature=0.5, max_tokens=512)
        st.session_state.setdefault(prefix + "temperature", base.temperature or 0.5)
        st.session_state.setdefault(prefix + "max_tokens", base.max_tokens or 512)
        temperature = st.slider("Temperature", 0.0, 1.0, step=0.05, key=prefix + "temperature")
        max_tokens = st.number_input("Max tokens", 1, 32000, step=64, key=prefix + "max_tokens")
    if conn is None or model is None:
        return None
    params = base.model_copy(update={"temperature": temperature, "max_tokens": int(max_tokens)})
    system = defaults.system_prompt if defaults else ""
    return sidebar.Settings(conn, model, params, system, contexts.get(model))


def start(prompt: str, panes: list[sidebar.Settings]) -> str:
    """Save the comparison (it is a conversation of kind "compare") and start every pane."""
    store = services.store()
    conv = store.create_conversation(
        services.owner(), title_from(prompt), kind="compare",
        settings={"models": [p.model for p in panes], "blind": bool(st.session_state[state.BLIND])},
    )
    store.add_message(conv, "user", prompt)
    for i, pane in enumerate(panes):
        api = "chat" if pane.connection.kind == "openai" else "completions"
        built = build_request(
            [Message(role="user", content=prompt)], model=pane.model, parameters=pane.parameters,
            system_prompt=pane.system_prompt or None, api=api, context_tokens=pane.context_length,
        )
        params = pane.parameters.to_wire() | {"connection": pane.connection.name}
        mid = store.add_message(
            conv, "assistant", "", status="streaming", model=pane.model, parameters=params, pane=i,
        )
        gen = Generation(None, built.request, sink=store, message_id=mid)
        gen.client = pane.connection.make_client(on_retry=gen.note_retry)
        gen.on_finish = lambda g: g.client.close()
        services.registry().start(gen)
        if i == 0:
            code_view.remember(pane.connection, built.request)
    return conv


def stop_all(conv_id: str) -> None:
    reg = services.registry()
    gens = [reg.get(m.id) for m in services.store().messages(conv_id)]
    gens = [g for g in gens if g is not None]
    for g in gens:
        g.cancel()
    for g in gens:
        g.wait(2.0)


def vote(conv_id: str, winner: str, models: list[str]) -> None:
    services.store().add_vote(conv_id, winner, models, services.owner())
    st.session_state[state.VOTED].add(conv_id)


def show_run(conv_id: str) -> None:
    store = services.store()
    conv = store.get_conversation(conv_id, owner=services.owner())
    if conv is None:
        return
    msgs = store.messages(conv_id)
    question = next((m for m in msgs if m.role == "user"), None)
    answers = sorted((m for m in msgs if m.role == "assistant"), key=lambda m: m.pane or 0)
    if question is not None:
        with st.chat_message("user"):
            st.markdown(question.text)
    blind = bool((conv.settings or {}).get("blind"))
    voted = conv_id in st.session_state[state.VOTED]
    hidden = blind and not voted
    prices = store.get_prices()
    reg = services.registry()
    live_panes = []
    cols = st.columns(len(answers) or 1)
    for col, m in zip(cols, answers, strict=False):
        label = f"Model {LETTERS[m.pane or 0]}" if hidden else f"{LETTERS[m.pane or 0]}: {m.model}"
        with col:
            st.subheader(label)
            gen = reg.get(m.id)
            if m.status == "streaming" and gen is not None and not gen.done:
                notice, text = st.empty(), st.empty()
                text.markdown(gen.text + live.CURSOR if gen.text else "_Thinking…_")
                live_panes.append((gen, text, notice))
                continue
            if m.text:
                st.markdown(m.text)
            if m.status == "error":
                err = error_from_dict(m.error)
                if err is not None:
                    show_error(err, key=f"cmp-err-{m.id}")
                continue
            if m.status == "stopped":
                st.caption("⏹️ Stopped by you")
            if m.status == "streaming":
                st.caption("Answering…")
            if not hidden:
                show_receipt(m, prices)
            add_to_totals(m, prices)
    if live_panes:
        st.button("Stop all", icon="⏹️", on_click=stop_all, args=(conv_id,), key=f"stop-all-{conv_id}")
        live.watch_many(live_panes)
        st.rerun()
    if any(m.status == "streaming" for m in answers):
        return
    if blind and not voted:
        st.markdown("**Which answer is best?** The model names are revealed after the vote.")
        models = [m.model for m in answers]
        vcols = st.columns(len(answers) or 1)
        for vcol, m in zip(vcols, answers, strict=False):
            vcol.button(
                f"{LETTERS[m.pane or 0]} is best", key=f"vote-{conv_id}-{m.pane}", type="primary",
                on_click=vote, args=(conv_id, m.model, models), use_container_width=True,
            )
    elif blind:
        st.success("Thanks for voting! The names are revealed above.", icon="🗳️")
    c1, c2 = st.columns(2)
    c1.download_button(
        "Export as Markdown", lambda: export_conversation_markdown(store, conv_id),
        file_name="comparison.md", mime="text/markdown", key=f"cmp-md-{conv_id}",
    )
    c2.download_button(
        "Export as JSON", lambda: export_conversation_json(store, conv_id),
        file_name="comparison.json", mime="application/json", key=f"cmp-json-{conv_id}",
    )


def leaderboard() -> None:
    rows = services.store().leaderboard()
    st.subheader("Leaderboard")
    if not rows:
        st.caption("No votes yet. Turn on blind mode, compare, and let the room vote.")
        return
    st.dataframe(
        [{"Model": r["model"], "Wins": r["wins"], "Votes": r["votes"]} for r in rows],
        hide_index=True, use_container_width=True,
    )


def main() -> None:
    state.init()
    defaults = sidebar.render()
    st.title("Compare models")
    c1, c2 = st.columns([1, 1])
    c1.segmented_control("Panes", [2, 3, 4], key=state.COMPARE_PANES, selection_mode="single")
    c2.toggle(
        "Blind mode", key=state.BLIND,
        help="Hide the model names until the audience votes for the best answer.",
    )
    n = st.session_state[state.COMPARE_PANES] or 2
    cols = st.columns(n)
    panes = [pane_settings(i, defaults, cols[i]) for i in range(n)]
    prompt = st.chat_input("One prompt for every pane", key="compare-input")
    if prompt:
        ready = [p for p in panes if p is not None]
        if len(ready) < 2:
            st.error("Pick a model in at least two panes first.", icon="⚠️")
        else:
            st.session_state[state.COMPARE_RUN] = start(prompt, ready)
    run = st.session_state.get(state.COMPARE_RUN)
    if run:
        show_run(run)
    code_view.show_last("cmp-code")
    leaderboard()


main()
