"""ui.text: answers cut into blocks the same way live and saved, line breaks kept, text shown as typed."""

from hypothesis import given, settings
from hypothesis import strategies as st

from ui.text import blocks, finished_blocks, keep_line_breaks


def test_cuts_at_the_first_blank_line_after_min_chars_followed_by_a_new_block():
    text = "a" * 10 + "\n\n" + "b" * 10 + "\n\n" + "c"
    assert text[: finished_blocks(text, 5)] == "a" * 10 + "\n\n"
    assert blocks(text, 5) == ["a" * 10 + "\n\n", "b" * 10 + "\n\n", "c"]


def test_nothing_before_min_chars_or_without_a_started_next_block():
    assert finished_blocks("abc\n\ndef", 100) == 0
    assert finished_blocks("abc\n\n", 1) == 0  # the next block may still be indented
    assert finished_blocks("abc\n\ndef", 1) == len("abc\n\n")


def test_never_inside_a_code_fence():
    text = "x" * 10 + "\n\n```\ncode\n\nmore code\n"
    assert blocks(text, 5) == ["x" * 10 + "\n\n", "```\ncode\n\nmore code\n"]
    closed = text + "```\n\nafter\n\nend"
    assert blocks(closed, 5) == ["x" * 10 + "\n\n", "```\ncode\n\nmore code\n```\n\n", "after\n\n", "end"]


def test_indented_continuations_stay_with_their_block():
    text = "1. item\n\n   continued\n\n2. next\n\nend"
    assert blocks(text, 1) == ["1. item\n\n   continued\n\n", "2. next\n\n", "end"]
    code = "para\n\n    indented code\n\n    more code"
    assert finished_blocks(code, 1) == 0


PIECES = st.sampled_from(["word ", "Word. ", "\n", "\n\n", "- item\n", "  indented\n", "```\n", "code()\n", "#"])


@settings(max_examples=200, deadline=None)
@given(parts=st.lists(PIECES, max_size=60), min_chars=st.integers(1, 40), steps=st.lists(st.integers(1, 30)))
def test_a_streaming_answer_is_cut_exactly_like_the_saved_one(parts, min_chars, steps):
    """The live view cuts the growing text at each redraw; the saved view cuts the whole text once."""
    text = "".join(parts)
    drawn, done, shown = [], 0, 0
    for step in [*steps, len(text)]:
        shown = min(len(text), shown + step)
        while cut := finished_blocks(text[done:shown], min_chars):
            drawn.append(text[done:done + cut])
            done += cut
    assert [*drawn, text[done:]] == blocks(text, min_chars)
    assert "".join(blocks(text, min_chars)) == text


def test_single_line_breaks_become_hard_breaks():
    poem = "Roses are red\nViolets are blue\n\nSugar is sweet"
    assert keep_line_breaks(poem) == "Roses are red  \nViolets are blue\n\nSugar is sweet"


def test_code_fences_and_tables_are_left_alone():
    text = "Look:\n```python\nx = 1\ny = 2\n```\n| a | b |\n|---|---|\n| 1 | 2 |\n| 3 | 4 |\nafter"
    out = keep_line_breaks(text)
    assert "x = 1\ny = 2\n```\n" in out
    assert "| a | b |\n|---|---|\n| 1 | 2 |\n| 3 | 4 |\n" in out
    assert out.startswith("Look:\n```")  # a break before a fence would change nothing; none is added


def test_lists_keep_their_items():
    assert keep_line_breaks("- one\n- two\n  more of two") == "- one  \n- two  \n  more of two"
