"""Watching an answer that streams in a background Generation, throttled.

The page redraws the growing text a few times per second, never once per
token: each redraw sends the whole message over the websocket, so fewer
redraws mean a smoother page and far fewer bytes. The last redraw happens the
moment the answer ends (we wait on the generation's done event, not a timer).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import streamlit as st

from egp_core.generation import Generation

CURSOR = " ▌"


def redraw_interval(text_length: int) -> float:
    """Seconds between redraws: 4 per second, fewer for very long answers."""
    return max(0.25, text_length / 40_000)


def watch(generation: Generation, text_area, notice_area) -> None:
    """Redraw `text_area` until the generation ends. Streamlit may interrupt this loop
    (Stop, a new prompt, a closed tab): the generation carries on or is cancelled by
    whoever interrupted, never by us."""
    shown = None
    notice = None
    while True:
        finished = generation.wait(redraw_interval(len(generation.text)))
        if finished:
            return
        # Touching session state is where Streamlit notices a pending rerun (a Stop click)
        # even when no new text arrived, so Stop is never held up by a silent stream.
        st.session_state.get("_live_tick")
        text = generation.text
        if text != shown:
            text_area.markdown(text + CURSOR)
            shown = text
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

    One loop for all panes, throttled like `watch`; it wakes as soon as any pane
    ends, and then calls `on_finish(index)` once for that pane (so a failed or
    short answer shows its end while the others carry on)."""
    shown: dict[int, str] = {}
    notices: dict[int, str | None] = {}
    ended: set[int] = set()
    while True:
        for i, (gen, _, _) in enumerate(panes):
            if gen.done and i not in ended:
                ended.add(i)
                if on_finish is not None:
                    on_finish(i)
        running = [p for p in panes if not p[0].done]
        if not running:
            return
        longest = max(len(g.text) for g, _, _ in panes)
        wait_any([g for g, _, _ in running], redraw_interval(longest))
        st.session_state.get("_live_tick")
        for i, (gen, text_area, notice_area) in enumerate(panes):
            if gen.done:
                continue
            if gen.text != shown.get(i):
                text_area.markdown(gen.text + CURSOR)
                shown[i] = gen.text
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
