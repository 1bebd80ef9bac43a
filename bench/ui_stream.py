"""Benchmark: our chat page against a naive `st.write_stream` page, in a real browser.

    .venv/bin/python bench/ui_stream.py [--rounds 3] [--scenario 4000@2000 --scenario 8000@10000]

A fake EGP server (tests/fake_egp.py, in a child process so that nothing in
this process slows its pace) streams the same answer to both pages, one token
per event at a fixed pace: 4,000 tokens at 2,000 tokens/s and 8,000 tokens at
10,000 tokens/s (a fast engine). Both pages run as real `streamlit run`
processes: our app (app.py, pointed at the fake through EGP_ENDPOINT_URL, with a
fresh EGP_PLAYGROUND_DATA folder) and bench/naive_app.py (a minimal chat that
feeds the stream to `st.write_stream` chunk by chunk). Headless Chromium
(Debian's, through Playwright) opens each page in a fresh context, asks, and
measures, per answer:

(a) consumption: the fake stamps (wall clock) every socket write of the stream;
    the time from its first event to its last one, against the source's own
    duration (events / pace). A consumer slower than the pace shows up here as
    TCP backpressure; the consumer's own span (egp_core's stream metrics: first
    token to end of stream, saved with the answer, or written by the naive
    app) is printed next to it, since socket buffers can hide a few hundred
    milliseconds of lag from the server.
(b) lag: from the fake's last event sent to the complete text in the DOM. A
    MutationObserver in the page records Date.now() the moment the answer's
    last word (a unique marker) appears in the last assistant message; the
    text is then checked against the full answer.
(c) websocket bytes the browser received (message payloads, counted in the
    page by a WebSocket wrapper installed before Streamlit loads), from the
    moment the question is sent until the page is idle again.

(d) the freeze: the browser's main thread in long tasks (50 ms or more, a
    PerformanceObserver) that started after the fake's last token, and
    "settle", those that started after the complete text was on screen (the
    re-render of the finished answer, without any live redraws the browser was
    still catching up on).

Medians over the rounds (pages alternate which goes first), then the ratios
against the targets: consumption within 1.1x the source's duration, lag at
most 100 ms, websocket bytes at most 1/20 of the naive page's, a freeze of at
most 50 ms. Also printed: "busy", the browser's main thread in long tasks
during the whole answer, which is mostly Markdown rendering; the naive page's
many small renders mostly stay under 50 ms each, so it is a figure for our
page, not a comparison.

What the measurements showed (2 CPUs, shared with other work):

* The naive page consumes 8,000 tokens at 10,000/s in about 6 s (7x the
  source) and sends ~30 MB: every token re-sends the whole text. The fake's
  own span looks on time there (socket buffers take the whole answer), which
  is why the consumer's span is measured too.
* Our page consumes at the source's pace (the Generation thread does not
  wait for the page) and sent ~0.1 MB, but the complete text appeared 0.3-0.6 s
  after the last token: the watcher returned without drawing and the page
  rerun drew it, and that rerun starts with Streamlit's full garbage collection
  (runner.postScriptGC), which holds the GIL, and so the websocket, for
  0.1-0.3 s; the browser then re-rendered the whole answer as one Markdown
  element. ui/live.py now draws the end the moment the answer is done and
  pauses 50 ms so the event loop sends it before the rerun; finished
  paragraphs are drawn once in their own elements, so each redraw (and the
  last one) renders only the unfinished end. Turning postScriptGC off did not
  help in our (noisy) runs: the rerun's messages then reach the browser right
  behind the last redraw, and it may render them together.
* The freeze after a long answer (0.7-1.1 s at load 10): a CPU profile of the
  browser (Chromium's Profiler through CDP) from the last token on showed the
  page's rerun re-rendering everything, the largest single part the syntax
  highlighting of the three "View code" snippets. Now the chat page draws the
  end of the answer from the store in the very blocks the live view drew (the
  browser gets identical elements and re-renders nothing), carries on with the
  receipt without a rerun, and draws "View code" only while it is open.
  Identical elements re-sent by a rerun cost nothing (measured: 0 ms of long
  tasks for a rerun of a page with a 60 kB answer, as one element or as 2 kB
  blocks).
* What was left (a median 87 ms at 10,000 tokens/s, 0 ms at 2,000/s), seen in a
  Chromium trace (Playwright's `browser.start_tracing`, with the websocket's
  messages decoded as Streamlit ForwardMsgs): the watcher drew finished blocks
  only at each redraw of the end (4 a second), so at 10,000 tokens/s five to
  seven 2 kB blocks reached the browser together and the last batch, after the
  last token, took one 60-90 ms task of Markdown rendering (remark and React);
  and this page's own check for the complete text read `innerText`, which
  forced a layout of the whole answer inside that task (10-40 ms of it). Now
  the watcher looks 20 times a second and draws each block the moment it is
  finished, so the browser renders a block or two at a time and the last draw
  is only the short end; the check reads `textContent` (no layout), and the
  text as shown is checked once the page is quiet. Freeze and settle: 0 ms in
  every run at both paces (lag 15-29 ms). The previous page, measured with the
  fixed check, also showed 0 ms at 10,000/s (3 runs, lag 37-53 ms): most of the
  87 ms had been the check's forced layout.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402

from tests.fake_egp import FakeEGP, _Handler, tokenize  # noqa: E402
from tests.plugins.app import CHROMIUM_FLAGS, RunningApp  # noqa: E402

ASSISTANT = "[data-testid='stChatMessage']:has([data-testid='stChatMessageAvatarAssistant'])"
CHAT_BOX = "[data-testid='stChatInputTextArea']"
MARKER = "omega-finis."
PROMPT = "Write me a very long essay about rivers."
TARGET_CONSUME, TARGET_LAG_MS, TARGET_BYTES, TARGET_FREEZE_MS = 1.1, 100.0, 1 / 20, 50.0


# ---- the fake, with a stamp on every write (runs in a child process) ------------
class _StampedSocket:
    """The handler's socket, noting the wall-clock time after each `sendall` (the stream's writes)."""

    def __init__(self, sock: Any) -> None:
        self._sock = sock
        self.stamps: list[float] = []

    def sendall(self, data: bytes) -> None:
        self._sock.sendall(data)
        self.stamps.append(time.time())

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class _TimedHandler(_Handler):
    def _stream(self, script: Any, chat: bool, body: dict[str, Any]) -> None:
        real, stamped = self.connection, _StampedSocket(self.connection)
        finished_before = self.fake.streams_finished
        self.connection = stamped
        try:
            super()._stream(script, chat, body)
        finally:
            self.connection = real
        s = stamped.stamps
        # Chunked: the last write is the terminating empty chunk; the one before it the last event.
        last_event = s[-2] if script.chunked and len(s) >= 2 else (s[-1] if s else None)
        self.fake.timings.append({"first": s[0] if s else None, "last_event": last_event,
                                  "writes": len(s), "complete": self.fake.streams_finished > finished_before})

    def _control(self, method: str, path: str, body: Any) -> None:
        if method == "GET" and path == "/_fake/timings":
            return self._json(200, self.fake.timings)
        return super()._control(method, path, body)


def serve_fake() -> None:
    fake = FakeEGP()
    fake.timings = []
    fake._httpd.RequestHandlerClass = _TimedHandler
    print(fake.base_url, flush=True)
    fake._httpd.serve_forever(poll_interval=0.05)


# ---- the two pages ---------------------------------------------------------------
# ---- in the browser ----------------------------------------------------------------
INIT_JS = r"""
(() => {
  const b = window.__bench = {wsBytes: 0, wsFrames: 0, lastFrameAt: 0, visibleAt: null, frames: []};
  const Native = window.WebSocket;
  class CountingWebSocket extends Native {
    constructor(...args) {
      super(...args);
      this.addEventListener('message', (e) => {
        const d = e.data;
        b.wsFrames += 1;
        b.wsBytes += (typeof d === 'string') ? new TextEncoder().encode(d).length : (d.byteLength ?? d.size ?? 0);
        b.lastFrameAt = Date.now();
        if (b.frames.length < 20000) b.frames.push([b.lastFrameAt, b.wsBytes]);
      });
    }
  }
  window.WebSocket = CountingWebSocket;
  b.tasks = [];
  b.busyMs = 0;  // main-thread tasks of 50 ms or more (rendering), since watch()
  try {
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) {
        b.busyMs += e.duration;
        if (b.tasks.length < 5000) b.tasks.push([performance.timeOrigin + e.startTime, e.duration]);
      }
    }).observe({type: 'longtask'});
  } catch (e) { b.busyMs = null; }
  b.watch = (marker, expected, selector) => {
    b.wsBytes = 0; b.wsFrames = 0; b.visibleAt = null; b.frames = []; b.tasks = []; if (b.busyMs !== null) b.busyMs = 0;
    // The whole answer, compared without white space: textContent, unlike innerText, needs no layout,
    // so the check adds nothing to the page's own work in the task it runs in (with innerText it
    // forced a layout of the whole answer, 10-40 ms of the freeze). `measure` checks the text as shown
    // (innerText) once the page is quiet.
    const bare = (t) => t.replace(/\s+/g, '');
    const want = bare(expected);
    const check = () => {
      const all = document.querySelectorAll(selector);
      const last = all[all.length - 1];
      // Cheap test first (the last word), then the whole answer.
      if (last && last.textContent.includes(marker) && bare(last.textContent).includes(want)) {
        b.visibleAt = Date.now();
        observer.disconnect();
      }
    };
    const observer = new MutationObserver(check);
    observer.observe(document.body, {subtree: true, childList: true, characterData: true});
  };
})();
"""


def wait_idle(page, timeout: float = 300_000) -> None:
    page.wait_for_selector("[data-test-script-state='notRunning']", timeout=timeout, state="attached")


def wait_quiet(page, quiet_ms: int = 750, timeout: float = 120) -> None:
    """Idle script and no websocket message for `quiet_ms`: everything about this answer has arrived."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        wait_idle(page)
        since = page.evaluate("Date.now() - window.__bench.lastFrameAt")
        if since >= quiet_ms:
            return
        time.sleep((quiet_ms - since) / 1000 + 0.05)
    raise RuntimeError("the page never went quiet")


