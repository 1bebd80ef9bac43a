"""Benchmark: SSE throughput and first-event latency of egp_core's stream.

    .venv/bin/python bench/stream_client.py [--events 20000] [--rounds 7] [--profile] [--api v5]

A local server (a separate process, so it does not share our GIL) streams
20,000 EGP completion events as fast as it can: prebuilt bytes, one HTTP/1.1
chunk per event as uvicorn sends them, the first event flushed alone. In the
same run, interleaved round by round, it measures events per second (on the
20,000-event stream) and time to first event (on 1-event streams from a second
such server, many rounds, so the median is steady) through

* `egp_core`'s `EGPClient.stream()` (what the app uses),
* the public guide's own loop (`requests` + `iter_lines` + `json.loads`), the baseline,
* the official `scale-egp` SDK's `completions().stream()`, as a reference,

and prints medians and the ratios against the guide's loop. Target: throughput
>= 0.9x the guide's loop, first event within 2 ms of it.

`--api v5` does the same for SGP v5 chat completions (`/v5/chat/completions`,
OpenAI's `chat.completion.chunk` events, usage on the last one, no [DONE]):
`egp_core`'s OpenAI-shaped client (`sgp_v5_client`), the guide's loop reading
`choices[0].delta.content`, and the `scale-gp-beta` SDK's
`chat.completions.create(stream=True)` as the reference.

What the profile showed, and what was done about it (egp_core/sse.py):
sseclient-py fed the response object directly reached about 0.65x of the
guide's loop. Two costs, per event: sseclient-py's `_read` stitches the body
line by line (a `bytes +=`, `splitlines`, `endswith` per line) and `events()`
runs its general per-line field parser even for the plain one-line
`data: {...}` event; and urllib3 removes the chunked framing with three calls
per HTTP chunk, a cost the guide pays too. Feeding sseclient-py bigger reads
(`iter_content`/`raw.stream` with 64 KiB) does not help on its own, because
urllib3 still yields one HTTP chunk at a time. So `egp_core.sse` (1) reads
whatever the socket has, up to 64 KiB, and removes the chunk framing itself
(then returns the connection to the pool like urllib3 does), and (2)
subclasses sseclient-py's SSEClient with a `_read` that splits on blank lines
with `bytes.split` and an `events()` that maps one-line `data:` blocks straight
to `Event`s, leaving every other block to sseclient-py's own parser. The client
then does one `json.loads` and a few dict lookups per event (no pydantic on the
hot path; usage is validated once, on the last event).
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402

from egp_core.client import EGPClient  # noqa: E402
from egp_core.openai_compat import sgp_v5_client  # noqa: E402
from egp_core.types import CompletionRequest, Message  # noqa: E402

MODEL, PROMPT, ACCOUNT = "gpt-4", "Count to a big number", "bench-account"


# ---- the server (run in a child process) -------------------------------------
def _frame(payload: dict) -> bytes:
    data = b"data: " + json.dumps(payload).encode() + b"\n\n"
    return b"%x\r\n%s\r\n" % (len(data), data)


def _v5_chunk(text: str, finish: str | None, usage: dict | None = None) -> dict:
    return {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1700000000, "model": MODEL,
            "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": finish, "logprobs": None}],
            "usage": usage}


def serve(port: int, events: int, api: str = "egp") -> None:
    """Answer every POST with `events` streamed completion events, as fast as the socket takes them."""
    if api == "v5":
        frames = [_frame(_v5_chunk(f" tok{i % 10}", None)) for i in range(events)]
        frames.append(_frame(_v5_chunk("", "stop", {"prompt_tokens": 5, "completion_tokens": events,
                                                      "total_tokens": events + 5})))
    else:
        frames = [_frame({"completion": {"text": f" tok{i % 10}", "finish_reason": None}, "token_usage": None})
                  for i in range(events)]
        frames.append(_frame({"completion": {"text": "", "finish_reason": "stop"},
                              "token_usage": {"prompt": 5, "completion": events, "total": events + 5}}))
    head = (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n")
    first, rest = head + frames[0], b"".join(frames[1:]) + b"0\r\n\r\n"

    def handle(conn: socket.socket) -> None:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        reader = conn.makefile("rb")
        with conn, reader:
            while True:
                if not reader.readline():
                    return
                length = 0
                while (line := reader.readline()) not in (b"\r\n", b""):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                reader.read(length)
                try:
                    conn.sendall(first)
                    conn.sendall(rest)
                except OSError:
                    return

    listener = socket.create_server(("127.0.0.1", port))
    print(listener.getsockname()[1], flush=True)
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=handle, args=(conn,), daemon=True).start()


# ---- the three clients -------------------------------------------------------
def run_egp_core(client: EGPClient) -> tuple[int, float, float]:
    if client.api == "chat":
        request = CompletionRequest(model=MODEL, messages=[Message(role="user", content=PROMPT)])
    else:
        request = CompletionRequest(model=MODEL, prompt=PROMPT)
    start = time.perf_counter()
    first = None
    n = 0
    for _chunk in client.stream(request):
        if first is None:
            first = time.perf_counter()
        n += 1
    return n, first - start, time.perf_counter() - start


def run_guide(session: requests.Session, url: str) -> tuple[int, float, float]:
    """The public guide's loop: requests + iter_lines + json.loads."""
    payload = {"model": MODEL, "prompt": PROMPT, "stream": True, "account_id": ACCOUNT}
    start = time.perf_counter()
    first = None
    n = 0
    response = session.post(url, json=payload, headers={"x-api-key": "k"}, stream=True)
    for line in response.iter_lines():
        if line:
            data = json.loads(line.decode("utf-8").removeprefix("data: "))
            if data["completion"]["text"]:
                if first is None:
                    first = time.perf_counter()
                n += 1
    return n, first - start, time.perf_counter() - start


