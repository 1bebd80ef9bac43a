"""Benchmark: 50 phones vote at once against one app process.

    .venv/bin/python bench/votes.py [--phones 50] [--batch 10]

One real `streamlit run` process (app.py, tests/plugins/app.py RunningApp) with
three fake EGP servers (tests/fake_egp.py), as in tests/test_browser_demo.py.
Debian's headless Chromium (Playwright) drives a presenter page to a blind
comparison of three models with room voting open (round 1, to show the code),
closes and reveals it at once, and clears the screen for the next round: the
room scans the code at the start of a demo, and phones wait between rounds.
It then opens `--phones` phone-sized pages on the `?vote=<code>` link, each in
its own browser context (a browser is known by Streamlit's `_streamlit_xsrf`
cookie, so every context is a different voter), `--per-browser` per Chromium
process, `--batch` at a time; waiting, each phone asks every 10 s. The
presenter asks a second question and opens round 2; every phone shows its
buttons by itself. Every phone is told
(page.evaluate) to click its answer at the same wall-clock instant. A click
that lands while the phone page redraws itself is tapped again, as in the
test; the number of second taps is printed.

Measured, in the same run:

(1) exactness: the store's tally (egp_core.voting.DemoDay(...).rounds.tally)
    against the choices made, and the presenter page's "N votes"; then five
    of the browsers try again: a new tab must say "You voted" with no buttons,
    and a vote through DemoDay.vote with that browser's own id (unmasked from
    its XSRF cookie, as ui/browser_id.py does) must be refused.
(2) the presenter page's responsiveness:
    - "shown": from the moment the store holds the last vote (polled every
      20 ms) to the moment "50 votes" appears in the presenter's DOM (a
      MutationObserver stamps Date.now(); same clock). The page refreshes its
      tally every second, so about 0.5-1 s plus one fragment run is expected.
    - the presenter's fragment runs (its 1-second live tally, a server round
      trip of its own session): the browser's script-state attribute
      (`data-test-script-state`) is recorded, and the time each run takes
      (running -> notRunning) and the period between runs are compared
      between a quiet window before any phone connects (baseline) and the
      burst (from the clicks until every phone has its answer and the
      presenter shows them all). The ratio burst/baseline is printed.
    - the load average (os.getloadavg) at the start, during the burst, at the
      end.

What it measures honestly: real browsers, the real app, the real store
(SQLite in a temporary folder); what it leaves out: the network (all on
127.0.0.1) and phones' own slowness (all pages share this machine's two cores
with the app, which makes the app's figures pessimistic).

What the runs showed (2 CPUs, through /work/bin/quiet-run): with the phone page
asking every 3 s, 30 phones opened during an open round were the most one app
process served (a 31st page stayed blank for minutes, load 5 to 7), and with
50 phones asking every 3 s the presenter's page never went idle. With the
phone page asking every 10 s (views/vote.py, load 1 to 13): 50 phones ready in
75 s, all showing round 2 by themselves 10.6 s after it opened; 50 votes cast
at one instant, 50 counted exactly (13/13/12/12), no second tap needed, 5 of 5
second votes refused; the store held them all 5.8 s after the clicks and the
presenter showed "50 votes" 6.1 s after that (its tally refresh took 3.0 s
during the burst, 58 ms alone); a presenter's click took 279 ms alone, 501 ms
(1.80x) with 50 phones waiting to vote and 526 ms (1.88x) after the vote.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from playwright.sync_api import TimeoutError as PlaywrightTimeout  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402

from egp_core.store import open_store  # noqa: E402
from egp_core.voting import DemoDay  # noqa: E402
from tests.fake_egp import FakeEGP  # noqa: E402
from tests.plugins.app import CHROMIUM_FLAGS, RunningApp, wait_idle  # noqa: E402
from tests.test_browser_compare import SAID, ask, main_text, open_three_panes  # noqa: E402
from ui.browser_id import XSRF_COOKIE, xsrf_token  # noqa: E402

PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True, "device_scale_factor": 2}

# Installed in the presenter's page: stamps every script-state change and the first time each "N votes" shows.
OBSERVER = """
() => {
  window.__states = []; window.__votes = {};
  const app = document.querySelector('[data-test-script-state]');
  const stamp = () => {
    const s = app.getAttribute('data-test-script-state');
    const last = window.__states[window.__states.length - 1];
    if (!last || last[1] !== s) window.__states.push([Date.now(), s]);
  };
  const votes = () => {
    const m = (document.querySelector('[data-testid="stMainBlockContainer"]') || document.body)
      .innerText.match(/(\\d+) votes?\\b/);
    if (m && !(m[1] in window.__votes)) window.__votes[m[1]] = Date.now();
  };
  stamp(); votes();
  new MutationObserver(stamp).observe(app, {attributes: true, attributeFilter: ['data-test-script-state']});
  new MutationObserver(votes).observe(document.body, {childList: true, subtree: true, characterData: true});
}
"""

CLICK_AT = """
([label, at]) => setTimeout(() => {
  const b = [...document.querySelectorAll('button')].find(x => x.innerText.trim() === label);
  if (b) b.click();
}, Math.max(0, at - Date.now()))
"""


def runs(states: list[list], start_ms: float, end_ms: float) -> tuple[list[float], list[float]]:
    """(durations, periods) in ms of the script runs that started in [start, end)."""
    starts, durations = [], []
    for (t, s), nxt in zip(states, states[1:], strict=False):
        if s == "running" and start_ms <= t < end_ms:
            starts.append(t)
            if nxt[1] != "running":
                durations.append(nxt[0] - t)
    return durations, [b - a for a, b in zip(starts, starts[1:], strict=False)]


def presenter_clicks(page, times: int = 3) -> list[float]:
    """ms from a presenter's click to its effect on the page: the Presenter view toggle, on then off
    (each a full run of the compare page), `times` times."""
    took = []
    leave = page.get_by_role("button", name="Leave presenter view")
    for _ in range(times):
        for click, effect in ((lambda: page.get_by_text("Presenter view", exact=True).click(),
                               lambda: leave.wait_for()),
                              (lambda: leave.click(), lambda: leave.wait_for(state="detached"))):
            wait_idle(page, timeout=300_000)  # (under load the 1-second tally may keep the page busy)
            t = time.monotonic()
            click()
            effect()
            took.append((time.monotonic() - t) * 1000)
    wait_idle(page, timeout=300_000)
    return took


def med(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--phones", type=int, default=50)
    ap.add_argument("--batch", type=int, default=10, help="phone pages opened at once")
    ap.add_argument("--quiet", type=float, default=8.0,
                    help="seconds the presenter's tally is watched before the phones come, and once they are all in")
    ap.add_argument("--per-browser", type=int, default=20, help="phone pages per Chromium process")
    ap.add_argument("--patience", type=float, default=120.0,
                    help="seconds a phone page may take to show its buttons before it is reloaded")
    args = ap.parse_args()
    print(f"load at start (1/5/15 min): {load()} on {os.cpu_count()} CPUs")

    for name in ("EGP_ENDPOINT_URL", "EGP_API_KEY", "OPENAI_API_KEY", "OPENAI_BASE_URL", "SGP_API_KEY",
                 "SGP_CLIENT_BASE_URL", "EGP_PLAYGROUND_DB_URL"):
        os.environ.pop(name, None)
    tmp = Path(tempfile.mkdtemp(prefix="bench-votes-"))
    servers = {name: FakeEGP().start().models([f"{name}-model"]).reply(text=text, pace=40)
               for name, text in SAID.items()}
    secrets = tmp / "secrets.toml"
    secrets.write_text("".join(
        f'[connections.{name}]\nkind = "egp"\nname = "{name.title()}"\nbase_url = "{fake.base_url}"\n'
        f'api_key = "key-{name}-0123456789"\n\n' for name, fake in servers.items()))
    app = RunningApp({"STREAMLIT_SECRETS_FILES": str(secrets), "EGP_PLAYGROUND_LOCAL": "0"}, tmp).start(120)
    store = open_store(f"sqlite:///{tmp / 'history.db'}")
    contexts = []
    try:
        with sync_playwright() as pw:
            def launch():
                return pw.chromium.launch(executable_path=shutil.which("chromium"), headless=True, args=[
                    *CHROMIUM_FLAGS, "--disable-renderer-backgrounding", "--disable-background-timer-throttling",
                    "--disable-backgrounding-occluded-windows"])  # every phone keeps asking, as a phone in a hand

            browser = launch()  # the presenter's
            # One Chromium holds about 30 open Streamlit pages to one server (its per-host socket limit):
            # the phones are spread over several, `--per-browser` each.
            phone_browsers = [launch() for _ in range(-(-args.phones // args.per_browser))]
            presenter_ctx = browser.new_context(viewport={"width": 1280, "height": 900})
            page = presenter_ctx.new_page()
            page.set_default_timeout(120_000)
            open_three_panes(page, app, blind=True)
            ask(page, "What colour is the sky?")
            page.get_by_role("button", name="Let the room vote from their phones").wait_for()
            wait_idle(page)
            page.get_by_role("button", name="Let the room vote from their phones").click()
            page.get_by_text("Scan to vote").wait_for()
            wait_idle(page)
            url = re.search(r"http://[^\s`]+/\?vote=([A-Z0-9]+)", main_text(page)).group(0)
            code = url.rsplit("=", 1)[1]
            day = DemoDay(store)
            rnd = day.rounds.current_round(day.rounds.demo_by_code(code).id)

            page.evaluate(OBSERVER)
            t_quiet = time.time() * 1000
            time.sleep(args.quiet)
            t_quiet_end = time.time() * 1000
            clicks_alone = presenter_clicks(page)
            print(f"presenter's clicks with no phones: median {med(clicks_alone):.0f} ms "
                  f"({', '.join(f'{c:.0f}' for c in clicks_alone)})", flush=True)

            # The room scans the code at the start: round 1 is closed and revealed at once, so the phones
            # open while they only wait; the measured round is the next one.
            for name in ("Close voting", "Reveal the names", "Next round"):
                wait_idle(page)
                page.get_by_role("button", name=name).click()
            wait_idle(page)
            t0 = time.monotonic()
            phones = []
            reloads = 0
            for first in range(0, args.phones, args.batch):
                batch = []
                for _ in range(min(args.batch, args.phones - first)):
                    ctx = phone_browsers[len(contexts) // args.per_browser].new_context(**PHONE)  # its own cookies:
                    # its own browser id, one voter
                    contexts.append(ctx)
                    phone = ctx.new_page()
                    phone.set_default_timeout(300_000)
                    phone.goto(url, wait_until="commit")
                    batch.append((ctx, phone))
                for _ctx, phone in batch:
                    for _attempt in range(4):  # a page load that starved may be reloaded, as a person would
                        try:
                            phone.get_by_text("Waiting for the next round").wait_for(timeout=args.patience * 1000)
                            break
                        except PlaywrightTimeout:
                            reloads += 1
                            shown = phone.locator("body").inner_text()[:120].replace("\n", " | ")
                            print(f"    a phone page had no buttons after {args.patience:.0f} s ({shown!r}): "
                                  "reloading it", flush=True)
                            phone.reload(wait_until="commit")
                    else:
                        raise SystemExit("a phone page never showed its buttons")
                phones.extend(batch)
                print(f"  {len(phones)} phones ready after {time.monotonic() - t0:.0f} s (load {load()})", flush=True)
            opened = time.monotonic() - t0
            ask(page, "What colour is grass?")  # round 2: the phones see it open by themselves
            page.get_by_role("button", name="Let the room vote from their phones").wait_for()
            wait_idle(page)
            page.get_by_role("button", name="Let the room vote from their phones").click()
            page.get_by_text("Scan to vote").wait_for()
            t_open = time.monotonic()
            rnd = day.rounds.current_round(rnd.demo_id)
            assert rnd.number == 2 and rnd.status == "open", rnd
            for _ctx, phone in phones:
                phone.get_by_role("button", name="Answer B").wait_for()
            print(f"round 2 open: every phone shows its buttons {time.monotonic() - t_open:.1f} s later "
                  f"(load {load()})", flush=True)
            print(f"{len(phones)} phone pages open and ready in {opened:.1f} s (load {load()})")
            t_loaded = time.time() * 1000
            time.sleep(args.quiet)  # the presenter's tally while every phone waits to vote
            t_loaded_end = time.time() * 1000
            clicks_loaded = presenter_clicks(page)
            print(f"presenter's clicks with {len(phones)} phones waiting to vote: median {med(clicks_loaded):.0f} ms",
                  flush=True)

            choices = [["Answer A", "Answer B", "Answer C", "It's a tie"][i % 4] for i in range(len(phones))]
            expected = {"A": choices.count("Answer A"), "B": choices.count("Answer B"),
                        "C": choices.count("Answer C"), "tie": choices.count("It's a tie")}
            at = time.time() * 1000 + 1500
            for (_ctx, phone), choice in zip(phones, choices, strict=True):
                phone.evaluate(CLICK_AT, [choice, at])
            # the store's view: when does it hold every vote? (polled in a thread, every 20 ms)
            reached: list[float] = []

            def watch_store() -> None:
                while not reached and time.time() * 1000 < at + 300_000:
                    if sum(day.rounds.tally(rnd.id).values()) >= len(phones):
                        reached.append(time.time() * 1000)
                    time.sleep(0.02)

            watcher = threading.Thread(target=watch_store, daemon=True)
            watcher.start()
            time.sleep(max(0.0, (at - time.time() * 1000) / 1000) + 3)
            load_burst = load()
            retaps = 0
            for (_ctx, phone), choice in zip(phones, choices, strict=True):
                for _attempt in range(6):
                    try:
                        phone.get_by_text(re.compile("is counted|already voted|You voted")).first.wait_for(
                            timeout=20_000)
                        break
                    except PlaywrightTimeout:
                        retaps += 1
                        phone.get_by_role("button", name=choice).click(no_wait_after=True)
            t_answered = time.time() * 1000
            watcher.join(60)
            t_store = reached[0] if reached else float("nan")
            target = f"{len(phones)}"
            deadline = time.monotonic() + 60
            while page.evaluate(f"() => window.__votes['{target}'] || 0") == 0 and time.monotonic() < deadline:
                time.sleep(0.05)
            t_shown = page.evaluate(f"() => window.__votes['{target}'] || 0")

            tally = day.rounds.tally(rnd.id)
            counted = {k: v for k, v in tally.items() if v}
            print(f"\n(1) votes: {len(phones)} cast, {sum(tally.values())} counted; tally {counted}, "
                  f"expected {expected}: {'EXACT' if counted == {k: v for k, v in expected.items() if v} else 'WRONG'}")
            print(f"    phones that needed a second tap: {retaps}; phone pages reloaded while opening: {reloads}")
            shown = re.search(r"\d+ votes?", main_text(page))
            print(f"    presenter page shows: {shown.group(0) if shown else '?'}")
            refused = 0
            for ctx, _phone in phones[:5]:  # (fewer with --phones < 5)
                again = ctx.new_page()
                again.goto(url, wait_until="commit")
                again.get_by_text("You voted").wait_for()
                no_buttons = again.get_by_role("button", name=re.compile("^Answer ")).count() == 0
                cookie = next(c["value"] for c in ctx.cookies() if c["name"] == XSRF_COOKIE)
                result = day.vote(code, xsrf_token(cookie), "A", "bench")
                refused += no_buttons and not result.counted and "already voted" in result.message
                again.close()
            print(f"    second vote from {min(5, len(phones))} of the browsers: {refused} of {min(5, len(phones))} refused "
                  f"(new tab says 'You voted' without buttons, and DemoDay.vote with the browser's id is refused); "
                  f"count still {sum(day.rounds.tally(rnd.id).values())}")

            clicks_after = presenter_clicks(page)
            states = page.evaluate("() => window.__states")
            base_d, base_p = runs(states, t_quiet, t_quiet_end)
            load_d, load_p = runs(states, t_loaded, t_loaded_end)
            burst_d, burst_p = runs(states, at, max(t_answered, t_shown))
            print("\n(2) the presenter's page")
            print(f"    last vote in the store -> '{target} votes' on the presenter's page: "
                  f"{t_shown - t_store:.0f} ms (it refreshes every 1 s); clicks -> all in the store: "
                  f"{t_store - at:.0f} ms; clicks -> every phone told: {t_answered - at:.0f} ms")
            print("    its 1-second tally refresh (a fragment run, browser -> server -> browser), median:")
            print(f"      baseline, no phones ({len(base_d)} runs):   takes {med(base_d):6.0f} ms, "
                  f"every {med(base_p):6.0f} ms")
            print(f"      {len(phones)} phones waiting ({len(load_d)} runs):   takes {med(load_d):6.0f} ms, "
                  f"every {med(load_p):6.0f} ms")
            print(f"      during the burst ({len(burst_d)} runs):     takes {med(burst_d):6.0f} ms, "
                  f"every {med(burst_p):6.0f} ms (max {max(burst_d, default=float('nan')):.0f} ms)")
            print(f"      ratio burst/baseline: run time {med(burst_d) / med(base_d):.2f}x, "
                  f"period {med(burst_p) / med(base_p):.2f}x; waiting/baseline: run time "
                  f"{med(load_d) / med(base_d):.2f}x, period {med(load_p) / med(base_p):.2f}x")
            print("    a presenter's click (Presenter view on, then off: a full run of the compare page) "
                  "until the page shows it, median of 6:")
            print(f"      no phones: {med(clicks_alone):.0f} ms; {len(phones)} phones waiting to vote (each asks every "
                  f"10 s): {med(clicks_loaded):.0f} ms ({med(clicks_loaded) / med(clicks_alone):.2f}x); "
                  f"after the vote (each asks every 10 s): {med(clicks_after):.0f} ms "
                  f"({med(clicks_after) / med(clicks_alone):.2f}x)")
            print(f"\nload (1/5/15 min): during the burst {load_burst}, at the end {load()}")
            for ctx in contexts:
                ctx.close()
            for b in (browser, *phone_browsers):
                b.close()
    except BaseException:
        print("the app's log (its end):\n" + app.log()[-3000:])
        raise
    finally:
        app.stop()
        for fake in servers.values():
            fake.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