# ---- one answer ---------------------------------------------------------------------
WORDS = ("river water stone bridge valley current delta bank flood source mouth meander channel "
         "the a of and to in runs flows carries past under through slowly quickly old town "
         "farmers market boats fish light morning evening sea rain mountain forest field").split()


def answer_text(tokens: int, seed: int = 7) -> str:
    """Prose of exactly `tokens` tokens (as the fake splits them) in paragraphs, ending with MARKER."""
    rng = random.Random(seed)
    out: list[str] = []
    sentence = paragraph = 0
    for i in range(tokens - 1):
        word = rng.choice(WORDS)
        if sentence == 0:
            word = word.capitalize()
        sentence += 1
        if sentence >= rng.randint(8, 16):
            word += "."
            sentence = 0
            paragraph += 1
        sep = "" if i == 0 else ("\n\n" if paragraph >= 5 and sentence == 1 else " ")
        if sep == "\n\n":
            paragraph = 0
        out.append(sep + word)
    out.append(" " + MARKER)
    text = "".join(out)
    assert len(tokenize(text)) == tokens
    return text


@dataclass
class Run:
    page: str
    tokens: int
    pace: float
    source_s: float
    server_s: float
    consumer_s: float | None
    lag_ms: float
    ws_bytes: int
    ws_frames: int
    busy_ms: float | None = None
    """The browser's main thread in long tasks (50 ms or more: mostly rendering) during the answer."""
    freeze_ms: float | None = None
    """The browser's main thread in long tasks that started after the server's last token: the freeze
    a person feels when a long answer ends (the last redraw, then the page's rerun)."""
    settle_ms: float | None = None
    """Long tasks that started after the complete text was on screen: the re-render of the finished
    answer (the freeze minus any live redraws the browser was still catching up on)."""
    frames: list = field(default_factory=list, repr=False)
    """For a closer look: (browser ms, bytes so far) for each websocket message, (start ms, duration)
    of each long task, and the server's last event (wall-clock seconds)."""
    tasks: list = field(default_factory=list, repr=False)
    last_event: float = 0.0

    @property
    def consume_s(self) -> float:
        """The slower of the two views of consumption: the server's and the consumer's own."""
        return max(self.server_s, self.consumer_s or 0.0)


