"""ui.live.finished_blocks: where a streaming answer can be cut into blocks drawn once."""

from ui.live import finished_blocks


def test_cuts_after_the_last_blank_line_followed_by_a_new_block():
    text = "a" * 10 + "\n\n" + "b" * 10 + "\n\n" + "c"
    assert text[: finished_blocks(text, 5)] == "a" * 10 + "\n\n" + "b" * 10 + "\n\n"


def test_nothing_before_min_chars_or_without_a_started_next_block():
    assert finished_blocks("abc\n\ndef", 100) == 0
    assert finished_blocks("abc\n\n", 1) == 0  # the next block may still be indented
    assert finished_blocks("abc\n\ndef", 1) == len("abc\n\n")


def test_never_inside_a_code_fence():
    text = "x" * 10 + "\n\n```\ncode\n\nmore code\n"
    assert text[: finished_blocks(text, 5)] == "x" * 10 + "\n\n"
    closed = text + "```\n\nafter\n\nend"
    assert closed[: finished_blocks(closed, 5)].endswith("after\n\n")


def test_indented_continuations_stay_with_their_block():
    text = "1. item\n\n   continued\n\n2. next\n\nend"
    assert text[: finished_blocks(text, 1)] == "1. item\n\n   continued\n\n2. next\n\n"
    code = "para\n\n    indented code\n\n    more code"
    assert finished_blocks(code, 1) == 0
