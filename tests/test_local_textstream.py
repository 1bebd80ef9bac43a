"""Stop sequences across token boundaries, and whole UTF-8 characters only."""

from __future__ import annotations

import pytest

from egp_core.local.textstream import StopScanner, Utf8Joiner


def run(stops: list[str], pieces: list[str]) -> tuple[list[str], bool]:
    scanner = StopScanner(stops)
    out = []
    for piece in pieces:
        text, hit = scanner.feed(piece)
        if text:
            out.append(text)
        if hit:
            return out, True
    rest = scanner.flush()
    return out + ([rest] if rest else []), False


def test_no_stops_passes_everything_through():
    assert run([], ["a", "b"]) == (["a", "b"], False)


def test_stop_inside_one_piece_cuts_before_it():
    assert run(["END"], ["abc", "xyENDzz"]) == (["abc", "xy"], True)


def test_stop_split_across_pieces_is_held_back_and_never_sent():
    assert run(["END"], ["abE", "N", "Dzz"]) == (["ab"], True)


def test_held_text_that_is_not_a_stop_is_released_in_order():
    assert run(["END"], ["abE", "Nx", "y"]) == (["ab", "ENx", "y"], False)


def test_held_text_is_flushed_at_the_end():
    assert run(["END"], ["abEN"]) == (["ab", "EN"], False)


def test_earliest_of_several_stops_wins():
    assert run(["zz", "b"], ["aazzb"]) == (["aa"], True)
    assert run(["xyz", "y"], ["ax", "yz"]) == (["a"], True)  # "xyz" starts first


def test_overlapping_prefixes():
    assert run(["aab"], ["a", "a", "a", "b", "c"]) == (["a"], True)


def test_empty_stop_strings_are_ignored():
    assert run([""], ["ab"]) == (["ab"], False)


@pytest.mark.parametrize("text", ["café", "こんにちは", "🙂 ok", "naïve ✓"])
def test_utf8_joiner_never_splits_a_character(text):
    data = text.encode()
    joiner = Utf8Joiner()
    pieces = [joiner.feed(data[i : i + 1]) for i in range(len(data))]
    assert "".join(pieces) + joiner.flush() == text
    assert all("\ufffd" not in p for p in pieces)


def test_utf8_joiner_reports_a_truncated_character_at_the_end():
    joiner = Utf8Joiner()
    assert joiner.feed("é".encode()[:1]) == ""
    assert joiner.flush() == "\ufffd"