def consumer_span(metrics: dict[str, Any] | None) -> float | None:
    """First token to end of stream, from egp_core's stream metrics."""
    if not metrics or metrics.get("total_time") is None or metrics.get("time_to_first_token") is None:
        return None
    return metrics["total_time"] - metrics["time_to_first_token"]


def our_metrics(data_dir: Path, page_url: str) -> dict[str, Any] | None:
    from egp_core.store import open_store

    conv = parse_qs(urlsplit(page_url).query).get("c", [None])[0]
    if not conv:
        return None
    store = open_store(f"sqlite:///{data_dir}/history.db")
    answers = [m for m in store.messages(conv) if m.role == "assistant"]
    return answers[-1].metrics if answers else None


def naive_metrics(results: Path) -> dict[str, Any] | None:
    try:
        lines = results.read_text().splitlines()
    except OSError:
        return None
    return json.loads(lines[-1]) if lines else None


def measure(browser, kind: str, app: RunningApp, fake_url: str, tokens: int, pace: float | None,
            naive_results: Path) -> Run:
    text = answer_text(tokens)
    script = {"reset": {}, "models": {"names": ["fake-model"]}, "reply": {"text": text, "pace": pace}}
    requests.post(fake_url + "/_fake/script", json=script, timeout=10).raise_for_status()
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        context.add_init_script(INIT_JS)
        page = context.new_page()
        page.set_default_timeout(300_000)
        page.goto(app.url)
        page.locator(CHAT_BOX + ":enabled").wait_for()
        wait_idle(page)
        wait_quiet(page, quiet_ms=300)
        timings_before = len(requests.get(fake_url + "/_fake/timings", timeout=10).json())
        page.evaluate("([m, t, s]) => window.__bench.watch(m, t, s)", [MARKER, text, ASSISTANT])
        box = page.locator(CHAT_BOX)
        box.fill(PROMPT)
        box.press("Enter")
        page.wait_for_function("window.__bench.visibleAt !== null", polling=100, timeout=300_000)
        wait_quiet(page)
        bench = page.evaluate("(({wsBytes, wsFrames, visibleAt, frames, tasks, busyMs}) => "
                              "({wsBytes, wsFrames, visibleAt, frames, tasks, busyMs}))(window.__bench)")
        shown = page.locator(ASSISTANT).last.inner_text()
        if " ".join(text.split()) not in " ".join(shown.split()):
            raise RuntimeError(f"{kind}: the page does not show the whole answer ({len(shown)} characters)")
        timings = requests.get(fake_url + "/_fake/timings", timeout=10).json()
        if len(timings) != timings_before + 1 or not timings[-1]["complete"]:
            raise RuntimeError(f"{kind}: expected one complete stream, the fake saw {timings[timings_before:]}")
        t = timings[-1]
        metrics = our_metrics(app.data_dir, page.url) if kind == "ours" else naive_metrics(naive_results)
    finally:
        context.close()
    return Run(page=kind, tokens=tokens, pace=pace or 0, source_s=tokens / pace if pace else 0,
               server_s=t["last_event"] - t["first"], consumer_s=consumer_span(metrics),
               lag_ms=bench["visibleAt"] - t["last_event"] * 1000, ws_bytes=int(bench["wsBytes"]),
               ws_frames=int(bench["wsFrames"]), busy_ms=bench["busyMs"], frames=bench["frames"], tasks=bench["tasks"],
               last_event=t["last_event"], freeze_ms=freeze(bench["tasks"], bench["busyMs"], t["last_event"]),
               settle_ms=freeze(bench["tasks"], bench["busyMs"], bench["visibleAt"] / 1000))


