"""egp_core.chat: conversation -> request, context trimming, titles."""

from __future__ import annotations

import pytest

from egp_core.chat import BuiltRequest, build_request, estimate_tokens, title_from, transcript
from egp_core.types import Message, ModelParameters


def U(text: str) -> Message:
    return Message(role="user", content=text)


def A(text: str) -> Message:
    return Message(role="assistant", content=text)


def test_single_question_without_system_prompt_is_sent_as_is():
    built = build_request([U("What is 2+2?")], model="m", parameters=None, system_prompt=None)
    assert isinstance(built, BuiltRequest)
    assert built.request.prompt == "What is 2+2?"
    assert built.request.messages is None
    assert built.request.model == "m"
    assert built.request.model_parameters is None
    assert built.dropped_turns == 0
    assert built.prompt_tokens_estimate == estimate_tokens("What is 2+2?")


def test_multi_turn_transcript_and_turn_stop():
    params = ModelParameters(temperature=0.0, max_tokens=20)
    history = [U("Hi"), A("Hello! How can I help?"), U("Tell me a joke")]
    built = build_request(history, model="m", parameters=params, system_prompt="Be brief.")
    assert built.request.prompt == (
        "System: Be brief.\n\nUser: Hi\n\nAssistant: Hello! How can I help?\n\nUser: Tell me a joke\n\nAssistant:"
    )
    assert built.request.parameters.stop_sequences == ["\nUser:"]
    assert built.request.parameters.max_tokens == 20
    assert params.stop_sequences is None  # the caller's parameters are not modified


def test_system_prompt_with_single_question_uses_transcript():
    built = build_request([U("Q")], model="m", parameters=None, system_prompt="You are a pirate.")
    assert built.request.prompt == "System: You are a pirate.\n\nUser: Q\n\nAssistant:"
    assert built.request.parameters.stop_sequences == ["\nUser:"]


def test_blank_system_prompt_counts_as_none():
    built = build_request([U("Q")], model="m", parameters=None, system_prompt="   ")
    assert built.request.prompt == "Q"


def test_turn_stop_not_added_when_stops_are_full_or_already_there():
    full = ModelParameters(stop_sequences=["a", "b", "c", "d"])
    built = build_request([U("x"), A("y"), U("z")], model="m", parameters=full, system_prompt=None)
    assert built.request.parameters.stop_sequences == ["a", "b", "c", "d"]
    has = ModelParameters(stop_sequences=["\nUser:", "###"])
    built = build_request([U("x"), A("y"), U("z")], model="m", parameters=has, system_prompt=None)
    assert built.request.parameters.stop_sequences == ["\nUser:", "###"]
    one = ModelParameters(stop_sequences=["###"])
    built = build_request([U("x"), A("y"), U("z")], model="m", parameters=one, system_prompt=None)
    assert built.request.parameters.stop_sequences == ["###", "\nUser:"]


def test_chat_api_sends_messages_with_system_first():
    history = [U("Hi"), A("Hello"), U("Again")]
    built = build_request(history, model="m", parameters=None, system_prompt="Sys", api="chat")
    req = built.request
    assert req.prompt is None
    assert [(m.role, m.content) for m in req.messages] == [
        ("system", "Sys"), ("user", "Hi"), ("assistant", "Hello"), ("user", "Again"),
    ]
    assert req.chat_body(stream=True)["messages"][0] == {"role": "system", "content": "Sys"}


def test_system_message_inside_history_is_used_when_no_system_prompt():
    history = [Message(role="system", content="S"), U("Q")]
    built = build_request(history, model="m", parameters=None, system_prompt=None, api="chat")
    assert [m.role for m in built.request.messages] == ["system", "user"]


def test_oldest_turns_dropped_until_it_fits():
    words = lambda n: len(n.split())  # noqa: E731 - one token per word, easy to reason about
    history = [U("one two three"), A("four five"), U("six seven"), A("eight nine ten"), U("eleven")]
    # Full transcript: "User: one two three\n\nAssistant: four five\n\n..." counted in words.
    full = build_request(history, model="m", parameters=None, system_prompt=None, count_tokens=words)
    assert full.dropped_turns == 0
    size = full.prompt_tokens_estimate
    built = build_request(
        history, model="m", parameters=None, system_prompt=None,
        context_tokens=size + 10 - 1, count_tokens=words, reserve_tokens=10,
    )
    assert built.dropped_turns == 1
    assert built.request.prompt.startswith("User: six seven")
    assert built.fits
    assert built.prompt_tokens_estimate + 10 <= size + 9


def test_question_never_dropped_and_reserve_defaults_to_max_tokens():
    history = [U("a " * 100), A("b " * 100), U("the question")]
    built = build_request(
        history, model="m", parameters=ModelParameters(max_tokens=50), system_prompt=None,
        context_tokens=60,
    )
    assert built.dropped_turns == 1
    assert built.request.prompt == "the question"  # nothing earlier left: sent as-is
    assert built.fits
    tight = build_request(
        history, model="m", parameters=ModelParameters(max_tokens=59), system_prompt=None,
        context_tokens=60,
    )
    assert tight.dropped_turns == 1
    assert tight.request.prompt == "the question"
    assert not tight.fits


