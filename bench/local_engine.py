"""Benchmark: the local server's speed against llama.cpp's best in-process configuration.

    .venv/bin/python bench/local_engine.py [--rounds 3] [--max-tokens 128] [--conditions quiet,busy]

In one run, for each condition (a quiet machine; one core kept busy by a
spinning process this script starts, as a browser or an IDE would):

* the server: `python -m egp_core.local` with its defaults (threads from the
  machine, adapted to the free cores), streamed through `egp_core.client`;
* the baseline: llama-cpp-python in-process, each configuration in its own
  fresh process: OpenMP spinning with all cores ("spin-all"), OMP_WAIT_POLICY
  =PASSIVE with all cores ("passive-all"), spinning with one thread
  ("spin-1"). Each child loads the model once and runs on request.

The same two prompts (a short one and a ~1,000-token one, as one user turn of
the chat template), greedy, `--max-tokens` tokens; runs alternate within each
round (server, spin-all, passive-all, spin-1), and each round starts with a
fresh number in the prompt so nobody gets a prompt-cache hit the others lack.

Decode speed: completion tokens after the first over the time from the first
text to the last; time to first token from the request. Printed per
configuration (median and best of the rounds); the ratio is the server's
speed over the best configuration's, per round (median printed) and
best-of-rounds. Target: >= 0.9 in both conditions. Other programs only ever
slow a run down, so on a busy machine best-of-rounds is the steadier figure.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.local_server import busy_core, start_server, stop  # noqa: E402
from egp_core.client import EGPClient  # noqa: E402
from egp_core.local.engine import DEFAULT_MODEL_ID  # noqa: E402
from egp_core.local.threads import machine_threads  # noqa: E402
from egp_core.types import CompletionRequest, ModelParameters  # noqa: E402

# Both prompts make the model write past --max-tokens at temperature 0.
SHORT = "Write a very long story about a dragon and a knight, with many chapters."
PARAGRAPH = (
    "The river runs through the old town, past the market square where farmers sell apples, "
    "cheese and bread every Saturday morning, and under the stone bridge built three centuries ago. "
)
LONG = "Read these notes, then write a very long story about a dragon and a knight, with many chapters.\n\n" + (
    PARAGRAPH * 30
)  # about 1,000 tokens
PROMPTS = {"short": SHORT, "~1000 tokens": LONG}
CONFIGS = {  # name: (environment, threads); None = the machine's cores
    "spin-all": ({}, None),
    "passive-all": ({"OMP_WAIT_POLICY": "PASSIVE"}, None),
    "spin-1": ({}, 1),
}


@dataclass
class Run:
    ttft: float
    tps: float
    tokens: int


# ---- the in-process side (a child process per configuration) ------------------------------


def child(threads: int) -> None:
    """Loads the model, then for each JSON line {"prompt", "max_tokens"} on stdin runs it and prints a Run."""
    from llama_cpp import Llama
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    from egp_core.local.engine import default_model_path

    llm = Llama(str(default_model_path()), n_ctx=4096, n_threads=threads, n_threads_batch=threads, verbose=False)
    fmt = Jinja2ChatFormatter(
        template=llm.metadata["tokenizer.chat_template"],
        eos_token=llm.detokenize([llm.token_eos()], special=True).decode(),
        bos_token=llm.detokenize([llm.token_bos()], special=True).decode(),
    )
    print("ready", flush=True)
    for line in sys.stdin:
        ask = json.loads(line)
        text = fmt(messages=[{"role": "user", "content": ask["prompt"]}]).prompt
        tokens = llm.tokenize(text.encode(), add_bos=False, special=True)
        times = []
        started = time.monotonic()
        for chunk in llm.create_completion(
            prompt=tokens, stream=True, max_tokens=ask["max_tokens"], temperature=0.0, repeat_penalty=1.0
        ):
            if chunk["choices"][0]["text"]:
                times.append(time.monotonic())
        n = len(times)
        print(json.dumps({"ttft": times[0] - started, "tps": (n - 1) / (times[-1] - times[0]), "tokens": n}),
              flush=True)


class Child:
    def __init__(self, env: dict[str, str], threads: int) -> None:
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--child", str(threads)],
            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
            env={**{k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}, **env},
        )
        if self.process.stdout.readline().strip() != "ready":
            raise SystemExit("an in-process child did not start")

    def run(self, prompt: str, max_tokens: int) -> Run:
        self.process.stdin.write(json.dumps({"prompt": prompt, "max_tokens": max_tokens}) + "\n")
        self.process.stdin.flush()
        return Run(**json.loads(self.process.stdout.readline()))

    def close(self) -> None:
        self.process.stdin.close()
        stop(self.process)


# ---- the server side -------------------------------------------------------------------------


def via_server(client: EGPClient, prompt: str, max_tokens: int) -> Run:
    request = CompletionRequest(
        model=DEFAULT_MODEL_ID, prompt=prompt, model_parameters=ModelParameters(temperature=0, max_tokens=max_tokens)
    )
    stream = client.stream(request)
    started = time.monotonic()
    times = [chunk.at for chunk in stream]
    tokens = stream.usage.completion if stream.usage else len(times)
    return Run(times[0] - started, (tokens - 1) / (times[-1] - times[0]), tokens)


def measure(condition: str, rounds: int, max_tokens: int) -> None:
    cores = machine_threads()
    hog = busy_core() if condition == "busy" else None
    process, url, started = start_server()
    children: dict[str, Child] = {}
    try:
        client = EGPClient(url, read_timeout=300)
        first = next(iter(client.stream(CompletionRequest(
            model=DEFAULT_MODEL_ID, prompt="Hi", model_parameters=ModelParameters(max_tokens=4)))))
        print(f"\n== {condition}: {'one core kept busy by another process' if hog else 'nothing added'}; "
              f"{cores} cores; load average {os.getloadavg()[0]:.1f}")
        print(f"cold start (process start -> first token over HTTP): {(first.at - started) * 1000:.0f} ms")
        for name, (env, threads) in CONFIGS.items():
            children[name] = Child(env, threads or cores)
        results: dict[tuple[str, str], list[Run]] = {}
        for r in range(rounds):
            for pname, base in PROMPTS.items():
                prompt = f"({r + 1}) {base}"
                results.setdefault((pname, "server"), []).append(via_server(client, prompt, max_tokens))
                for name, c in children.items():
                    results.setdefault((pname, name), []).append(c.run(prompt, max_tokens))
        report(results, rounds)
    finally:
        for c in children.values():
            c.close()
        stop(process)
        if hog:
            stop(hog)


def report(results: dict[tuple[str, str], list[Run]], rounds: int) -> None:
    print(f"{'prompt':<14} {'path':<12} {'tokens':>6} {'tok/s med':>9} {'tok/s best':>10} {'TTFT ms':>8}")
    for (pname, path), runs in results.items():
        print(f"{pname:<14} {path:<12} {statistics.median(x.tokens for x in runs):>6.0f} "
              f"{statistics.median(x.tps for x in runs):>9.1f} {max(x.tps for x in runs):>10.1f} "
              f"{statistics.median(x.ttft for x in runs) * 1000:>8.0f}")
    for pname in PROMPTS:
        server = results[(pname, "server")]
        per_round = [
            server[i].tps / max(results[(pname, name)][i].tps for name in CONFIGS) for i in range(rounds)
        ]
        best_name = max(CONFIGS, key=lambda n: max(x.tps for x in results[(pname, n)]))
        best = max(x.tps for x in server) / max(x.tps for x in results[(pname, best_name)])
        print(f"{pname:<14} server / best in-process: median of rounds {statistics.median(per_round):.2f} "
              f"({min(per_round):.2f}..{max(per_round):.2f}); best of rounds {best:.2f} "
              f"(best configuration: {best_name}); target >= 0.9")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--conditions", default="quiet,busy", help="quiet, busy, or both (comma-separated)")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child)
    for condition in args.conditions.split(","):
        measure(condition.strip(), args.rounds, args.max_tokens)


if __name__ == "__main__":
    main()
