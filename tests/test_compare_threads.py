"""egp_core.compare: a comparison's turns and each pane's own thread, without Streamlit."""

from __future__ import annotations

from dataclasses import dataclass

from egp_core.compare import compare_turns, pane_thread
from egp_core.types import Message


@dataclass
class Saved:
    role: str
    text: str
    pane: int | None = None
    status: str = "complete"
    hidden: bool = False
    id: str = ""


def conversation() -> list[Saved]:
    return [
        Saved("user", "First?"), Saved("assistant", "A1", 0), Saved("assistant", "B1", 1),
        Saved("user", "Second?"), Saved("assistant", "A2", 0), Saved("assistant", "B2", 1),
    ]


def test_turns_group_each_question_with_one_answer_per_pane():
    turns = compare_turns(conversation())
    assert [t.question.text for t in turns] == ["First?", "Second?"]
    assert [[m.text for m in t.in_order()] for t in turns] == [["A1", "B1"], ["A2", "B2"]]


def test_a_panes_thread_has_every_question_and_only_its_own_answers():
    turns = compare_turns(conversation())
    assert pane_thread(turns, 0) == [
        Message(role="user", content="First?"), Message(role="assistant", content="A1"),
        Message(role="user", content="Second?"),
    ]
    assert [m.content for m in pane_thread(turns, 1)] == ["First?", "B1", "Second?"]
    assert [m.content for m in pane_thread(turns[:1], 1)] == ["First?"]


def test_a_regenerated_answer_replaces_the_hidden_one_and_answers_without_text_are_left_out():
    msgs = conversation()
    msgs[1].hidden = True  # pane 0's first answer was regenerated: the new one comes later
    msgs.insert(3, Saved("assistant", "A1 again", 0))
    msgs[2].status, msgs[2].text = "error", ""
    turns = compare_turns(msgs)
    assert [m.text for m in turns[0].in_order()] == ["A1 again", ""]
    assert [m.content for m in pane_thread(turns, 0)] == ["First?", "A1 again", "Second?"]
    assert [m.content for m in pane_thread(turns, 1)] == ["First?", "Second?"]


def test_when_every_version_is_hidden_the_newest_shows_and_strays_are_ignored():
    msgs = [Saved("assistant", "before any question", 0), Saved("user", "Q"),
            Saved("assistant", "old", 0, hidden=True), Saved("assistant", "new", 0, hidden=True),
            Saved("assistant", "no pane", None)]
    turns = compare_turns(msgs)
    assert len(turns) == 1 and [m.text for m in turns[0].in_order()] == ["new"]
    assert compare_turns([]) == []