def test_default_reserve_is_256():
    history = [U("x" * 400), A("y"), U("q")]
    fits = build_request(history, model="m", parameters=None, system_prompt=None, context_tokens=256 + 200)
    assert fits.dropped_turns == 0
    trimmed = build_request(history, model="m", parameters=None, system_prompt=None, context_tokens=256 + 50)
    assert trimmed.dropped_turns == 1


def test_system_prompt_is_kept_when_trimming_chat():
    history = [U("a " * 200), A("b"), U("q")]
    built = build_request(
        history, model="m", parameters=None, system_prompt="Sys", api="chat",
        context_tokens=200, reserve_tokens=100,
    )
    assert built.dropped_turns == 1
    assert [m.role for m in built.request.messages] == ["system", "user"]


def test_bad_input():
    with pytest.raises(ValueError):
        build_request([], model="m", parameters=None, system_prompt=None)
    with pytest.raises(ValueError):
        build_request([U("q")], model="m", parameters=None, system_prompt=None, api="other")


def test_transcript():
    assert transcript([U("a"), A("b")]) == "User: a\n\nAssistant: b\n\nAssistant:"


@pytest.mark.parametrize(
    ("question", "title"),
    [
        ("What is the capital of France?", "What is the capital of France?"),
        ("  Explain\nthis   code\tplease ", "Explain this code please"),
        ("", "New chat"),
        ("   \n ", "New chat"),
        ("# Heading question", "# Heading question"),  # as typed: the page shows it literally
        ("2*3*4", "2*3*4"),
    ],
)
def test_title_from(question, title):
    assert title_from(question) == title


def test_long_title_is_cut_at_a_word():
    q = "Please write a detailed comparison of the economic policies of several countries over decades"
    t = title_from(q)
    assert t.endswith("…")
    assert len(t) <= 48
    assert "\n" not in t
    assert q.startswith(t[:-1])
    assert t[:-1].endswith("of") or t[-2] != " "
    unbroken = title_from("x" * 100)
    assert unbroken == "x" * 47 + "…"


def test_empty_answers_are_left_out():
    history = [U("first"), A(""), U("second"), A("  "), U("third")]
    built = build_request(history, model="m", parameters=None, system_prompt=None)
    assert built.request.prompt == "User: first\n\nUser: second\n\nUser: third\n\nAssistant:"
    chat = build_request(history, model="m", parameters=None, system_prompt=None, api="chat")
    assert [m.role for m in chat.request.messages] == ["user", "user", "user"]


def test_turns_group_versions_and_candidates_and_show_the_newest_not_hidden():
    from types import SimpleNamespace

    from egp_core.chat import turns

    def m(role, hidden=False, pane=None, chosen=None):
        return SimpleNamespace(role=role, hidden=hidden, pane=pane,
                               details=None if chosen is None else {"chosen": chosen})

    q1, a1, a2, q2, a3 = m("user"), m("assistant", hidden=True), m("assistant"), m("user"), m("assistant", True)
    c0, c1 = m("assistant", pane=0, chosen=False), m("assistant", pane=1, chosen=True)
    grouped = turns([m("system"), q1, a1, a2, q2, a3, c0, c1])
    assert [(t.question, t.versions) for t in grouped] == [(q1, [[a1], [a2]]), (q2, [[a3], [c0, c1]])]
    assert grouped[0].answer is a2 and grouped[0].shown == 1
    assert grouped[1].answers == [c0, c1] and grouped[1].answer is c1  # the candidate picked
    c1.hidden = c0.hidden = True
    assert grouped[1].shown == 1  # all hidden: the newest
    assert turns([a2])[0].question is None and turns([q1])[0].answer is None and turns([q1])[0].shown == -1


def test_an_answer_being_regenerated_is_not_sent_back_to_the_model():
    from types import SimpleNamespace

    from egp_core.chat import history_of, turns

    def m(role, text, hidden=False, pane=None):
        return SimpleNamespace(role=role, text=text, hidden=hidden, pane=pane, status="complete", details=None)

    q, old0, old1 = m("user", "Q"), m("assistant", "A0", True, 0), m("assistant", "A1", True, 1)
    assert [(h.role, h.content) for h in history_of(turns([q, old0, old1]))] == [("user", "Q")]
    assert [h.content for h in history_of(turns([q, old0, old1, m("assistant", "B")]))] == ["Q", "B"]


def test_continue_request_ends_with_the_cut_off_answer():
    from egp_core.chat import continue_request

    q = U("Tell me more")
    chat = continue_request(build_request([q], model="m", parameters=None, system_prompt=None, api="chat"), q, "Half")
    assert [(m.role, m.content) for m in chat.messages] == [("user", "Tell me more"), ("assistant", "Half")]
    sys = build_request([q], model="m", parameters=None, system_prompt="Be kind.")
    text = continue_request(sys, q, "Half")
    assert text.prompt == "System: Be kind.\n\nUser: Tell me more\n\nAssistant: Half"
    assert "\nUser:" in text.model_parameters.stop_sequences
