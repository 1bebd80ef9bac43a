"""Property: however a valid SSE stream is cut into HTTP chunks and TCP writes, the client reads
the same events. Through a real socket: the fake EGP server writes the pieces exactly as given."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from egp_core.client import EGPClient
from egp_core.types import CompletionRequest

LINE_ENDS = ["\n", "\r\n", "\r"]


def sse_body(texts: list[str], end: str, ascii_only: bool, extras: bool) -> bytes:
    """A valid EGP /v2/completions stream: one event per text, then finish reason and usage."""
    events = [{"completion": {"text": t, "finish_reason": None}, "token_usage": None} for t in texts]
    events.append({"completion": {"text": "", "finish_reason": "stop"},
                   "token_usage": {"prompt": 2, "completion": len(texts), "total": 2 + len(texts)}})
    out = []
    for i, event in enumerate(events):
        if extras and i % 2:  # comments and an event the client ignores, between the real ones
            out.append(f": keep-alive{end}{end}event: ping{end}data: {{}}{end}{end}")
        field = "data:" if extras and i % 3 == 0 else "data: "  # the space after the colon is optional
        out.append(field + json.dumps(event, ensure_ascii=ascii_only) + end + end)
    return "".join(out).encode("utf-8")


def cut(data: bytes, sizes: list[int]) -> list[bytes]:
    """`data` in pieces of the given sizes, used in turn (every piece at least one byte)."""
    pieces, pos, i = [], 0, 0
    while pos < len(data):
        size = sizes[i % len(sizes)]
        pieces.append(data[pos:pos + size])
        pos, i = pos + size, i + 1
    return pieces


def chunked(pieces: list[bytes]) -> bytes:
    """HTTP/1.1 chunked framing, one chunk per piece, sometimes with a chunk extension."""
    framed = [b"%x%s\r\n%s\r\n" % (len(p), b";ext=1" if i % 4 == 3 else b"", p) for i, p in enumerate(pieces)]
    return b"".join(framed) + b"0\r\n\r\n"


texts = st.lists(st.text(min_size=1, max_size=12), max_size=10)
sizes = st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=8)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(texts=texts, end=st.sampled_from(LINE_ENDS), ascii_only=st.booleans(), extras=st.booleans(),
       use_chunks=st.booleans(), chunk_sizes=sizes, write_sizes=sizes)
def test_any_split_of_a_stream_into_writes_yields_the_same_events(
        fake_egp, texts, end, ascii_only, extras, use_chunks, chunk_sizes, write_sizes):
    body = sse_body(texts, end, ascii_only, extras)
    wire = chunked(cut(body, chunk_sizes)) if use_chunks else body
    fake_egp.raw_body(cut(wire, write_sizes), chunked=use_chunks, pause=0.0002)
    with EGPClient(fake_egp.base_url, "key", max_retries=0, read_timeout=10) as client:
        stream = client.stream(CompletionRequest(model="fake-model", prompt="Hi"))
        got = [chunk.text for chunk in stream]
    assert got == texts
    assert stream.finish_reason == "stop"
    assert stream.usage is not None and stream.usage.completion == len(texts)