def run_guide_v5(session: requests.Session, url: str) -> tuple[int, float, float]:
    """The same loop for v5 chat completions: requests + iter_lines + json.loads."""
    payload = {"model": MODEL, "messages": [{"role": "user", "content": PROMPT}], "stream": True}
    start = time.perf_counter()
    first = None
    n = 0
    response = session.post(url, json=payload, headers={"x-api-key": "k", "x-selected-account-id": ACCOUNT},
                            stream=True)
    for line in response.iter_lines():
        if line:
            data = json.loads(line.decode("utf-8").removeprefix("data: "))
            if data["choices"] and data["choices"][0]["delta"].get("content"):
                if first is None:
                    first = time.perf_counter()
                n += 1
    return n, first - start, time.perf_counter() - start


def run_sdk_v5(sdk_client) -> tuple[int, float, float]:
    start = time.perf_counter()
    first = None
    n = 0
    stream = sdk_client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": PROMPT}],
                                                stream=True)
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            if first is None:
                first = time.perf_counter()
            n += 1
    return n, first - start, time.perf_counter() - start


def run_sdk(sdk_client) -> tuple[int, float, float]:
    start = time.perf_counter()
    first = None
    n = 0
    for completion in sdk_client.completions().stream(model=MODEL, prompt=PROMPT, account_id=ACCOUNT):
        if completion.completion.text:
            if first is None:
                first = time.perf_counter()
            n += 1
    return n, first - start, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--api", choices=("egp", "v5"), default="egp",
                        help="egp: /egp/v1/completions events (default); v5: SGP v5 chat completion chunks")
    parser.add_argument("--no-sdk", action="store_true", help="skip the official SDK (slow)")
    parser.add_argument("--profile", action="store_true", help="also print a profile of egp_core's loop")
    parser.add_argument("--serve", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve is not None:
        return serve(args.serve, args.events, args.api)

    servers = [subprocess.Popen([sys.executable, __file__, "--serve", "0", "--events", str(n), "--api", args.api],
                                stdout=subprocess.PIPE, text=True) for n in (args.events, 1)]
    try:
        big, small = (f"http://127.0.0.1:{s.stdout.readline().strip()}" for s in servers)
        runners = {}
        for label, base in (("big", big), ("small", small)):
            session = requests.Session()
            if args.api == "v5":
                v5 = sgp_v5_client(base, "k", ACCOUNT, max_retries=0)
                runners[label] = {"egp_core": lambda c=v5: run_egp_core(c),
                                  "guide loop": lambda s=session, b=base: run_guide_v5(s, b + "/v5/chat/completions")}
                if not args.no_sdk:
                    from scale_gp_beta import SGPClient

                    sdk_v5 = SGPClient(api_key="k", account_id=ACCOUNT, base_url=base, max_retries=0)
                    runners[label]["scale-gp-beta SDK"] = lambda c=sdk_v5: run_sdk_v5(c)
                continue
            client = EGPClient(base, "k", ACCOUNT, max_retries=0)
            runners[label] = {"egp_core": lambda c=client: run_egp_core(c),
                              "guide loop": lambda s=session, b=base: run_guide(s, b + "/egp/v1/completions")}
            if not args.no_sdk:
                from scale_egp.sdk.client import EGPClient as SDKClient

                sdk = SDKClient(api_key="k", account_id=ACCOUNT, endpoint_url=base)
                runners[label]["scale-egp SDK"] = lambda c=sdk: run_sdk(c)
        names = list(runners["big"])
        for group in runners.values():  # warm up connections and caches
            for run in group.values():
                run()
        rates: dict[str, list[float]] = {name: [] for name in names}
        firsts: dict[str, list[float]] = {name: [] for name in names}
        for _ in range(args.rounds):
            for name in names:
                n, _first, total = runners["big"][name]()
                assert n == args.events, (name, n)
                rates[name].append(n / total)
        for _ in range(args.rounds * 10):
            for name in names:
                firsts[name].append(runners["small"][name]()[1])

        base_rate = statistics.median(rates["guide loop"])
        base_first = statistics.median(firsts["guide loop"])
        print(f"throughput: {args.events} events x {args.rounds} rounds; first event: 1-event streams x "
              f"{args.rounds * 10}; medians; each server in its own process")
        print(f"{'client':<19}{'events/s':>12}{'vs guide':>10}{'first event':>14}{'vs guide':>12}")
        for name in names:
            rate, first = statistics.median(rates[name]), statistics.median(firsts[name])
            print(f"{name:<19}{rate:>12,.0f}{rate / base_rate:>9.2f}x{first * 1000:>11.2f} ms"
                  f"{(first - base_first) * 1000:>+9.2f} ms")
        ratio = statistics.median(rates["egp_core"]) / base_rate
        delta = (statistics.median(firsts["egp_core"]) - base_first) * 1000
        print(f"egp_core / guide throughput ratio: {ratio:.2f} (target >= 0.90); "
              f"first event {delta:+.2f} ms vs guide (target within 2 ms)")

        if args.profile:
            import cProfile
            import pstats

            profiler = cProfile.Profile()
            profiler.enable()
            runners["big"]["egp_core"]()
            profiler.disable()
            pstats.Stats(profiler).sort_stats("tottime").print_stats(12)
    finally:
        for server in servers:
            server.kill()
            server.wait()


if __name__ == "__main__":
    main()