def freeze(tasks: list, busy_ms: float | None, last_event: float) -> float | None:
    """Milliseconds of long tasks (50 ms or more) that started after the last token was sent."""
    if busy_ms is None:  # no longtask observer in this browser
        return None
    return sum(duration for start, duration in tasks if start >= last_event * 1000)


# ---- report --------------------------------------------------------------------------
def _mb(n: float) -> str:
    return f"{n / 1e6:.2f} MB" if n >= 1e5 else f"{n / 1e3:.1f} kB"


def _med(xs: list[float | None]) -> float | None:
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def median_run(runs: list[Run]) -> dict[str, float | None]:
    out: dict[str, float | None] = {"source_s": runs[0].source_s, "best_lag_ms": min(r.lag_ms for r in runs)}
    for name in ("consume_s", "server_s", "consumer_s", "lag_ms", "ws_bytes", "ws_frames", "busy_ms", "freeze_ms",
                 "settle_ms"):
        out[name] = _med([getattr(r, name) for r in runs])
    return out


def _s(x: float | None, fmt: str = "{:.2f}s") -> str:
    return fmt.format(x) if x is not None else "-"


def report(runs: list[Run], scenarios: list[tuple[int, float]]) -> bool:
    print("\nEvery run (busy: the browser's main thread in tasks of 50 ms or more):")
    print(f"{'page':6} {'tokens':>6} {'tok/s':>6} {'source':>7} {'server':>7} {'consumer':>8} {'lag':>9} "
          f"{'ws bytes':>10} {'frames':>6} {'busy':>8} {'freeze':>8} {'settle':>8}")
    for r in runs:
        print(f"{r.page:6} {r.tokens:6} {r.pace:6.0f} {r.source_s:6.3f}s {r.server_s:6.3f}s "
              f"{_s(r.consumer_s, '{:.3f}s'):>8} {r.lag_ms:7.0f}ms {_mb(r.ws_bytes):>10} {r.ws_frames:6} "
              f"{_s(r.busy_ms, '{:.0f}ms'):>8} {_s(r.freeze_ms, '{:.0f}ms'):>8} {_s(r.settle_ms, '{:.0f}ms'):>8}")
    ok = True
    print("\nMedians (consume: the slower of the server's and the consumer's span, against the source's duration;")
    print("lag: median, and the best run in brackets):")
    print(f"{'stream':>17} {'page':6} {'consume':>17} {'server':>7} {'consumer':>8} {'lag':>16} {'ws bytes':>10} "
          f"{'busy':>8} {'freeze':>8} {'settle':>8}")
    for tokens, pace in scenarios:
        med = {k: median_run([r for r in runs if r.page == k and r.tokens == tokens and r.pace == pace])
               for k in ("ours", "naive")}
        for k in ("naive", "ours"):
            m = med[k]
            lag = f"{m['lag_ms']:.0f}ms ({m['best_lag_ms']:.0f})"
            print(f"{tokens:>6} @ {pace:>6.0f}/s {k:6} {m['consume_s']:6.2f}s/{m['source_s']:.2f}s "
                  f"{m['consume_s'] / m['source_s']:4.2f}x {m['server_s']:6.2f}s {_s(m['consumer_s']):>8} "
                  f"{lag:>16} {_mb(m['ws_bytes']):>10} {_s(m['busy_ms'], '{:.0f}ms'):>8} "
                  f"{_s(m['freeze_ms'], '{:.0f}ms'):>8} {_s(m['settle_ms'], '{:.0f}ms'):>8}")
        ours, naive = med["ours"], med["naive"]
        consume = ours["consume_s"] / ours["source_s"]
        byte_ratio = ours["ws_bytes"] / naive["ws_bytes"]
        checks = [
            (f"consumption {consume:.2f}x the source's duration", consume <= TARGET_CONSUME, f"<= {TARGET_CONSUME}x"),
            (f"lag {ours['lag_ms']:.0f} ms (median)", ours["lag_ms"] <= TARGET_LAG_MS, f"<= {TARGET_LAG_MS:.0f} ms"),
            (f"websocket bytes 1/{1 / byte_ratio:.0f} of the naive page's ({byte_ratio:.3f}x)",
             byte_ratio <= TARGET_BYTES, "<= 1/20"),
        ]
        if ours["freeze_ms"] is not None:
            checks.append((f"freeze after the last token {ours['freeze_ms']:.0f} ms (median)",
                           ours["freeze_ms"] <= TARGET_FREEZE_MS, f"<= {TARGET_FREEZE_MS:.0f} ms"))
        print(f"  ours, {tokens} tokens at {pace:.0f}/s (naive: {naive['consume_s'] / naive['source_s']:.2f}x, "
              f"{naive['lag_ms']:.0f} ms, {_mb(naive['ws_bytes'])}):")
        for label, passed, target in checks:
            ok &= passed
            print(f"    {'PASS' if passed else 'MISS'}  {label}  (target {target})")
    return ok


