"""egp_core.templates: {{variables}} with defaults, checked, listed and filled."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from egp_core.templates import TemplateError, Variable, check, escape, parse, render, render_all, variables


def test_fill_variables_and_defaults():
    template = "Summarise {{text}} in {{words|50}} words for {{audience|a busy reader}}."
    assert variables(template) == [
        Variable("text"),
        Variable("words", "50"),
        Variable("audience", "a busy reader"),
    ]
    assert render(template, {"text": "the memo", "words": 20}) == "Summarise the memo in 20 words for a busy reader."


def test_repeated_variable_is_listed_once_and_filled_everywhere():
    template = "{{x}} and {{y|b}} and {{x}} again"
    assert [v.name for v in variables(template)] == ["x", "y"]
    assert render(template, {"x": "A"}) == "A and b and A again"


def test_a_variable_takes_its_first_default_unless_a_placeholder_has_its_own():
    template = "{{a}} {{a|x}} {{a}} {{a|y}}"
    assert variables(template) == [Variable("a", "x")]
    assert render(template, {}) == "x x x y"
    assert render(template, {"a": "v"}) == "v v v v"


def test_a_system_prompt_and_a_message_share_one_set_of_variables():
    system, user = "You write in a {{tone|formal}} tone for {{reader}}.", "Explain {{topic}} in a {{tone}} way."
    assert variables(system, user) == [Variable("tone", "formal"), Variable("reader"), Variable("topic")]
    assert render_all([system, user], {"reader": "kids", "topic": "rain"}) == [
        "You write in a formal tone for kids.", "Explain rain in a formal way."]
    with pytest.raises(TemplateError) as caught:
        render_all([system, user], {})
    assert caught.value.missing == ("reader", "topic")


def test_default_is_taken_as_written_and_may_be_empty_or_multiline():
    assert variables("{{a|}}") == [Variable("a", "")]
    assert render("[{{a|}}]", {}) == "[]"
    assert render("{{a| two words | and a bar }}", {}) == " two words | and a bar "
    assert render("{{a|line 1\nline 2}}", {}) == "line 1\nline 2"
    assert render("{{a|x}y}}", {}) == "x}y"


def test_none_takes_the_default_and_an_empty_string_is_a_value():
    assert render("<{{a|d}}>", {"a": None}) == "<d>"
    assert render("<{{a|d}}>", {"a": ""}) == "<>"


def test_missing_values_are_named_in_one_plain_error():
    with pytest.raises(TemplateError) as caught:
        render("Dear {{name}},\n{{body}} {{sign|Bob}} {{name}}", {})
    error = caught.value
    assert error.missing == ("name", "body")
    assert str(error) == "Fill in name and body: the prompt has no value for them."
    assert (error.position, error.line, error.column) == (5, 1, 6)
    with pytest.raises(TemplateError, match=r"^Fill in topic: the prompt has no value for it\.$"):
        render("{{topic}}", {"other": "x"})


def test_literal_braces_escape_and_lone_closing_braces():
    assert render("\\{{not a variable}} {{a}}", {"a": "1"}) == "{{not a variable}} 1"
    assert variables("\\{{x}}") == []
    assert render("a }} b } c {", {}) == "a }} b } c {"
    assert render("back\\slash \\n", {}) == "back\\slash \\n"
    assert render("{{a}}}", {"a": "1"}) == "1}"


@pytest.mark.parametrize(
    ("template", "position", "words"),
    [
        ("Hi {{name", 3, "never closed"),
        ("Hi {{name}", 3, "never closed"),
        ("{{a {{b}}", 0, "never closed"),
        ("{{}}", 0, "has no name"),
        ("{{|default}}", 0, "has no name"),
        ("{{   }}", 0, "has no name"),
        ("x\n  {{first name}}", 4, "{{first name}} has a space in its name: names are letters, digits and _ only, like {{first_name}}"),
        ("{{ name }}", 0, "like {{name}}"),
        ("{{a-b}}", 0, "has '-' in its name"),
        ("{{{a}}", 0, "has '{' in its name"),
    ],
)
def test_malformed_placeholders_say_what_and_where(template, position, words):
    with pytest.raises(TemplateError) as caught:
        check(template)
    error = caught.value
    assert words in error.message
    assert error.position == position
    line = template.count("\n", 0, position) + 1
    assert f"(line {line}, column {error.column})." in error.message
    assert error.missing == ()
    with pytest.raises(TemplateError):
        render(template, {"name": "x", "a": "x", "b": "x"})
    with pytest.raises(TemplateError):
        variables(template)


def test_error_position_counts_lines_and_columns():
    with pytest.raises(TemplateError) as caught:
        check("one\ntwo\nthree {{bad name}}")
    assert (caught.value.line, caught.value.column) == (3, 7)
    assert caught.value.message.endswith("(line 3, column 7).")


def test_parse_keeps_text_and_placeholders_in_order():
    parts = parse("a{{x}}b{{y|z}}")
    assert parts[0] == "a" and parts[2] == "b"
    assert (parts[1].name, parts[1].default, parts[1].position) == ("x", None, 1)
    assert (parts[3].name, parts[3].default, parts[3].position) == ("y", "z", 7)


# ---- properties -------------------------------------------------------------

NAMES = st.from_regex(r"[A-Za-z0-9_]{1,12}", fullmatch=True)
VALUES = st.text(max_size=30)


def _plain(text: str) -> bool:
    """Text that can sit right before a placeholder without touching its braces."""
    return not text.endswith(("\\", "{"))


LITERALS = st.text(max_size=20).filter(_plain)
DEFAULTS = st.none() | st.text(max_size=15).filter(lambda d: "{{" not in d and "}}" not in d and not d.endswith("}"))


@settings(deadline=None)  # timings on a shared machine are noise, not failures
@given(st.text().filter(lambda t: "{{" not in t))
def test_text_without_open_braces_renders_to_itself(text):
    assert render(text, {}) == text
    assert variables(text) == []


@settings(deadline=None)  # timings on a shared machine are noise, not failures
@given(st.text())
def test_escaped_text_renders_to_itself(text):
    assert render(escape(text), {}) == text
    assert variables(escape(text)) == []


@settings(deadline=None)  # timings on a shared machine are noise, not failures
@given(st.lists(st.tuples(LITERALS, NAMES, DEFAULTS), max_size=6), LITERALS, st.dictionaries(NAMES, VALUES))
def test_fill_then_extract_round_trips(pieces, tail, values):
    template = "".join(escape(text) + "{{" + name + ("" if default is None else "|" + default) + "}}"
                       for text, name, default in pieces) + escape(tail)
    expected_vars: dict[str, Variable] = {}
    for _, name, default in pieces:
        if name not in expected_vars or expected_vars[name].default is None:
            expected_vars[name] = Variable(name, default)
    assert variables(template) == list(expected_vars.values())

    filled = {name: values.get(name, f"<{name}>") for name in expected_vars}
    expected = "".join(text + filled[name] for text, name, _ in pieces) + tail
    assert render(template, filled) == expected

    required = [v.name for v in expected_vars.values() if v.default is None]
    if required:
        with pytest.raises(TemplateError) as caught:
            render(template, {})
        assert caught.value.missing == tuple(required)
    else:
        own_or_first = [d if d is not None else expected_vars[name].default for _, name, d in pieces]
        assert render(template, {}) == "".join(t + d for (t, _, _), d in zip(pieces, own_or_first, strict=True)) + tail


BAD_NAMES = st.text(max_size=12).filter(
    lambda n: not re.fullmatch(r"[A-Za-z0-9_]+", n) and "|" not in n and "{{" not in n and "}}" not in n and not n.endswith("}")
)


@settings(deadline=None)  # timings on a shared machine are noise, not failures
@given(LITERALS, BAD_NAMES, st.text(max_size=10), st.text(max_size=20))
def test_bad_names_always_raise_the_same_plain_error(before, name, default, after):
    if "{{" in default or "}}" in default:
        default = ""
    template = escape(before) + "{{" + name + "|" + default + "}}" + escape(after)
    with pytest.raises(TemplateError) as caught:
        render(template, {})
    assert type(caught.value) is TemplateError
    assert caught.value.position == len(escape(before))
    assert caught.value.message.startswith("The template ")
    assert "Traceback" not in caught.value.message


@settings(deadline=None)  # timings on a shared machine are noise, not failures
@given(LITERALS, st.text(max_size=20).filter(lambda t: "}}" not in t))
def test_unclosed_braces_always_raise_the_same_plain_error(before, rest):
    template = escape(before) + "{{" + rest
    with pytest.raises(TemplateError) as caught:
        variables(template)
    assert type(caught.value) is TemplateError
    assert caught.value.position == len(escape(before))
    assert "never closed" in caught.value.message
