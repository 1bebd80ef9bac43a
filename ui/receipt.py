"""The receipt under every answer, and the session's running totals."""

from __future__ import annotations

from typing import Any

import streamlit as st

from egp_core.pricing import estimate_cost, format_cost, price_for
from egp_core.prompts import ref_label
from ui import state
from ui.text import plural

FINISH_WORDS = {
    "stop": "Finished",
    "length": "Cut off at the length limit",
    "stopped": "Stopped by you",
    "content_filter": "Cut off by the content filter",
}
STATUS_WORDS = {
    "stopped": "Stopped by you",
    "interrupted": "Interrupted (the app stopped)",
    "error": "Failed",
    "streaming": "Answering…",
}


def finish_words(status: str, finish_reason: str | None) -> str:
    if status != "complete":
        return STATUS_WORDS.get(status, status)
    return FINISH_WORDS.get(finish_reason or "stop", f"Finished ({finish_reason})")


def cost_of(model: str | None, usage: dict | None, prices: dict | None) -> float | None:
    if not model or not usage:
        return None
    return estimate_cost(usage, price_for(model, prices))


def receipt_text(
    *, model: str | None, status: str, finish_reason: str | None, usage: dict | None,
    metrics: dict | None, prices: dict | None = None, prompt: dict | None = None,
) -> str:
    """One short line in plain words: model · tokens · how it ended · cost · saved prompt
    (the technical details: receipt_details)."""
    parts = [f"**{model or 'unknown model'}**"]
    about = "about " if usage and usage.get("estimated") else ""  # counted by us, not the server
    if usage:
        parts.append(f"{about}{usage.get('total') or 0:,} tokens")
    elif (metrics or {}).get("chunks"):  # stopped or cut before the server counted (older answers)
        parts.append("tokens not counted")
    parts.append(finish_words(status, finish_reason))
    cost = cost_of(model, usage, prices)
    if cost is not None:
        parts.append(f"cost {about}{format_cost(cost)}")
    if ref_label(prompt):
        parts.append(ref_label(prompt))
    return " · ".join(parts)


def receipt_details(*, usage: dict | None, metrics: dict | None) -> str:
    """The technical part, one click away: the token split, time to first token, speed."""
    lines = []
    if usage:
        lines.append(f"{'about ' if usage.get('estimated') else ''}"
                     f"{usage.get('prompt') or 0} prompt + {usage.get('completion') or 0} completion"
                     f" = {usage.get('total') or 0} tokens (prompt: your question with the earlier turns and "
                     "the system prompt; completion: the answer)")
        if usage.get("estimated"):
            lines.append("The server stopped before counting tokens: the prompt's are estimated from its "
                         "length, the answer's from the pieces of text that arrived.")
    metrics = metrics or {}
    if not usage and metrics.get("chunks"):
        lines.append(f"The server stopped before counting tokens; {metrics['chunks']} pieces of text arrived.")
    if metrics.get("time_to_first_token") is not None:
        lines.append(f"first token after {metrics['time_to_first_token']:.2f} s")
    if metrics.get("tokens_per_second"):
        lines.append(f"{metrics['tokens_per_second']:,.1f} tokens/s")
    return "  \n".join(lines)


def show_receipt(message: Any, prices: dict | None = None, *, model: str | None = None) -> None:
    """The receipt on one line; its details in the tooltip beside it. `model`: a name shown instead
    (a blind comparison's "Model A")."""
    text = receipt_text(
        model=model or message.model, status=message.status, finish_reason=message.finish_reason,
        usage=message.usage, metrics=message.metrics, prices=prices,
        prompt=(message.parameters or {}).get("prompt"),
    )
    seed = (message.parameters or {}).get("seed")
    st.caption(
        text + (f" · repeatable: seed {seed}" if seed is not None else ""),
        help=receipt_details(usage=message.usage, metrics=message.metrics) or None,
        wrap=False,
    )


def started_here(message_id: str) -> None:
    """This session started that answer: count it in the totals once it has ended."""
    st.session_state.setdefault(state.STARTED, set()).add(message_id)


def add_to_totals(message: Any, prices: dict | None = None) -> None:
    """Count a finished answer once in this session's running totals, if this session started it
    (an old conversation or a share link opened here adds nothing)."""
    counted: set = st.session_state[state.COUNTED]
    if message.id in counted or message.status == "streaming":
        return
    if message.id not in st.session_state.get(state.STARTED, ()):
        return
    counted.add(message.id)
    totals = st.session_state[state.TOTALS]
    usage = message.usage or {}
    totals["answers"] += 1
    for k in ("prompt", "completion", "total"):
        totals[k] += int(usage.get(k) or 0)
    cost = cost_of(message.model, usage, prices)
    if cost is not None:
        totals["cost"] = (totals["cost"] or 0.0) + cost


def show_totals() -> None:
    totals = st.session_state[state.TOTALS]
    text = (
        f"This session: {plural(totals['answers'], 'answer')} · {totals['total']:,} tokens "
        f"({totals['prompt']:,} prompt, {totals['completion']:,} completion)"
    )
    if totals["cost"] is not None:
        text += f" · estimated cost {format_cost(totals['cost'])}"
    st.caption(text)
