"""Benchmark: the local server (HTTP + SSE) against llama-cpp-python in-process.

    .venv/bin/python bench/local_engine.py [--rounds 3] [--max-tokens 128] [--threads 2]

In one run:

* cold start: `python -m egp_core.local --port 0` is started and a streamed
  request is sent as soon as the port is printed (it waits for the model);
  process start to first token is printed.
* the same two prompts (a short question and a ~1,000-token one), each as one
  user turn of the model's chat template, greedy, `--max-tokens` tokens,
  through `egp_core.client.EGPClient.stream()` against that server, and
  through `llama_cpp.Llama.create_completion(stream=True)` in this process on
  the same token ids with the same sampling settings. Runs alternate
  (server, in-process, server, ...) and each round starts with a fresh
  number in the prompt, so neither side gets a prompt-cache hit the other lacks.

Time to first token: from sending the request (or calling the function) to the
first text. Tokens per second: completion tokens after the first over the time
from the first text to the last. Medians over the rounds; the ratio and the
TTFT difference are taken per round (server and in-process back to back) and
their median printed, which keeps drift in the machine's load out of them;
on a busy machine the best-of-rounds figures (fastest run of each side) are the
steadier ones, and both are printed. Targets: throughput >= 0.95x, first token within
20 ms. Both sides use the same thread count; the server is another process,
so nothing runs alongside either side's generation but the client reading it.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from egp_core.client import EGPClient  # noqa: E402
from egp_core.local.engine import DEFAULT_MODEL_ID, Engine, model_specs  # noqa: E402  (sets OMP_WAIT_POLICY)
from egp_core.types import CompletionRequest, ModelParameters  # noqa: E402

# Both prompts make the model write past --max-tokens at temperature 0, so every run
# measures the same number of tokens.
SHORT = "Write a very long story about a dragon and a knight, with many chapters."
PARAGRAPH = (
    "The river runs through the old town, past the market square where farmers sell apples, "
    "cheese and bread every Saturday morning, and under the stone bridge built three centuries ago. "
)


def long_prompt(engine: Engine, target: int = 1000) -> str:
    text = (
        "Read these notes, then write a very long story about a dragon and a knight, with many chapters.\n\n"
    )
    while len(engine.tokenize_prompt(text + PARAGRAPH)) < target:
        text += PARAGRAPH
    return text


@dataclass
class Run:
    ttft: float
    tps: float
    tokens: int
    text: str


def via_server(client: EGPClient, prompt: str, max_tokens: int) -> Run:
    request = CompletionRequest(
        model=DEFAULT_MODEL_ID,
        prompt=prompt,
        model_parameters=ModelParameters(temperature=0, max_tokens=max_tokens),
    )
    stream = client.stream(request)
    started = time.monotonic()
    times = [chunk.at for chunk in stream]
    tokens = stream.usage.completion if stream.usage else len(times)
    return Run(times[0] - started, (tokens - 1) / (times[-1] - times[0]), tokens, stream.text)


def in_process(engine: Engine, prompt: str, max_tokens: int) -> Run:
    llm = engine._llm
    tokens = engine.tokenize_prompt(prompt)
    times, parts = [], []
    started = time.monotonic()
    for chunk in llm.create_completion(
        prompt=tokens,
        stream=True,
        max_tokens=max_tokens,
        temperature=0.0,
        top_k=40,
        top_p=0.95,
        min_p=0.05,
        repeat_penalty=1.0,
    ):
        text = chunk["choices"][0]["text"]
        if text:
            times.append(time.monotonic())
            parts.append(text)
    text = "".join(parts)
    n = len(
        llm.tokenize(text.encode(), add_bos=False, special=False)
    )  # replaced by the server's count when equal
    return Run(times[0] - started, (n - 1) / (times[-1] - times[0]), n, text)


def start_server(threads: int) -> tuple[subprocess.Popen, str, float]:
    """Starts the server; returns it, its URL and the monotonic time just before the process began."""
    env = {k: v for k, v in os.environ.items() if k not in ("EGP_LOCAL_API_KEY", "EGP_LOCAL_MODELS")}
    started = time.monotonic()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "egp_core.local",
            "--port",
            "0",
            "--threads",
            str(threads),
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    line = process.stdout.readline()
    found = re.search(r"on (http://\S+)", line)
    if not found:
        process.kill()
        raise SystemExit(f"the server did not start: {line!r}")
    return process, found.group(1), started


def median(values: list[float]) -> float:
    return statistics.median(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    process, url, started = start_server(args.threads)
    try:
        client = EGPClient(url, read_timeout=300)
        stream = client.stream(
            CompletionRequest(
                model=DEFAULT_MODEL_ID, prompt="Hi", model_parameters=ModelParameters(max_tokens=4)
            )
        )
        first = next(iter(stream))
        cold = first.at - started
        stream.close()
        print(f"cold start (process start -> first token over HTTP): {cold * 1000:.0f} ms")

        load_started = time.monotonic()
        engine = Engine(model_specs("")[0], n_threads=args.threads)
        engine.load()
        print(f"in-process model load (reference): {(time.monotonic() - load_started) * 1000:.0f} ms")
        prompts = {"short": SHORT, "~1000 tokens": long_prompt(engine)}
        for name, prompt in prompts.items():
            print(
                f"prompt {name!r}: {len(engine.tokenize_prompt(prompt))} prompt tokens (chat template included)"
            )

        results: dict[tuple[str, str], list[Run]] = {}
        for r in range(args.rounds):
            for name, base in prompts.items():
                prompt = f"({r + 1}) {base}"
                server_run = via_server(client, prompt, args.max_tokens)
                local_run = in_process(engine, prompt, args.max_tokens)
                if local_run.text == server_run.text:  # same tokens: use the exact count
                    span = (local_run.tokens - 1) / local_run.tps
                    local_run.tokens = server_run.tokens
                    local_run.tps = (server_run.tokens - 1) / span
                else:
                    print(f"  note: round {r + 1} {name}: texts differ; in-process tokens re-counted")
                results.setdefault((name, "server"), []).append(server_run)
                results.setdefault((name, "in-process"), []).append(local_run)

        print()
        print(f"{'prompt':<14} {'path':<11} {'tokens':>6} {'tok/s':>8} {'TTFT ms':>9}")
        for (name, path), runs in results.items():
            print(
                f"{name:<14} {path:<11} {median([x.tokens for x in runs]):>6.0f} "
                f"{median([x.tps for x in runs]):>8.1f} {median([x.ttft for x in runs]) * 1000:>9.1f}"
            )
        print()
        for name in prompts:
            pairs = list(zip(results[(name, "server")], results[(name, "in-process")], strict=True))
            ratios = [s.tps / x.tps for s, x in pairs]
            deltas = [(s.ttft - x.ttft) * 1000 for s, x in pairs]
            print(
                f"{name:<14} throughput server/in-process = {median(ratios):.3f} (target >= 0.95; "
                f"rounds {min(ratios):.3f}..{max(ratios):.3f})"
            )
            print(
                f"{'':<14} TTFT server - in-process = {median(deltas):+.1f} ms (target <= 20; "
                f"rounds {min(deltas):+.1f}..{max(deltas):+.1f})"
            )
            best_ratio = max(s.tps for s, _ in pairs) / max(x.tps for _, x in pairs)
            best_delta = (min(s.ttft for s, _ in pairs) - min(x.ttft for _, x in pairs)) * 1000
            print(
                f"{'':<14} best of rounds (other programs only ever slow a run down): "
                f"throughput {best_ratio:.3f}, TTFT {best_delta:+.1f} ms"
            )
    finally:
        process.terminate()
        process.wait(10)


if __name__ == "__main__":
    main()
