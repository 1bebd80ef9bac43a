"""Conversation -> request: a transcript prompt for completions, or chat messages.

`build_request` keeps the newest question and as many of the latest earlier
turns as fit the model's context; `title_from` names a conversation; `turns`
groups a saved conversation into questions and their answers (Regenerate keeps
the earlier versions of an answer, hidden).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from egp_core.connections import message_form
from egp_core.types import AnswerOptions, CompletionRequest, Message, ModelParameters

DEFAULT_RESERVE_TOKENS = 256
MAX_STOP_SEQUENCES = 4
TURN_STOP = "\nUser:"
_LABELS = {"system": "System", "user": "User", "assistant": "Assistant"}
_CHAT_MESSAGE_OVERHEAD = 4  # role markers and separators a chat template adds per message


@dataclass(slots=True)
class BuiltRequest:
    """The request to send, how many earlier turns were left out, and its estimated prompt size."""

    request: CompletionRequest
    dropped_turns: int
    prompt_tokens_estimate: int
    fits: bool = True  # False when even the newest question alone exceeds the context


def estimate_tokens(text: str) -> int:
    """A rough token count (about 4 characters per token), used when no tokenizer is given."""
    return len(text) // 4 + 1


def estimated_usage(request: CompletionRequest, pieces: int) -> dict[str, Any]:
    """Token counts for an answer the server never counted (stopped, or cut off): the prompt's from
    its length, the answer's from the pieces of text that arrived (a streaming server sends about
    one token per piece). Marked "estimated", so the page can say "about"."""
    if request.prompt is not None:
        prompt_text = request.prompt
    else:
        prompt_text = "\n".join(m.content for m in request.messages or [])
    prompt = estimate_tokens(prompt_text)
    return {"prompt": prompt, "completion": pieces, "total": prompt + pieces, "estimated": True}


def added_usage(first: dict[str, Any], second: dict[str, Any]) -> dict[str, Any]:
    """The tokens of two requests for one answer (it was continued); estimated if either was."""
    total = {k: int(first.get(k) or 0) + int(second.get(k) or 0) for k in ("prompt", "completion", "total")}
    if first.get("estimated") or second.get("estimated"):
        total["estimated"] = True
    return total


def transcript(messages: Sequence[Message]) -> str:
    """A readable "System: / User: / Assistant:" transcript ending with an open "Assistant:" turn."""
    parts = [f"{_LABELS[m.role]}: {m.content}" for m in messages]
    parts.append("Assistant:")
    return "\n\n".join(parts)


def _split_turns(earlier: Sequence[Message]) -> list[list[Message]]:
    """Group earlier messages into turns: a user message and the replies that follow it."""
    turns: list[list[Message]] = []
    for m in earlier:
        if m.role == "user" or not turns:
            turns.append([m])
        else:
            turns[-1].append(m)
    return turns


def _prompt_text(system: str | None, messages: list[Message]) -> str:
    if not system and len(messages) == 1:
        return messages[0].content  # a lone question goes as-is: the server applies its chat template
    head = [Message(role="system", content=system)] if system else []
    return transcript(head + messages)


def _with_turn_stop(parameters: ModelParameters | None) -> ModelParameters:
    params = parameters.model_copy(deep=True) if parameters else ModelParameters()
    stops = list(params.stop_sequences or [])
    if TURN_STOP not in stops and len(stops) < MAX_STOP_SEQUENCES:
        stops.append(TURN_STOP)
        params.stop_sequences = stops
    return params


def build_request(
    history: list[Message],
    *,
    model: str,
    parameters: ModelParameters | None,
    system_prompt: str | None,
    api: str = "completions",
    context_tokens: int | None = None,
    count_tokens: Callable[[str], int] | None = None,
    reserve_tokens: int | None = None,
) -> BuiltRequest:
    """Turn a conversation ending with the new user question into a request.

    `api` is "completions" (a transcript prompt) or "chat" (messages). With
    `context_tokens`, the oldest whole turns are left out until the prompt plus
    `reserve_tokens` (default: max_tokens, else 256) fits; the question always stays.
    """
    if api not in ("completions", "chat"):
        raise ValueError(f"api must be 'completions' or 'chat', not {api!r}")
    if not history:
        raise ValueError("history must end with the new user question")
    count = count_tokens or estimate_tokens
    system = system_prompt.strip() if system_prompt and system_prompt.strip() else None
    # System messages become the system prompt; empty answers (a failed request) say nothing to the model.
    convo = [m for m in history if m.role == "user" or (m.role == "assistant" and m.content.strip())]
    if system is None:  # a system message inside the history stands in for a missing system prompt
        system = next((m.content for m in history if m.role == "system" and m.content.strip()), None)
    if not convo:
        raise ValueError("history must end with the new user question")
    question, turns = convo[-1], _split_turns(convo[:-1])
    reserve = reserve_tokens
    if reserve is None:
        reserve = (parameters.max_tokens if parameters and parameters.max_tokens else None) or DEFAULT_RESERVE_TOKENS

    def render(kept: list[list[Message]]) -> tuple[CompletionRequest, int]:
        messages = [m for turn in kept for m in turn] + [question]
        if api == "chat":
            full = ([Message(role="system", content=system)] if system else []) + messages
            tokens = sum(count(m.content) + _CHAT_MESSAGE_OVERHEAD for m in full)
            req = CompletionRequest(model=model, messages=full, model_parameters=parameters)
            return req, tokens
        prompt = _prompt_text(system, messages)
        params = _with_turn_stop(parameters) if system or kept else parameters
        return CompletionRequest(model=model, prompt=prompt, model_parameters=params), count(prompt)

    dropped = 0
    request, tokens = render(turns)
    while context_tokens is not None and tokens + reserve > context_tokens and dropped < len(turns):
        dropped += 1
        request, tokens = render(turns[dropped:])
    fits = context_tokens is None or tokens + reserve <= context_tokens
    return BuiltRequest(request=request, dropped_turns=dropped, prompt_tokens_estimate=tokens, fits=fits)


def title_from(question: str, limit: int = 48) -> str:
    """A short one-line title from the first question, as typed ("New chat" when it is empty)."""
    text = re.sub(r"\s+", " ", question).strip()
    if not text:
        return "New chat"
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space >= limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,.;:-") + "…"


def chosen(message: Any) -> bool:
    """False for a candidate the person did not pick (it stays out of the conversation)."""
    return ((getattr(message, "details", None) or {}).get("chosen", True)) is not False


def _same_attempt(previous: Any, message: Any) -> bool:
    """Candidates of one request: a run of answers with rising pane numbers."""
    return previous.pane is not None and message.pane is not None and message.pane > previous.pane


@dataclass(slots=True)
class Turn:
    """A question and its answers: the versions Regenerate made, oldest first, each the answer or
    the candidates answered together.

    The version on show is the newest with an answer not hidden (the newest, when all are); within
    it, the conversation goes on with the chosen candidate."""

    question: Any | None  # the user message; None for answers before any question
    versions: list[list[Any]] = field(default_factory=list)

    @property
    def shown(self) -> int:
        """Index of the version on show (-1 when there is none)."""
        for i in range(len(self.versions) - 1, -1, -1):
            if not all(getattr(m, "hidden", False) for m in self.versions[i]):
                return i
        return len(self.versions) - 1

    @property
    def answers(self) -> list[Any]:
        """The version on show: one answer, or its candidates."""
        return self.versions[self.shown] if self.versions else []

    @property
    def answer(self) -> Any | None:
        """The answer the conversation goes on with."""
        return next((m for m in self.answers if chosen(m)), self.answers[0] if self.answers else None)


def turns(messages: Sequence[Any]) -> list[Turn]:
    """Saved messages (with .role, .pane, .hidden, .details) grouped into turns, in order. System
    messages are left out (the system prompt travels with the settings)."""
    out: list[Turn] = []
    for m in messages:
        if m.role == "user":
            out.append(Turn(m))
        elif m.role == "assistant":
            if not out:
                out.append(Turn(None))
            versions = out[-1].versions
            if versions and _same_attempt(versions[-1][-1], m):
                versions[-1].append(m)
            else:
                versions.append([m])
    return out


ANSWERED = ("complete", "stopped", "interrupted")
"""Answers that go back to the model as context (when they have text)."""


def history_of(thread: Sequence[Turn]) -> list[Message]:
    """The turns as the model sees them: each question and the answer on show, if it has text."""
    history = []
    for turn in thread:
        if turn.question is not None:
            history.append(Message(role="user", content=turn.question.text))
        m = turn.answer
        # A hidden answer is an earlier version nobody shows: when Regenerate has hidden them all,
        # the question goes to the model without one (not with the answer being replaced).
        if m is not None and not getattr(m, "hidden", False) and m.status in ANSWERED and m.text:
            history.append(Message(role="assistant", content=m.text))
    return history


def continue_request(built: BuiltRequest, question: Message, partial: str) -> CompletionRequest:
    """`built` (the request that answered `question`), asking the model to carry on from `partial`,
    the answer cut off by the token limit: chat messages end with that answer; a prompt becomes a
    transcript ending with it."""
    req = built.request
    if req.messages is not None:
        return req.model_copy(update={"messages": [*req.messages, Message(role="assistant", content=partial)]})
    prompt = req.prompt or ""
    if not prompt.endswith("Assistant:"):  # a lone question went as-is: write it as a transcript
        prompt = transcript([question])
    return req.model_copy(update={"prompt": f"{prompt} {partial}",
                                  "model_parameters": _with_turn_stop(req.model_parameters)})


def saved_request(thread: Sequence[Turn], index: int) -> CompletionRequest | None:
    """The request that produced the answer on show of `thread[index]`, rebuilt from the saved
    conversation and the settings saved with that answer (None when it cannot be rebuilt)."""
    turn = thread[index]
    answer = turn.answer
    if turn.question is None or answer is None or not answer.model:
        return None
    saved = dict(answer.parameters or {})
    dropped = int(saved.get("dropped_turns") or 0)
    fields = {k: v for k, v in saved.items() if k in ModelParameters.model_fields}
    try:
        parameters = ModelParameters.model_validate(fields) if fields else None
    except ValueError:
        parameters = None
    earlier = history_of(thread[dropped:index])
    built = build_request(
        [*earlier, Message(role="user", content=turn.question.text)], model=answer.model, parameters=parameters,
        system_prompt=saved.get("system_prompt"), api=message_form(saved.get("api") or "completions"),
    )
    options = AnswerOptions.model_validate({k: v for k, v in saved.items() if k in AnswerOptions.model_fields})
    return built.request if options.is_empty() else built.request.model_copy(update={"options": options})
