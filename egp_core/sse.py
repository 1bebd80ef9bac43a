"""Reading a server-sent-event stream off a `requests` response, fast.

Two layers, each a fix at the depth where the profile said time went
(see bench/stream_client.py for the measurements):

* `iter_body(response)` yields the body bytes as they arrive. For the usual
  chunked, uncompressed stream it reads whatever the socket has (up to 64 KiB)
  and removes the chunk framing itself, so a burst of many small events costs
  one read instead of three urllib3 calls per event; at the clean end of the
  stream it hands the connection back to the pool, as urllib3 does. Anything
  else (compressed, close-delimited, Content-Length) goes through urllib3's own
  `read1`, which never waits to fill a block.
* `EventSource` is sseclient-py's `SSEClient` with its two hot loops replaced:
  `_read` splits on blank lines with `bytes.split` instead of stitching line by
  line, and `events()` (with its cheaper twin `messages()`, which yields
  (event name, data) pairs) turns the common one-line `data:` event straight
  into its result; every other block (comments, `event:`, `id:`, multi-line data) is
  parsed by sseclient-py's own code, so the SSE rules stay theirs.

Neither waits for more bytes than have arrived, so the first event is seen as
soon as its bytes are.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable, Iterator
from typing import Any

import requests
import sseclient

READ_SIZE = 65536


class StreamCut(Exception):
    """The body ended before the server finished it (no last chunk)."""


def response_socket(response: requests.Response) -> socket.socket | None:
    """The socket under a streamed response (urllib3's public `HTTPResponse.connection`), if any."""
    conn = getattr(response.raw, "connection", None)
    return getattr(conn, "sock", None)


def socket_file(response: requests.Response) -> Any:
    """The buffered socket file under a chunked, uncompressed streamed response, or None.

    The one private piece of urllib3 this module reads: `HTTPResponse._fp` (the http.client
    response) and its `fp`. urllib3 has no public way to read whatever the socket has without
    its per-chunk overhead. requirements.txt bounds urllib3's version, and
    tests/test_library_internals.py fails, naming this, if an upgrade moves it; without it
    `iter_body` still works, through urllib3's public `read1`, only slower."""
    raw = response.raw
    encoding = raw.headers.get("content-encoding", "identity").lower()
    fp = getattr(getattr(raw, "_fp", None), "fp", None)
    if raw.chunked and encoding in ("", "identity") and fp is not None and hasattr(fp, "read1"):
        return fp
    return None


def iter_body(response: requests.Response) -> Iterator[bytes]:
    """Body bytes of a streamed response as they arrive. Raises StreamCut, OSError, urllib3 errors."""
    raw = response.raw
    fp = socket_file(response)
    if fp is not None:
        yield from _dechunk(fp)
        # Clean end: close the http.client response (the same private object as above) and hand
        # the connection back to the pool for the next request.
        raw._fp.close()
        raw.release_conn()
        return
    while True:
        data = raw.read1(READ_SIZE, decode_content=True)
        if not data:
            return
        yield data


def _dechunk(fp) -> Iterator[bytes]:
    """Undo HTTP/1.1 chunked framing, reading whatever is available each time."""
    buf = b""
    while True:
        data = fp.read1(READ_SIZE)
        if not data:
            raise StreamCut("connection closed before the last chunk")
        buf = buf + data if buf else data
        pos, end_of_buf, out = 0, len(buf), []
        while True:
            nl = buf.find(b"\r\n", pos)
            if nl < 0:
                break
            try:
                size = int(buf[pos:nl].split(b";", 1)[0], 16)
            except ValueError:
                raise StreamCut(f"bad chunk size line {buf[pos:nl][:40]!r}") from None
            if size == 0:
                if out:
                    yield b"".join(out)
                _skip_trailers(fp, buf[nl + 2:])
                return
            stop = nl + 2 + size
            if stop + 2 > end_of_buf:
                break
            out.append(buf[nl + 2:stop])
            pos = stop + 2
        buf = buf[pos:]
        if out:
            yield b"".join(out)


def _skip_trailers(fp, rest: bytes) -> None:
    """Read up to the blank line that ends the chunked body."""
    while b"\r\n\r\n" not in b"\r\n" + rest:
        more = fp.read1(READ_SIZE)
        if not more:
            raise StreamCut("connection closed inside the trailers")
        rest += more


class EventSource(sseclient.SSEClient):
    """sseclient-py's SSEClient over any iterable of bytes, with faster block splitting."""

    def __init__(self, source: Iterable[bytes], char_enc: str = "utf-8") -> None:
        super().__init__(source, char_enc)

    def _read(self) -> Iterator[bytes]:
        """Yield each event block (without its blank line), whatever the line endings."""
        buf = b""
        for chunk in self._event_source:
            buf = buf + chunk if buf else chunk
            if b"\r" in buf:
                tail = b"\r" if buf.endswith(b"\r") else b""  # maybe half of a CRLF
                body = buf[:-1] if tail else buf
                buf = body.replace(b"\r\n", b"\n").replace(b"\r", b"\n") + tail
            if b"\n\n" not in buf:
                continue
            blocks = buf.split(b"\n\n")
            buf = blocks.pop()
            yield from blocks
        if buf.strip(b"\r\n"):
            yield buf

    def messages(self) -> Iterator[tuple[str, str]]:
        """(event name, data) for each event that has data; the cheap form of events()."""
        enc = self._char_enc
        for block in self._read():
            if block.startswith(b"data:") and b"\n" not in block:
                data = block[6:] if block.startswith(b"data: ") else block[5:]
                if data:
                    yield "message", data.decode(enc)
            elif block.strip(b"\n"):
                for event in sseclient.SSEClient([block.lstrip(b"\n") + b"\n\n"], enc).events():
                    yield event.event, event.data

    def events(self) -> Iterator[sseclient.Event]:
        for name, data in self.messages():
            yield sseclient.Event(data=data, event=name)

    def close(self) -> None:
        close = getattr(self._event_source, "close", None)
        if close is not None:
            close()
