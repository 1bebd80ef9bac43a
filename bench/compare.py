"""Benchmark: do the compare page's panes really stream at the same time?

    .venv/bin/python bench/compare.py [--tokens 1000] [--pace 500] [--rounds 3]
    .venv/bin/python bench/compare.py --local [--tokens 128]

Three fake EGP backends (tests/fake_egp.py, each its own process, so they do
not share our GIL) stream `--tokens` tokens at `--pace` tokens per second each
(default 1,000 tokens at 500/s: 2 s per answer). In the same run, round by
round, it measures

* each stream alone, one after the other; the baseline is the slowest of them;
* the comparison: the three streams at once;

and prints the wall time of the comparison divided by the baseline. Target:
at most 1.15 (1.0 means three answers take no longer than the slowest one).

Both go through the code path the page uses (views/compare.py `start` and
`show_run`): one `Generation` per pane in its own thread, each with its own
`EGPClient` (connection.make_client), saving as it streams into a real SQLite
`Store` (the app's history database, in a temporary folder), and the page's
`ui.live.watch_many` loop watching all panes with throttled redraws until
every one has ended. Streamlit runs in "bare mode" here (no server, no
browser): the redraw calls are made but render nothing, so what is measured is
our threads, sockets, SSE parsing, saves and the watch loop, not a browser's
rendering (bench/ui_stream.py measures the page in Chromium). The baseline
goes through exactly the same path with one pane.

With `--local`, the three panes all use the built-in model instead (one local
server, `python -m egp_core.local` with its defaults; each pane a different
prompt, greedy, `--tokens` tokens): the server decodes them together in one
batch. As the model may end an answer early, each run's time is divided by
the tokens of its longest answer. Target there: at most 1.6 (one after
another would be about 3).

With `--page`, each round also times the real compare page (views/compare.py
under Streamlit's AppTest, in this process: widgets, the page's own `start`,
`watch_many` sending its redraws, the rerun that draws the receipts) from the
prompt to the end of the script run, against the same baseline. That includes
the page's own overhead on top of the streaming, so it is the stricter figure.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402

from bench.local_server import start_server  # noqa: E402
from egp_core.connections import Connection  # noqa: E402
from egp_core.generation import Generation  # noqa: E402
from egp_core.local.engine import DEFAULT_MODEL_ID  # noqa: E402
from egp_core.store import Store, open_store  # noqa: E402
from egp_core.types import CompletionRequest, ModelParameters  # noqa: E402
from ui import live  # noqa: E402

PANES = 3


def start_fake(tokens: int, pace: float, name: str) -> tuple[subprocess.Popen, str]:
    """A fake EGP server process streaming `tokens` tokens at `pace` per second; returns (process, url)."""
    text = " ".join(f"{name}{i}" for i in range(tokens))
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fake_egp", "--port", "0", "--pace", str(pace), "--text", text,
         "--models", f"{name}-model"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    line = proc.stdout.readline()
    found = re.search(r"(http://\S+)", line)
    if not found:
        proc.kill()
        raise RuntimeError(f"the fake server did not start: {line!r}")
    return proc, found.group(1)


CPU = {"seconds": 0.0, "wall": 0.0, "tokens": 0}  # this process's CPU while panes stream, summed over runs


def run_panes(store: Store, connections: list[Connection], tokens: int, local: bool = False, tag: str = "") -> float:
    """Start one Generation per connection together (as the page does), watch them with the page's
    loop until all have ended; returns the wall time in seconds (`local`: divided by the tokens of
    the longest answer, since the model may end one early). `tag` starts each local prompt, so
    that no run reuses the KV cache of an earlier run's identical prompt. Adds this process's CPU
    time, the wall time and the tokens to `CPU`."""
    conv = store.create_conversation("bench", "bench", kind="compare")
    store.add_message(conv, "user", "Count")
    gens = []
    for i, conn in enumerate(connections):
        if local:  # a different story per pane, longer than `tokens` at temperature 0
            model, prompt, params = DEFAULT_MODEL_ID, f"{tag}Write a very long story about a dragon, part {i} of {conn.name}.", \
                ModelParameters(temperature=0, max_tokens=tokens)
        else:
            model, prompt, params = f"{conn.name}-model", "Count", ModelParameters(max_tokens=tokens + 10)
        request = CompletionRequest(model=model, prompt=prompt, model_parameters=params, stream=True)
        mid = store.add_message(conv, "assistant", "", status="streaming", model=request.model, pane=i)
        gen = Generation(None, request, sink=store, message_id=mid)
        gen.client = conn.make_client(on_retry=gen.note_retry)
        gen.on_finish = lambda g: g.client.close()
        gens.append(gen)
    t0, cpu0 = time.perf_counter(), time.process_time()
    for gen in gens:
        gen.start()
    live.watch_many([(g, st.empty(), st.empty()) for g in gens])
    elapsed = time.perf_counter() - t0
    CPU["seconds"] += time.process_time() - cpu0
    CPU["wall"] += elapsed
    CPU["tokens"] += sum(g.completion.usage.completion for g in gens if g.completion and g.completion.usage)
    for gen in gens:
        if gen.status != "complete" or (not local and len(gen.text.split()) != tokens):
            raise RuntimeError(f"a pane did not finish properly: {gen.status}, {gen.error}")
    if local:  # the model may end an answer early: time per token of the longest answer
        usage = [g.completion.usage for g in gens]
        return elapsed / max(u.completion if u else tokens for u in usage)
    return elapsed


def page_run(folder: str, connections: list[Connection]) -> float:
    """The compare page (AppTest) with one pane per connection: seconds from the prompt to the end of the run."""
    from streamlit.testing.v1 import AppTest

    os.environ.update({"EGP_PLAYGROUND_DATA": folder, "EGP_ENDPOINT_URL": connections[0].base_url,
                       "EGP_API_KEY": "bench-key", "EGP_PLAYGROUND_LOCAL": "0"})
    st.cache_resource.clear()
    st.cache_data.clear()
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.session_state["session_connections"] = [
        Connection(id=f"session-{c.name}", name=c.name, kind="egp", base_url=c.base_url, api_key="bench-key")
        for c in connections[1:]
    ]
    at.run()
    at.switch_page("views/compare.py").run()
    at.segmented_control(key="compare_panes").set_value(len(connections)).run()
    for i, c in enumerate(connections[1:], start=1):
        at.selectbox(key=f"pane{i}-connection_id").set_value(f"session-{c.name}").run()
    for i in range(len(connections)):
        at.number_input(key=f"pane{i}-max_tokens").set_value(32000).run()
    t0 = time.perf_counter()
    at.chat_input(key="compare-input").set_value("Count").run()
    elapsed = time.perf_counter() - t0
    if at.exception or len([c for c in at.caption if "Finished" in c.value]) != len(connections):
        raise RuntimeError(f"the page did not show {len(connections)} finished answers: {at.exception}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, default=1000, help="tokens per answer (default 1000)")
    parser.add_argument("--pace", type=float, default=500, help="tokens per second per backend (default 500)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--page", action="store_true", help="also time the real compare page (AppTest)")
    parser.add_argument("--local", action="store_true", help="three panes on the built-in model")
    args = parser.parse_args()
    if args.local and args.page:
        parser.error("--page works with the fake backends only")
    # Bare mode (and AppTest) warn about the missing script context and runtime on every call.
    for name in ("streamlit.runtime.scriptrunner_utils.script_run_context",
                 "streamlit.runtime.caching.cache_data_api"):
        logging.getLogger(name).addFilter(lambda record: record.levelno >= logging.ERROR)

    names = ["alpha", "beta", "gamma"][:PANES]
    if args.local:
        tokens = 128 if args.tokens == parser.get_default("tokens") else args.tokens
        process, url, _ = start_server()
        fakes = [(process, url)]
        urls = [url] * PANES
    else:
        tokens = args.tokens
        fakes = [start_fake(args.tokens, args.pace, n) for n in names]
        urls = [url for _, url in fakes]
    try:
        with tempfile.TemporaryDirectory() as folder:
            store = open_store(f"sqlite:///{os.path.join(folder, 'history.db')}")
            connections = [Connection(id=n, name=n, kind="egp", base_url=url, api_key="bench-key")
                           for n, url in zip(names, urls, strict=True)]
            run_panes(store, connections[:1], tokens, args.local)  # warm up: imports, first connection
            ratios, page_ratios = [], []
            CPU.update(seconds=0.0, wall=0.0, tokens=0)
            if args.local:
                print(f"{PANES} panes on the built-in model, {tokens} tokens each (one after another would be "
                      f"about {PANES}x); load average {os.getloadavg()[0]:.1f}")
            else:
                print(f"{PANES} panes, {tokens} tokens each at {args.pace:g} tokens/s per backend "
                      f"(ideal: {tokens / args.pace:.2f} s per answer)")
            for r in range(args.rounds):
                alone = [run_panes(store, [c], tokens, args.local, f"({r + 1}a) ") for c in connections]
                together = run_panes(store, connections, tokens, args.local, f"({r + 1}b) ")
                ratio = together / max(alone)
                ratios.append(ratio)
                unit = "ms per token of the longest answer" if args.local else "ms"
                print(f"round {r + 1}: alone {', '.join(f'{a * 1000:.1f}' for a in alone)} (slowest {max(alone) * 1000:.1f}); "
                      f"all {PANES} at once {together * 1000:.1f} ({unit}); ratio {ratio:.3f}")
                if args.page:
                    on_page = page_run(folder, connections)
                    page_ratios.append(on_page / max(alone))
                    print(f"         the compare page, prompt to last receipt: {on_page:.3f} s; "
                          f"ratio {page_ratios[-1]:.3f}")
            store.close()
    finally:
        for proc, _ in fakes:
            proc.terminate()
            proc.wait(5)
    print(f"comparison / slowest single stream: median {statistics.median(ratios):.3f} "
          f"(worst {max(ratios):.3f}); target <= {1.6 if args.local else 1.15}")
    if args.local and CPU["wall"]:
        print(f"this process (the app's side: Generations, saves, watch loop) used {CPU['seconds'] / CPU['wall']:.0%} "
              f"of a core while panes streamed, {CPU['seconds'] * 1000 / max(CPU['tokens'], 1):.2f} ms of CPU per token")
    if page_ratios:
        print(f"through the compare page: median {statistics.median(page_ratios):.3f} (worst {max(page_ratios):.3f})")


if __name__ == "__main__":
    main()
