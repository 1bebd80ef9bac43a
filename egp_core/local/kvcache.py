"""A bounded RAM cache of KV state per token prefix, for conversations that come back.

When a sequence slot is about to be reused for another conversation, the
engine saves the slot's KV state here (llama_state_seq_get_data) under the
tokens it holds; when a request starts with a long prefix of a saved entry,
the state is copied back into a slot (llama_state_seq_set_data) and only the
rest of the prompt is evaluated. Switching between two long conversations
then costs a memory copy per turn instead of a whole prompt evaluation.

The budget is sized from the machine: a tenth of the memory available when
the model loads, between 64 MB and 2 GB (about 23 KB per token for the
bundled model, so 1 GB holds some 45,000 tokens of history). Least recently
used entries go first.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

MIN_BUDGET = 64 << 20
MAX_BUDGET = 2 << 30


def default_budget() -> int:
    """Bytes for the cache: a tenth of MemAvailable, clamped to [64 MB, 2 GB]."""
    available = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    available = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError):
        pass
    if available is None:
        import os

        try:
            available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (AttributeError, OSError, ValueError):
            available = 8 * MIN_BUDGET * 10
    return max(MIN_BUDGET, min(MAX_BUDGET, available // 10))


def common_prefix(a: tuple[int, ...] | list[int], b: tuple[int, ...] | list[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


@dataclass(slots=True)
class Entry:
    tokens: tuple[int, ...]
    state: bytes


class PrefixCache:
    """Saved sequence states by their tokens; `best(tokens)` finds the longest shared prefix."""

    def __init__(self, budget: int | None = None) -> None:
        self.budget = default_budget() if budget is None else budget
        self._entries: OrderedDict[tuple[int, ...], Entry] = OrderedDict()
        self.size = 0
        self.hits = 0

    def __len__(self) -> int:
        return len(self._entries)

    def put(self, tokens: tuple[int, ...], state: bytes) -> None:
        if not tokens or len(state) > self.budget:
            return
        for key in [k for k in self._entries if common_prefix(k, tokens) == len(k)]:
            self._drop(key)  # a shorter prefix of what we now keep is worth nothing more
        if any(common_prefix(k, tokens) == len(tokens) for k in self._entries):
            return  # already covered by a longer entry
        self._entries[tokens] = Entry(tokens, state)
        self.size += len(state)
        while self.size > self.budget:
            self._drop(next(iter(self._entries)))

    def best(self, tokens: list[int] | tuple[int, ...]) -> tuple[Entry | None, int]:
        """The entry sharing the longest prefix with `tokens`, and that length."""
        found, length = None, 0
        for entry in self._entries.values():
            n = common_prefix(entry.tokens, tokens)
            if n > length:
                found, length = entry, n
        return found, length

    def take(self, entry: Entry) -> None:
        """Marks `entry` as used now (it becomes the last to be evicted)."""
        if entry.tokens in self._entries:
            self._entries.move_to_end(entry.tokens)
            self.hits += 1

    def _drop(self, key: tuple[int, ...]) -> None:
        entry = self._entries.pop(key)
        self.size -= len(entry.state)