def parse_scenario(s: str) -> tuple[int, float]:
    tokens, pace = s.split("@")
    return int(tokens), float(pace)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--scenario", action="append", type=parse_scenario,
                        help="TOKENS@TOKENS_PER_SECOND (default: 4000@2000 and 8000@10000)")
    parser.add_argument("--serve-fake", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_fake:
        return serve_fake()
    scenarios = args.scenario or [(4000, 2000.0), (8000, 10000.0)]
    chromium = shutil.which("chromium")
    if not chromium:
        sys.exit("Debian's chromium is not installed: run `bash scripts/setup.sh --dev`.")

    from playwright.sync_api import sync_playwright

    work = Path(tempfile.mkdtemp(prefix="ui-stream-bench-"))
    fake_proc = subprocess.Popen([sys.executable, __file__, "--serve-fake"], stdout=subprocess.PIPE, text=True)
    apps: dict[str, RunningApp] = {}
    try:
        fake_url = fake_proc.stdout.readline().strip()
        base_env = {"EGP_ENDPOINT_URL": fake_url, "EGP_API_KEY": "k"}
        (work / "ours").mkdir()
        naive_results = work / "naive.jsonl"
        for name in ("EGP_PLAYGROUND_LOCAL", "EGP_PLAYGROUND_DB_URL", "EGP_ACCOUNT_ID"):
            os.environ.pop(name, None)  # our page: the fake only, history in the fresh folder
        apps["ours"] = RunningApp({**base_env, "EGP_PLAYGROUND_DATA": str(work / "ours")}, work / "ours").start()
        apps["naive"] = RunningApp({**base_env, "BENCH_NAIVE_RESULTS": str(naive_results)}, work,
                                   script=ROOT / "bench" / "naive_app.py").start()
        runs: list[Run] = []
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS, headless=True)
            for kind, app in apps.items():  # warm up: imports, caches, the first run of each script
                measure(browser, kind, app, fake_url, 200, None, naive_results)
            for rnd in range(args.rounds):
                order = ["ours", "naive"] if rnd % 2 == 0 else ["naive", "ours"]
                for tokens, pace in scenarios:
                    for kind in order:
                        run = measure(browser, kind, apps[kind], fake_url, tokens, pace, naive_results)
                        runs.append(run)
                        print(f"round {rnd + 1} {kind:5} {tokens}@{pace:.0f}: server {run.server_s:.3f}s "
                              f"(source {run.source_s:.3f}s), lag {run.lag_ms:.0f} ms, {_mb(run.ws_bytes)}, "
                              f"freeze {_s(run.freeze_ms, '{:.0f}ms')}, settle {_s(run.settle_ms, '{:.0f}ms')}",
                              flush=True)
            browser.close()
        ok = report(runs, scenarios)
        print("\nAll targets met." if ok else "\nSome targets missed.")
    finally:
        for app in apps.values():
            app.stop()
        fake_proc.terminate()
        fake_proc.wait(10)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
