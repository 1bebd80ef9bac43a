"""Text as it was written, through Streamlit's Markdown.

Questions are shown with `st.text` (no Markdown at all). Answers are Markdown,
cut into blocks (`blocks`) the same way while they stream and once they are
saved, so the page draws the same elements before and after the answer ends;
each block keeps its single line breaks (`keep_line_breaks`), so a poem sent
one line per row stays one line per row while lists, tables and code stay
intact.
"""

from __future__ import annotations

import re

BLOCK_CHARS = 2_000
"""An answer is cut into blocks of at least this many characters (at a blank line between blocks)."""

_TABLE_DELIMITER = re.compile(r"^\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$")


def _fence(line: str) -> str | None:
    stripped = line.lstrip(" ")
    if len(line) - len(stripped) <= 3 and stripped[:3] in ("```", "~~~"):
        return stripped[:3]
    return None


def _fence_after(line: str, fence: str | None) -> str | None:
    """The open code fence after `line` (None outside code)."""
    marker = _fence(line)
    if fence is None:
        return marker
    if marker == fence and not line.strip(" `~"):
        return None
    return fence


def finished_blocks(text: str, min_chars: int = BLOCK_CHARS) -> int:
    """Length of the shortest start of `text` made of whole Markdown blocks that is at least
    `min_chars` long, else 0. A block ends at a blank line outside a code fence that is followed
    by an unindented line (so list items' indented continuations and indented code stay together).

    The first cut depends only on the text before it (the last line, which may still be growing,
    is never looked past), so cutting a streaming answer as it grows and cutting the saved answer
    give the same blocks."""
    if len(text) < min_chars:
        return 0
    fence: str | None = None
    pos = 0
    lines = text.split("\n")
    for i, line in enumerate(lines[:-1]):
        fence = _fence_after(line, fence)
        pos += len(line) + 1
        if pos >= min_chars and fence is None and not line.strip() and lines[i + 1][:1] not in (" ", "\t", ""):
            return pos
    return 0


def blocks(text: str, min_chars: int = BLOCK_CHARS) -> list[str]:
    """`text` cut into finished blocks (see `finished_blocks`) and the rest, in order."""
    parts: list[str] = []
    done = 0
    while cut := finished_blocks(text[done:], min_chars):
        parts.append(text[done:done + cut])
        done += cut
    parts.append(text[done:])
    return parts


def _table_row(line: str, following: str) -> bool:
    return "|" in line and (line.lstrip().startswith("|") or bool(_TABLE_DELIMITER.match(following)))


def keep_line_breaks(markdown: str) -> str:
    """Markdown in which every single line break shows as one: two spaces (a hard break) end each
    line that is followed by another line of text. Code fences and table rows are left alone; at
    the end of a heading, a list item or a paragraph a hard break changes nothing."""
    lines = markdown.split("\n")
    fence: str | None = None
    out = []
    for i, line in enumerate(lines):
        inside = fence is not None
        fence = _fence_after(line, fence)
        following = lines[i + 1] if i + 1 < len(lines) else ""
        if (not inside and fence is None and line.strip() and following.strip() and not line.endswith("  ")
                and not line.endswith("\\") and _fence(line) is None and _fence(following) is None
                and not _table_row(line, following)
                and not _TABLE_DELIMITER.match(line)):
            line += "  "
        out.append(line)
    return "\n".join(out)


def plural(count: int, word: str, words: str | None = None) -> str:
    """ "1 answer", "2 answers" (`words` for an irregular plural)."""
    return f"{count:,} {word if count == 1 else (words or word + 's')}"
