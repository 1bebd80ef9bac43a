"""Answer options on the chat page: candidates, a seed, token probabilities, JSON mode.

`controls(settings)` draws them in the sidebar, only those the connection's
API supports (`egp_core.capabilities`), and says in a sentence why the others
are missing; what the person chose rides on `settings.choice`. `start()`
starts the answer(s) to a question: one message per candidate (`pane` = its
number; the first is the one the conversation continues with until another is
picked). `show_extras()` draws, under an answer, its JSON check and its token
probabilities; `candidates()` draws a group of candidates as tabs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import streamlit as st

from egp_core.capabilities import MAX_CANDIDATES, Capabilities, capabilities_for
from egp_core.json_answers import check_answer, schema_from_fields, schema_problem
from egp_core.types import AnswerOptions, CompletionRequest
from ui import services, state, token_probs

JSON_KINDS = {"any": "Any JSON object", "fields": "Build from fields", "schema": "Paste a JSON schema"}


@dataclass
class Choice:
    """What the person asked for (already narrowed to what the connection supports)."""

    candidates: int = 1
    seed: int | None = None
    probabilities: bool = False
    json_mode: bool = False
    schema: dict[str, Any] | None = None

    def options(self, caps: Capabilities, index: int = 0) -> AnswerOptions | None:
        """The request options for candidate `index` (its seed is seed + index)."""
        o = AnswerOptions(
            seed=None if self.seed is None or not caps.seed else self.seed + index,
            top_logprobs=min(5, caps.max_top_logprobs) if self.probabilities and caps.logprobs else None,
            response_format=self.response_format(caps),
        )
        return None if o.is_empty() else o

    def response_format(self, caps: Capabilities) -> dict[str, Any] | None:
        if not self.json_mode or not caps.json_mode:
            return None
        if self.schema and caps.json_schema:
            return {"type": "json_schema", "json_schema": {"name": "answer", "schema": self.schema}}
        return {"type": "json_object"}


def capabilities(settings: Any) -> Capabilities:
    return capabilities_for(settings.connection, settings.api)


def _reason(caps: Capabilities, feature: str) -> None:
    why = caps.why_not(feature)
    if why:
        st.caption(why)


def controls(settings: Any, *, allow_candidates: bool = True, key: str = "") -> Choice:
    """The answer options in the sidebar; sets and returns `settings.choice` (a Choice())."""
    choice = Choice()
    if settings is None:
        return choice
    caps = capabilities(settings)
    with st.sidebar.expander("Answer options", icon=":material/tune:"):
        if allow_candidates:
            choice.candidates = int(st.number_input(
                "Candidates", 1, MAX_CANDIDATES, key=key + state.CANDIDATES,
                help="Ask for several answers at once, then pick the one to continue with."))
            if choice.candidates > 1 and not caps.candidates:
                st.caption("This API returns one answer per request: the candidates are sent as separate "
                           "requests.")
        if caps.seed:
            pinned = st.toggle("Pin a seed", key=key + state.SEED_ON,
                               help="The same seed and settings give the same answer again.")
            if pinned:
                choice.seed = int(st.number_input("Seed", 0, 2**31 - 1, key=key + state.SEED))
        else:
            _reason(caps, "seed")
        if caps.logprobs:
            choice.probabilities = st.toggle(
                "Token probabilities", key=key + state.PROBABILITIES,
                help="Keep how sure the model was of each word, to see where it was unsure.")
        else:
            _reason(caps, "logprobs")
        if caps.json_mode:
            choice.json_mode = st.toggle("Answer in JSON", key=key + state.JSON_MODE,
                                         help="The model can only write valid JSON; the answer is checked.")
            if choice.json_mode:
                choice.schema = _schema_input(caps, key)
        else:
            _reason(caps, "json_mode")
    settings.choice = choice
    return choice


def _schema_input(caps: Capabilities, key: str) -> dict[str, Any] | None:
    kinds = list(JSON_KINDS) if caps.json_schema else ["any"]
    kind = st.radio("Shape", kinds, format_func=JSON_KINDS.get, key=key + state.JSON_KIND)
    if not caps.json_schema:
        _reason(caps, "json_schema")
    if kind == "fields":
        text = st.text_area("Fields, one per line", key=key + state.JSON_FIELDS, height=90,
                            placeholder="name: string\nage: integer\ncolours: list")
        st.caption("Types: string, number, integer, boolean, list. Every field is required.")
        schema, problem = schema_from_fields(text)
    elif kind == "schema":
        text = st.text_area("JSON schema", key=key + state.JSON_SCHEMA, height=120,
                            placeholder='{"type": "object", "properties": {"name": {"type": "string"}}}')
        schema, problem = _parse_schema(text)
    else:
        return None
    if problem:
        st.error(problem, icon=":material/data_object:")
        return None
    return schema


def _parse_schema(text: str) -> tuple[dict[str, Any] | None, str | None]:
    if not text.strip():
        return None, "Paste a JSON schema, or pick another shape."
    try:
        schema = json.loads(text)
    except ValueError as exc:
        return None, f"The schema is not valid JSON ({exc.msg}, line {exc.lineno})."
    problem = schema_problem(schema)
    return (None, problem) if problem else (schema, None)


# ---- starting answers ----------------------------------------------------------------------------


def start(conversation_id: str, settings: Any, request: CompletionRequest, parameters: dict[str, Any]) -> None:
    """Save and start the answer, or one answer per candidate, to the conversation's last question."""
    choice: Choice = getattr(settings, "choice", None) or Choice()
    caps = capabilities(settings)
    store = services.store()
    n = max(1, choice.candidates)
    gens = []
    for i in range(n):
        options = choice.options(caps, i)
        req = request.model_copy(update={"options": options})
        params = dict(parameters)
        if options is not None:
            params.update(options.model_dump(exclude_none=True))
        details = {"chosen": i == 0} if n > 1 else None
        mid = store.add_message(conversation_id, "assistant", "", status="streaming", model=settings.model,
                                parameters=params, pane=i if n > 1 else None, details=details)
        gens.append((req, mid))
    for req, mid in gens:
        services.registry().start(services.new_answer(settings, req, mid))


