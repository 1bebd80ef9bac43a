"""egp_core.sse on its own: chunked framing and SSE blocks, split at every possible place."""

from __future__ import annotations

import io

import pytest

from egp_core.sse import EventSource, StreamCut, _dechunk


class Trickle(io.RawIOBase):
    """A byte source that hands out at most `step` bytes per read, like a slow socket."""

    def __init__(self, data: bytes, step: int) -> None:
        self.data, self.step, self.pos = data, step, 0

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:  # type: ignore[no-untyped-def]
        n = min(self.step, len(b), len(self.data) - self.pos)
        b[:n] = self.data[self.pos:self.pos + n]
        self.pos += n
        return n


def dechunk(data: bytes, step: int) -> bytes:
    return b"".join(_dechunk(io.BufferedReader(Trickle(data, step), buffer_size=max(step, 1))))


BODY = b"4\r\ndata\r\n5;ext=1\r\n: xyz\r\n1a\r\n" + b"z" * 26 + b"\r\n0\r\n"


@pytest.mark.parametrize("step", [1, 2, 3, 7, 64, 100000])
def test_dechunk_any_split_with_extensions_and_trailers(step):
    assert dechunk(BODY + b"\r\n", step) == b"data: xyz" + b"z" * 26
    assert dechunk(BODY + b"X-Trailer: 1\r\n\r\n", step) == b"data: xyz" + b"z" * 26


@pytest.mark.parametrize("body", [BODY[:10], BODY[:-3], b"zz\r\nabc\r\n"])
def test_dechunk_cut_or_bad_framing_is_stream_cut(body):
    with pytest.raises(StreamCut):
        dechunk(body, 3)


@pytest.mark.parametrize("sep", [b"\n", b"\r\n", b"\r"])
def test_event_source_handles_any_line_ending_split_anywhere(sep):
    stream = sep.join([b": comment", b"data: {\"a\": 1}", b"", b"event: error", b"data: bad", b"", b"data:",
                       b"", b"data: line1", b"data: line2", b"", b"id: 7", b"data:no-space", b"", b"data: last",
                       b"", b""])
    for step in (1, 2, 3, 5, len(stream)):
        pieces = [stream[i:i + step] for i in range(0, len(stream), step)]
        events = [(e.event, e.data) for e in EventSource(pieces).events()]
        assert events == [("message", '{"a": 1}'), ("error", "bad"), ("message", "line1\nline2"),
                          ("message", "no-space"), ("message", "last")], step


def test_event_source_utf8_split_inside_a_character():
    data = "data: {\"text\": \"héllo ✓\"}\n\n".encode()
    pieces = [data[i:i + 1] for i in range(len(data))]
    assert [e.data for e in EventSource(pieces).events()] == ['{"text": "héllo ✓"}']
