"""An answer drawn token by token, each shaded by how sure the model was of it.

Hovering over a token (or tapping it: each is focusable) shows the likeliest
alternatives with their percentages. Plain HTML and CSS (no script): the
tokens are escaped, the tooltip is shown by :hover / :focus.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from typing import Any

import streamlit as st

from egp_core.types import TokenLogprob

EXPLANATION = (
    "Each piece of the answer is shaded by how sure the model was of it: the darker, the more unsure. "
    "Hover over a piece (or tap it) to see what else the model considered, with its chances. "
    "This shows where the model was unsure."
)

_CSS = """
<style>
.tp-answer { line-height: 2.0; white-space: pre-wrap; font-size: 1rem; }
.tp-tok { position: relative; border-radius: 3px; padding: 1px 0; cursor: help; outline: none; }
.tp-tok .tp-tip { display: none; position: absolute; left: 0; top: 1.9em; z-index: 1000; min-width: 11em;
  background: #262730; color: #fafafa; border-radius: 6px; padding: 6px 8px; font-size: 0.8rem;
  line-height: 1.4; white-space: pre; box-shadow: 0 2px 8px rgba(0,0,0,.3); }
.tp-tok:hover .tp-tip, .tp-tok:focus .tp-tip { display: block; }
.tp-legend { font-size: 0.8rem; opacity: 0.8; }
</style>
"""


def percent(logprob: float) -> str:
    """A probability for a person: "92%", "0.4%", "<0.1%"."""
    p = math.exp(logprob) * 100
    if p >= 9.95:
        return f"{p:.0f}%"
    if p >= 0.1:
        return f"{p:.1f}%"
    return "<0.1%"


def _shown(token: str) -> str:
    """A token as the tooltip names it: spaces and line breaks made visible."""
    return repr(token)[1:-1] if token.strip() != token or not token else token


def tokens_from(details: dict[str, Any] | None) -> list[TokenLogprob]:
    """The stored token probabilities of a message (its `details`), [] when there are none."""
    raw = (details or {}).get("logprobs") or []
    out = []
    for item in raw:
        try:
            out.append(TokenLogprob.from_list(item))
        except (TypeError, ValueError, IndexError):
            continue
    return out


def to_html(tokens: Sequence[TokenLogprob]) -> str:
    """The shaded answer with a tooltip per token."""
    spans = []
    for t in tokens:
        p = math.exp(t.logprob)
        unsure = 1.0 - p  # 0 when certain
        colour = f"rgba(255, 140, 0, {0.08 + 0.62 * unsure:.2f})"
        lines = [f"chosen: \u201c{_shown(t.token)}\u201d {percent(t.logprob)}"]
        for alt, lp in t.top:
            if alt != t.token:
                lines.append(f"\u201c{_shown(alt)}\u201d {percent(lp)}")
        tip = html.escape("\n".join(lines))
        spans.append(f'<span class="tp-tok" tabindex="0" data-testid="token" data-p="{p:.4f}" '
                     f'style="background:{colour}" title="">{html.escape(t.token)}'
                     f'<span class="tp-tip" data-testid="token-tip">{tip}</span></span>')
    return f'{_CSS}<div class="tp-answer" data-testid="token-probs">{"".join(spans)}</div>'


def render(tokens: Sequence[TokenLogprob]) -> None:
    """Draw the shaded answer and say what it means."""
    if not tokens:
        st.caption("No token probabilities were saved with this answer.")
        return
    st.html(to_html(tokens))
    sure = sum(1 for t in tokens if math.exp(t.logprob) >= 0.9)
    unsure = sorted(tokens, key=lambda t: t.logprob)[:3]
    words = ", ".join(f"\u201c{_shown(t.token.strip() or t.token)}\u201d ({percent(t.logprob)})" for t in unsure)
    st.caption(f"{EXPLANATION} {sure} of {len(tokens)} pieces were chosen with at least 90% certainty; "
               f"the least sure: {words}.")
