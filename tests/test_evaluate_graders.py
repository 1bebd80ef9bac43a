"""egp_core.evaluate.graders: each rule-based grader on known answers, the judge's prompt and parsing."""

from __future__ import annotations

import pytest

from egp_core.evaluate.graders import (
    DEFAULT_JUDGE_PROMPT,
    check_spec,
    first_number,
    grade,
    judge_prompt,
    parse_judge,
)


def passed(spec, output, expected=None):
    return grade(spec, output, expected).passed


def test_contains_ignores_case_and_spacing_by_default():
    assert passed({"kind": "contains"}, "The capital is  PARIS.", "paris")
    assert not passed({"kind": "contains"}, "The capital is Lyon.", "Paris")
    assert not passed({"kind": "contains", "ignore_case": False}, "paris", "Paris")


def test_equals_with_and_without_options():
    assert passed({"kind": "equals"}, "Paris", "Paris")
    assert not passed({"kind": "equals"}, "paris", "Paris")
    assert passed({"kind": "equals", "ignore_case": True}, "paris", "Paris")
    assert not passed({"kind": "equals", "ignore_case": True}, "New  York", "new york")
    assert passed({"kind": "equals", "ignore_case": True, "ignore_whitespace": True}, " New \n York ", "new york")


def test_a_row_without_expected_answer_is_not_graded():
    g = grade({"kind": "equals"}, "x", "")
    assert g.passed is None and "No expected answer" in g.note


def test_regex():
    assert passed({"kind": "regex", "pattern": r"^\d{3}$"}, "123")
    assert passed({"kind": "regex", "pattern": r"^\d{3}$"}, "answer:\n123")  # multiline
    assert not passed({"kind": "regex", "pattern": r"^\d{3}$"}, "12a")
    assert "not valid" in check_spec({"kind": "regex", "pattern": "(unclosed"})
    assert check_spec({"kind": "regex", "pattern": ""})


def test_json_and_json_schema():
    assert passed({"kind": "json"}, '{"a": 1}')
    assert passed({"kind": "json"}, '```json\n{"a": 1}\n```')
    g = grade({"kind": "json"}, "{a: 1}", None)
    assert g.passed is False and g.note.startswith("This answer is not valid JSON")
    schema = {"type": "object", "properties": {"age": {"type": "integer"}}, "required": ["age"]}
    assert passed({"kind": "json_schema", "schema": schema}, '{"age": 3}')
    bad = grade({"kind": "json_schema", "schema": schema}, '{"age": "three"}', None)
    assert bad.passed is False and "age" in bad.note and "integer" in bad.note
    assert not passed({"kind": "json_schema", "schema": schema}, "{}")
    assert check_spec({"kind": "json_schema", "schema": schema}) is None
    assert "not valid" in check_spec({"kind": "json_schema", "schema": {"type": "nonsense"}})
    assert "not valid JSON" in check_spec({"kind": "json_schema", "schema": "{oops"})


def test_number_within_tolerance():
    spec = {"kind": "number", "tolerance": 0.01}
    assert passed(spec, "It is about 3.14159.", "3.14")
    assert not passed(spec, "3.2", "3.14")
    assert passed({"kind": "number"}, "1,234 people", "1234")
    assert passed({"kind": "number", "tolerance": 0}, "-2.5e3", "-2500")
    g = grade(spec, "I don't know", "3")
    assert g.passed is False and "no number" in g.note
    assert check_spec({"kind": "number", "tolerance": -1})
    assert check_spec({"kind": "number", "tolerance": "abc"})
    assert first_number("no digits here.") is None


def test_unknown_kind():
    assert check_spec({"kind": "vibes"}) == "Unknown grader 'vibes'."


def test_judge_prompt_is_the_editable_template_filled():
    spec = {"kind": "judge", "model": "m", "rubric": "Be kind."}
    text = judge_prompt(spec, "What is 2+2?", "4", "4")
    assert "Rubric: Be kind." in text and "What is 2+2?" in text and "Score: <1-5>" in text
    custom = {"kind": "judge", "model": "m", "prompt": "Q={{question}} A={{answer}} E={{expected}} R={{rubric}}"}
    assert judge_prompt(custom, "q", "a", None).startswith("Q=q A=a E= R=")
    assert "{{" in DEFAULT_JUDGE_PROMPT
    assert check_spec({"kind": "judge", "model": "m", "prompt": "{{unknown}}"})  # a variable we cannot fill
    assert check_spec({"kind": "judge", "model": "", "prompt": ""}) == "Pick the model that judges the answers."


@pytest.mark.parametrize(
    ("reply", "score", "reason"),
    [
        ("Score: 4\nReason: Correct but terse.", 4, "Correct but terse."),
        ("**Score:** 5\n**Reason:** Perfect.", 5, "Perfect."),
        ('{"score": 2, "reason": "Wrong city."}', 2, "Wrong city."),
        ('```json\n{"score": 3, "reason": "Partly."}\n```', 3, "Partly."),
        ("I would rate this 3/5 because it misses the date.", 3, "it misses the date."),
        ("4 out of 5. Good answer.", 4, "Good answer."),
        ("The score is 1. It is wrong.", 1, "It is wrong."),
        ("5", 5, ""),
    ],
)
def test_judge_replies_are_read_robustly(reply, score, reason):
    g = parse_judge(reply)
    assert g.score == score
    assert g.note == reason
    assert g.passed is (score >= 4)


@pytest.mark.parametrize("reply", ["", "I cannot grade this.", "Score: 9", "Score: excellent"])
def test_a_judge_without_a_score_is_reported_plainly(reply):
    g = parse_judge(reply)
    assert g.passed is None and g.score is None
    assert g.note.startswith("The judge gave no score")
