"""Benchmark: N streams at once on the local server against one stream alone.

    .venv/bin/python bench/local_streams.py [--rounds 3] [--max-tokens 128] [--streams 2,3,4]

The server (`python -m egp_core.local`, its defaults) decodes concurrent
requests together in one llama.cpp batch. In each round: one stream alone,
then N streams started together (each its own client and thread, each a
different prompt that runs past `--max-tokens` at temperature 0), for every N.
Printed per N: the wall time until the last stream ends over the time of one
stream alone, each per token of its longest answer since the model may end
one early (target for 3 streams: <= 1.6; one after another would be N),
the aggregate tokens per second, and the slowest time to first token measured
from each stream's own start (target on a quiet machine: <= 300 ms).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.local_server import start_server, stop  # noqa: E402
from egp_core.client import EGPClient  # noqa: E402
from egp_core.local.engine import DEFAULT_MODEL_ID  # noqa: E402
from egp_core.types import CompletionRequest, ModelParameters  # noqa: E402

PROMPT = "Write a very long story about a dragon and a knight, with many chapters. Story number {n}."


def one(url: str, n: int, max_tokens: int, out: list, ready: threading.Barrier) -> None:
    request = CompletionRequest(
        model=DEFAULT_MODEL_ID, prompt=PROMPT.format(n=n),
        model_parameters=ModelParameters(temperature=0, max_tokens=max_tokens),
    )
    with EGPClient(url, read_timeout=600) as client:
        ready.wait()
        started = time.monotonic()
        stream = client.stream(request)
        times = [chunk.at for chunk in stream]
    out.append((times[0] - started, stream.usage.completion if stream.usage else len(times), time.monotonic()))


def together(url: str, count: int, max_tokens: int, first: int) -> tuple[float, int, float, int]:
    """(wall seconds, total tokens, slowest TTFT, longest answer's tokens) for `count` streams started at once."""
    out: list = []
    ready = threading.Barrier(count + 1)
    threads = [threading.Thread(target=one, args=(url, first + i, max_tokens, out, ready)) for i in range(count)]
    for t in threads:
        t.start()
    ready.wait()
    started = time.monotonic()
    for t in threads:
        t.join()
    return max(o[2] for o in out) - started, sum(o[1] for o in out), max(o[0] for o in out), max(o[1] for o in out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--streams", default="2,3,4")
    args = parser.parse_args()
    counts = [int(x) for x in args.streams.split(",")]
    process, url, _ = start_server()
    try:
        together(url, 1, 8, 0)  # the model is loaded and warm
        print(f"load average at start {os.getloadavg()[0]:.1f}")
        rows: dict[int, list[tuple[float, float, float]]] = {n: [] for n in [1, *counts]}
        for r in range(args.rounds):
            base = together(url, 1, args.max_tokens, 100 * r)
            per_token = base[0] / base[3]
            rows[1].append((1.0, base[1] / base[0], base[2]))
            line = [f"round {r + 1}: alone {base[0]:.2f} s ({base[3]} tokens)"]
            for n in counts:
                wall, tokens, ttft, longest = together(url, n, args.max_tokens, 100 * r + 10 * n)
                ratio = wall / longest / per_token
                rows[n].append((ratio, tokens / wall, ttft))
                line.append(f"{n} at once {wall:.2f} s (longest {longest} tokens; {ratio:.2f}x)")
            print("; ".join(line), flush=True)
        print(f"load average at end {os.getloadavg()[0]:.1f}\n")
        print(f"{'streams':>7} {'time / alone':>12} {'aggregate tok/s':>16} {'slowest TTFT ms':>16}")
        for n, values in rows.items():
            print(f"{n:>7} {statistics.median(v[0] for v in values):>12.2f} "
                  f"{statistics.median(v[1] for v in values):>16.1f} "
                  f"{statistics.median(v[2] for v in values) * 1000:>16.0f}")
        print("(medians over the rounds; target for 3 streams: time / alone <= 1.6)")
    finally:
        stop(process)


if __name__ == "__main__":
    main()
