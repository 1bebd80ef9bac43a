"""Benchmark: switching between two long conversations on the local server.

    .venv/bin/python bench/local_switch.py [--turns 4] [--parallel 1]

Two conversations, A and B, each opening with ~1,600 tokens of notes, go on
turn by turn as the chat page sends them (egp_core.chat.build_request: the
whole history as one transcript prompt), with short answers (32 tokens).
Measured: the time to first token of A's next turn

* with no B in between (A, A, A, ...): the baseline;
* after a turn of B each time (A, B, A, B, ...), on a second pair of
  conversations of the same sizes.

Printed: both medians and their ratio (target <= 1.3; re-reading the whole
history every turn would be several times slower). By default the server
runs as it ships (A and B each keep a slot); `--parallel 1` leaves it one
slot, so A's history must come back from the RAM cache of KV state.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.local_server import start_server, stop  # noqa: E402
from egp_core.chat import build_request  # noqa: E402
from egp_core.client import EGPClient  # noqa: E402
from egp_core.local.engine import DEFAULT_MODEL_ID  # noqa: E402
from egp_core.types import Message, ModelParameters  # noqa: E402

NOTE = ("Note {i}: the {thing} in {place} was checked on day {i}; it needs {n} more hours of work "
        "and a second look before the end of the month. ")
THINGS = ["roof", "boiler", "garden wall", "bridge", "old mill", "bakery oven", "school bus", "library"]
PLACES = ["the north village", "the harbour", "the market town", "the valley farm"]
QUESTIONS = ["Which note mentions the roof?", "Summarise the notes in one sentence.",
             "What needs the most hours?", "Which place comes up most often?", "What should be done first?",
             "Is anything urgent?", "List two things to check again.", "What is the last note about?"]
PARAMS = ModelParameters(temperature=0, max_tokens=32)


def notes(seed: int, target_chars: int = 7000) -> str:
    parts, i = [], 0
    while sum(map(len, parts)) < target_chars:
        parts.append(NOTE.format(i=i + seed, thing=THINGS[(i * 3 + seed) % 8], place=PLACES[(i + seed) % 4],
                                 n=(i * 7 + seed) % 40 + 1))
        i += 1
    return "Here are my notes:\n" + "".join(parts)


class Conversation:
    def __init__(self, client: EGPClient, seed: int) -> None:
        self.client = client
        self.history = [Message(role="user", content=notes(seed))]
        self.turn = 0
        self.prompt_tokens = 0

    def ask(self) -> float:
        """Sends the next turn; returns its time to first token in seconds."""
        if self.turn:
            self.history.append(Message(role="user", content=QUESTIONS[self.turn % len(QUESTIONS)]))
        built = build_request(self.history, model=DEFAULT_MODEL_ID, parameters=PARAMS, system_prompt=None)
        started = time.monotonic()
        stream = self.client.stream(built.request)
        times = [chunk.at for chunk in stream]
        self.history.append(Message(role="assistant", content=stream.text or "(no answer)"))
        self.prompt_tokens = stream.usage.prompt if stream.usage else 0
        self.turn += 1
        return times[0] - started if times else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--turns", type=int, default=4, help="measured turns of A per schedule")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--parallel", type=int, default=None, help="slots of the server (default: its own)")
    args = parser.parse_args()
    extra = ["--parallel", str(args.parallel)] if args.parallel else []
    process, url, _ = start_server(*extra)
    try:
        client = EGPClient(url, read_timeout=600)
        print(f"server slots: {args.parallel or 'default'}; load average {os.getloadavg()[0]:.1f}")
        alone, switched, first = [], [], []
        for r in range(args.rounds):
            # Two turns before measuring: the page sends a lone first question bare and later turns
            # as a transcript, so the second turn reads the whole history again whatever the server does.
            a = Conversation(client, 1000 * r + 1)
            a.ask()
            first.append(a.ask())
            alone += [a.ask() for _ in range(args.turns)]
            a2, b2 = Conversation(client, 1000 * r + 2), Conversation(client, 1000 * r + 3)
            for _ in range(2):
                a2.ask()
                b2.ask()
            for _ in range(args.turns):
                switched.append(a2.ask())
                b2.ask()
            print(f"round {r + 1}: prompts of {a.prompt_tokens} and {b2.prompt_tokens} tokens at the end; "
                  f"second turn {first[-1] * 1000:.0f} ms; A alone "
                  f"{', '.join(f'{x * 1000:.0f}' for x in alone[-args.turns:])} ms; A after B "
                  f"{', '.join(f'{x * 1000:.0f}' for x in switched[-args.turns:])} ms", flush=True)
        ratio = statistics.median(switched) / statistics.median(alone)
        print(f"\ntime to first token, median: second turn (the whole history read) {statistics.median(first) * 1000:.0f} ms, "
              f"A alone {statistics.median(alone) * 1000:.0f} ms, A after B {statistics.median(switched) * 1000:.0f} ms")
        print(f"A after B / A alone = {ratio:.2f} (target <= 1.3); load average {os.getloadavg()[0]:.1f}")
    finally:
        stop(process)


if __name__ == "__main__":
    main()
