"""Watching an answer that streams in a background Generation, throttled.

The page redraws the growing end of the answer a few times per second, never
once per token. Finished blocks of paragraphs (cut by ui.text.blocks, the same
way a saved answer is drawn) are drawn once each, in their own element, as
soon as they are finished (the chat page's watcher looks 20 times a second;
the compare page's, for several panes, 4 times): the browser
renders the answer a block at a time as it arrives, never a pile of blocks at
once, so the last draw when the answer ends is only its short end. A redraw
costs the same (bytes over the websocket, Markdown for the browser to render)
for a long answer as for a short one. The moment the answer ends, its last
part is drawn without the cursor (we wait on the generation's done event, not
a timer); the chat page then carries on with its receipt, without a rerun, and
a later run draws the saved answer through the same blocks (`show`), so the
browser re-renders nothing it already shows.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import streamlit as st

from egp_core.generation import Generation
from ui.text import finished_blocks, keep_line_breaks

CURSOR = " ▌"


POLL = 0.05
"""Seconds between looks at a streaming answer for newly finished blocks (cheap: no redraw unless one is)."""

FLUSH_PAUSE = 0.05
"""After the last redraw, a pause that lets Streamlit's event loop send it before the script goes
on: the chat page then draws the rest of the page, which holds the GIL (and so the websocket) for a
while; the compare page reruns, and a rerun starts with a full garbage collection (0.1-0.3 s)."""


def redraw_interval(text_length: int) -> float:
    """Seconds between redraws: 4 per second, fewer for very long redrawn text."""
    return max(0.25, text_length / 40_000)


class LiveText:
    """An answer drawn as it grows: each finished block once, in its own element, then the redrawn
    end. A saved answer is drawn through the same class in one go (`show`), so the page's elements
    are the same before and after the answer ends and the browser re-renders nothing."""

    def __init__(self, area) -> None:
        body = area.container()
        self._blocks = body.container()
        self._end = body.empty()
        self._done = 0  # characters drawn as finished blocks
        self._shown: str | None = None
        self._due = 0.0  # when the end may be redrawn again (time.monotonic)

    def draw(self, text: str, final: bool = False) -> None:
        """Draw the blocks finished since the last call, at once; redraw the end (with the cursor unless
        `final`) when a block was drawn (it no longer shows that block's text), when `final`, or when
        the redraw interval has passed since it was last redrawn."""
        cut_any = False
        while cut := finished_blocks(text[self._done:]):
            self._blocks.markdown(keep_line_breaks(text[self._done:self._done + cut]))
            self._done += cut
            cut_any = True
        now = time.monotonic()
        if not (final or cut_any or now >= self._due):
            return
        rest = text[self._done:]
        shown = rest if final else rest + CURSOR
        if shown != self._shown:
            self._end.markdown(keep_line_breaks(shown))
            self._shown = shown
            self._due = now + redraw_interval(len(shown))

    @property
    def redrawn_length(self) -> int:
        return len(self._shown or "")


def show(text: str, area) -> None:
    """A saved answer, in the blocks its live view drew."""
    LiveText(area).draw(text, final=True)


def watch(generation: Generation, text_area, notice_area) -> None:
    """Redraw `text_area` until the generation ends, then draw the whole answer without the
    cursor; the caller then carries on drawing the page (a rerun would redraw all of it). Streamlit may interrupt this loop (Stop, a new prompt, a closed tab): the
    generation carries on or is cancelled by whoever interrupted, never by us."""
    live = LiveText(text_area)
    live.draw(generation.text)
    notice = None
    while True:
        if generation.wait(POLL):
            live.draw(generation.text, final=True)
            time.sleep(FLUSH_PAUSE)
            return
        # Touching session state is where Streamlit notices a pending rerun (a Stop click)
        # even when no new text arrived, so Stop is never held up by a silent stream.
        st.session_state.get("_live_tick")
        live.draw(generation.text)
        if generation.retry_notice != notice:
            notice = generation.retry_notice
            if notice:
                notice_area.warning(notice, icon=":material/hourglass_top:")
            else:
                notice_area.empty()


def watch_many(
    panes: list[tuple[Generation, object, object]], on_finish: Callable[[int], None] | None = None,
) -> None:
    """Redraw several answers streaming at once (compare page) until all have ended.

    One loop for all panes, redrawn 4 times a second (each pane a `LiveText`). It
    wakes as soon as any pane ends, draws that answer whole without the cursor
    and calls `on_finish(index)` once for it, so a failed or short answer shows
    its end while the others carry on. A pane with no text yet keeps what the
    page put in its area (e.g. "Thinking…")."""
    lives: dict[int, LiveText] = {}
    notices: dict[int, str | None] = {}
    ended: set[int] = set()
    while True:
        for i, (gen, text_area, notice_area) in enumerate(panes):
            if gen.done and i not in ended:
                ended.add(i)
                if gen.text:
                    lives.setdefault(i, LiveText(text_area)).draw(gen.text, final=True)
                else:
                    text_area.empty()
                notice_area.empty()
                if on_finish is not None:
                    on_finish(i)
        running = [g for g, _, _ in panes if not g.done]
        if not running:
            time.sleep(FLUSH_PAUSE)
            return
        wait_any(running, redraw_interval(max((v.redrawn_length for v in lives.values()), default=0)))
        st.session_state.get("_live_tick")
        for i, (gen, text_area, notice_area) in enumerate(panes):
            if gen.done:
                continue  # drawn whole at the top of the loop
            text = gen.text
            if text:
                lives.setdefault(i, LiveText(text_area)).draw(text)
            if gen.retry_notice != notices.get(i):
                notices[i] = gen.retry_notice
                if gen.retry_notice:
                    notice_area.warning(gen.retry_notice, icon=":material/hourglass_top:")
                else:
                    notice_area.empty()


def wait_any(generations: list[Generation], timeout: float) -> None:
    """Sleep up to `timeout` seconds, waking early when any of `generations` ends."""
    deadline = time.monotonic() + timeout
    first = generations[0]
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or any(g.done for g in generations):
            return
        first.wait(min(left, 0.05))