def pane_options(settings: Any) -> dict[str, Any] | None:
    """A compare pane's options (as saved with the comparison): the sidebar's choice, narrowed to what
    the pane's connection supports."""
    choice: Choice = getattr(settings, "choice", None) or Choice()
    options = choice.options(capabilities(settings))
    return options.model_dump(exclude_none=True) if options is not None else None


def pick(conversation_id: str, message_id: str) -> None:
    """Continue the conversation with this candidate (and not the others of its group)."""
    store = services.store()
    group = group_of(store.messages(conversation_id), message_id)
    for m in group:
        store.update_message(m.id, details={"chosen": m.id == message_id})


def group_of(messages: list, message_id: str) -> list:
    """The candidates answering the same question as `message_id`."""
    groups = grouped(messages)
    return next((g for g in groups if any(m.id == message_id for m in g)), [])


def grouped(messages: list) -> list[list]:
    """The messages with runs of candidates (assistant messages with a pane) gathered in lists."""
    out: list[list] = []
    for m in messages:
        if m.role == "assistant" and m.pane is not None and out and out[-1][-1].role == "assistant" \
                and out[-1][-1].pane is not None and m.pane > out[-1][-1].pane:
            out[-1].append(m)
        else:
            out.append([m])
    return out


def is_chosen(message: Any) -> bool:
    """False for a candidate the person did not pick (it stays out of the conversation)."""
    return (message.details or {}).get("chosen", True) is not False


# ---- showing answers ------------------------------------------------------------------------------


def show_extras(message: Any, key: str = "") -> None:
    """Under an answer: its JSON check (when JSON was asked for) and its token probabilities."""
    params = message.parameters or {}
    if params.get("response_format") and message.text and message.status in ("complete", "stopped"):
        fmt = params["response_format"]
        schema = (fmt.get("json_schema") or {}).get("schema") if isinstance(fmt, dict) else None
        result = check_answer(message.text, schema)
        if result.ok:
            st.caption("Valid JSON" + (", and it matches the schema." if schema else "."))
            st.code(result.pretty, language="json")
        else:
            st.warning(result.message, icon=":material/data_object:")
    tokens = token_probs.tokens_from(message.details)
    if tokens and st.toggle("Show where the model was unsure", key=f"probs-{key}{message.id}"):
        token_probs.render(tokens)



def show_candidates(group: list, draw: Any, conversation_id: str, settings: Any | None) -> None:
    """Candidates as tabs. While they stream here, all of them are watched at once; once done, each
    can be picked to continue the conversation with, and Regenerate (with `settings`) asks again."""
    from ui import conversation, live

    chosen = next((m for m in group if is_chosen(m)), group[0])
    labels = [f"Candidate {(m.pane or 0) + 1}" + (" ✓" if m.id == chosen.id else "") for m in group]
    gens = [services.registry().get(m.id) for m in group]
    streaming = [g is not None and not g.done for g in gens]
    st.caption(f"{len(group)} candidates answered this question. The conversation continues with the one "
               "marked ✓; pick another to continue with it instead.")
    tabs = st.tabs(labels)
    if any(streaming):
        panes = []
        for tab, m, gen, running in zip(tabs, group, gens, streaming, strict=True):
            with tab, st.chat_message("assistant"):
                notice, text = st.empty(), st.empty()
                if running:
                    text.markdown((gen.text + live.CURSOR) if gen.text else "_Thinking…_")
                    panes.append((gen, text, notice))
                else:
                    text.markdown(m.text or "_(no text)_")
        st.button("Stop", key=f"stop-{group[0].id}", icon=":material/stop_circle:",
                  on_click=conversation.stop_running, args=(conversation_id,))
        live.watch_many(panes)
        st.rerun()  # every candidate ended: draw them from the store with their receipts
    for tab, m in zip(tabs, group, strict=True):
        with tab:
            draw(m)
            if m.status == "streaming":
                continue
            if m.id == chosen.id:
                st.caption("The conversation continues with this answer.")
            elif m.text:
                st.button("Continue with this one", key=f"pick-{m.id}", icon=":material/call_split:",
                          on_click=pick, args=(conversation_id, m.id))
    if settings is not None and all(m.status != "streaming" for m in group):
        st.button("Regenerate", key=f"regen-{group[0].id}", icon=":material/refresh:", type="tertiary",
                  on_click=lambda: conversation.regenerate(conversation_id, settings))
