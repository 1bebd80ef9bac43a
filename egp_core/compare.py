"""A comparison's threads: its turns (a question, then one answer per pane), and each pane's
conversation as its model sees it.

A comparison is saved in order: the question, then one answer per pane (`message.pane` = the
pane's index); a follow-up adds the next question and again one answer per pane. Regenerating a
pane hides its answer of the last turn and adds a new one: in each turn, a pane shows its newest
answer that is not hidden. Each pane's thread is every question and that pane's own answers,
never another pane's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from egp_core.chat import ANSWERED
from egp_core.types import Message


@dataclass(slots=True)
class CompareTurn:
    """One question of a comparison and each pane's answer on show, by pane index."""

    question: Any
    answers: dict[int, Any] = field(default_factory=dict)

    def in_order(self) -> list[Any]:
        return [self.answers[p] for p in sorted(self.answers)]


def compare_turns(messages: Sequence[Any]) -> list[CompareTurn]:
    """Saved messages (with .role, .pane, .hidden) grouped into turns, in order. Answers before any
    question, or without a pane, are left out."""
    out: list[CompareTurn] = []
    for m in messages:
        if m.role == "user":
            out.append(CompareTurn(m))
        elif m.role == "assistant" and out and m.pane is not None:
            current = out[-1].answers.get(m.pane)
            if current is None or not getattr(m, "hidden", False) or getattr(current, "hidden", False):
                out[-1].answers[m.pane] = m
    return out


def pane_thread(turns: Sequence[CompareTurn], pane: int) -> list[Message]:
    """What pane `pane` sends to answer the last of `turns`: every question, each earlier one
    followed by this pane's own answer (when it has text)."""
    history: list[Message] = []
    for i, turn in enumerate(turns):
        history.append(Message(role="user", content=turn.question.text))
        m = turn.answers.get(pane)
        if i < len(turns) - 1 and m is not None and m.status in ANSWERED and m.text:
            history.append(Message(role="assistant", content=m.text))
    return history
