"""Conversation -> request: a transcript prompt for completions, or chat messages.

`build_request` keeps the newest question and as many of the latest earlier
turns as fit the model's context; `title_from` names a conversation.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from egp_core.types import CompletionRequest, Message, ModelParameters

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
    """A short one-line title from the first question ("New chat" when it is empty)."""
    text = re.sub(r"\s+", " ", question).strip()
    text = text.lstrip("#>*-` ").strip() or text
    if not text:
        return "New chat"
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space >= limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,.;:-") + "…"
