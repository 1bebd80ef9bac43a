"""Turning generated token bytes into safe text deltas.

`Utf8Joiner` never lets a multi-byte character out half-decoded; `StopScanner`
holds back text that might be the start of a stop sequence, so a stop sequence
split across tokens is found and never sent.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterable


class Utf8Joiner:
    """Decodes a byte stream incrementally; incomplete characters wait for more bytes."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def feed(self, data: bytes) -> str:
        return self._decoder.decode(data)

    def flush(self) -> str:
        """What is left at the end (an unfinished character becomes U+FFFD)."""
        return self._decoder.decode(b"", final=True)


class StopScanner:
    """Finds the earliest stop sequence in a growing text; emits only what is safe."""

    def __init__(self, stops: Iterable[str] = ()) -> None:
        self.stops = [s for s in stops if s]
        self._held = ""

    def feed(self, text: str) -> tuple[str, bool]:
        """Returns (text safe to emit now, whether a stop sequence was hit)."""
        buf = self._held + text
        if not self.stops:
            self._held = ""
            return buf, False
        hits = [i for i in (buf.find(s) for s in self.stops) if i != -1]
        if hits:
            self._held = ""
            return buf[: min(hits)], True
        keep = 0
        for stop in self.stops:
            for k in range(min(len(stop) - 1, len(buf)), keep, -1):
                if buf.endswith(stop[:k]):
                    keep = k
                    break
        self._held = buf[len(buf) - keep :] if keep else ""
        return buf[: len(buf) - keep], False

    def flush(self) -> str:
        """Text held back at the end of generation (it turned out not to be a stop)."""
        held, self._held = self._held, ""
        return held
