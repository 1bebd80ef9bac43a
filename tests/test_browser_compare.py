"""The compare page in headless Chromium: a full blind vote, and Stop all.

The app runs as a real `streamlit run` process with three connections, one per
fake EGP server (each serving its own model and its own answer), declared in a
secrets.toml that the app is pointed at (STREAMLIT_SECRETS_FILES).
"""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.fake_egp import FakeEGP
from tests.plugins.app import wait_idle

pytestmark = pytest.mark.browser

SAID = {
    "alpha": "Alpha says the sky is blue because sunlight scatters in the air.",
    "beta": "Beta says the sky looks grey on a cloudy day, and blue otherwise.",
    "gamma": "Gamma says the sky is green on planet Zog, obviously.",
}


@pytest.fixture
def servers():
    started = {name: FakeEGP().start().models([f"{name}-model"]).reply(text=text, pace=40)
               for name, text in SAID.items()}
    yield started
    for fake in started.values():
        fake.stop()


@pytest.fixture
def compare_app(app_factory, servers, tmp_path, monkeypatch):
    for name in ("EGP_ENDPOINT_URL", "EGP_API_KEY", "OPENAI_API_KEY", "OPENAI_BASE_URL", "SGP_API_KEY",
                 "SGP_CLIENT_BASE_URL", "EGP_PLAYGROUND_DB_URL"):
        monkeypatch.delenv(name, raising=False)
    secrets = tmp_path / "secrets.toml"
    secrets.write_text("".join(
        f'[connections.{name}]\nkind = "egp"\nname = "{name.title()}"\nbase_url = "{fake.base_url}"\n'
        f'api_key = "key-{name}-0123456789"\n\n'
        for name, fake in servers.items()
    ))
    return app_factory(env={"STREAMLIT_SECRETS_FILES": str(secrets), "EGP_PLAYGROUND_LOCAL": "0"})


def until(condition, timeout: float = 60, what: str = "the page") -> None:
    """Poll a condition (a patience limit, not a timed assertion: it only stops a hung test)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.05)


def open_three_panes(page, app, *, blind: bool) -> None:
    """The compare page with three panes on Alpha, Beta and Gamma (pane 1 keeps the sidebar's)."""
    page.goto(app.url)
    wait_idle(page)
    page.get_by_role("link", name="Compare").click()
    page.get_by_role("heading", name="Compare models").wait_for()
    wait_idle(page)
    page.get_by_role("radiogroup", name="Panes").get_by_text("3", exact=True).click()
    wait_idle(page)
    for i, name in ((2, "Beta"), (3, "Gamma")):
        pane = page.get_by_test_id("stExpander").filter(has_text=f"Pane {i} settings")
        pane.locator("summary").click()
        wait_idle(page)
        pick(page, pane, "Connection", name)
        wait_idle(page)
        pane.locator("summary").click()
    if blind:
        page.get_by_text("Blind mode", exact=True).click()
        wait_idle(page)


def pick(page, container, label: str, option: str) -> None:
    """Choose `option` in a selectbox (retrying the click if the expander was still opening)."""
    box = container.get_by_test_id("stSelectbox").filter(has_text=label)
    for _attempt in range(5):
        box.click()
        try:
            page.get_by_role("option", name=option, exact=True).click(timeout=3_000)
            break
        except PlaywrightTimeout:
            page.keyboard.press("Escape")
    else:
        pytest.fail(f"could not choose {option!r} in {label!r}")
    until(lambda: box.get_by_role("combobox").input_value() == option, what=f"{label} = {option}")


def ask(page, text: str) -> None:
    box = page.locator("[data-testid='stChatInputTextArea']")
    box.fill(text)
    box.press("Enter")


def headings(page) -> list[str]:
    return [h.strip() for h in page.locator("[data-testid='stMainBlockContainer'] h3").all_inner_texts()
            if "Leaderboard" not in h]


def main_text(page) -> str:
    return page.locator("[data-testid='stMainBlockContainer']").first.inner_text()


def leaderboard(page) -> dict[str, tuple[int, int]]:
    # A rerun may be under way (the blind round's live tally reruns the page once the vote is in).
    page.get_by_test_id("stTable").locator("tbody tr").first.wait_for()
    rows = page.get_by_test_id("stTable").locator("tbody tr").all_inner_texts()
    board = {}
    for row in rows:
        model, _rating, wins, _ties, _losses, rounds = [c.strip() for c in row.split("\t")]
        board[model] = (int(wins), int(rounds))
    return board


def test_a_blind_vote_hides_the_names_then_reveals_them_and_updates_the_leaderboard(compare_app, page, servers):
    open_three_panes(page, compare_app, blind=True)
    ask(page, "What colour is the sky?")
    page.get_by_role("button", name="B is best").wait_for(timeout=60_000)
    wait_idle(page)

    assert headings(page) == ["Model A", "Model B", "Model C"]
    shown = main_text(page)
    for name, answer in SAID.items():
        assert answer in shown
        assert f"{name}-model" not in shown  # no name in headings, receipts or code
    assert page.get_by_text("View code").count() == 0
    assert page.get_by_role("button", name="Export as Markdown").count() == 0
    assert "No rounds yet" in shown
    # every server got the prompt, each for its own model
    for name, fake in servers.items():
        bodies = [r.body for r in fake.requests if r.path.endswith("completions")]
        assert [(b["model"], b["prompt"]) for b in bodies] == [(f"{name}-model", "What colour is the sky?")]

    # Which model is "B" is the page's secret; the answer under it tells us.
    columns = page.locator("[data-testid='stColumn']").filter(has=page.locator("h3"))
    column_b = columns.filter(has_text="Model B").first.inner_text()
    model_b = next(name for name, answer in SAID.items() if answer in column_b)

    page.get_by_role("button", name="B is best").click()
    page.get_by_text("The room picked B").wait_for()
    wait_idle(page)

    revealed = headings(page)
    assert len(revealed) == 3 and not any(h.startswith("Model ") for h in revealed)
    assert re.sub(r"\s+", " ", next(h for h in revealed if h.startswith("B · "))).startswith(f"B · {model_b}-model")
    assert sorted(h.split(" · ")[1].split()[0] for h in revealed) == sorted(f"{n}-model" for n in SAID)
    assert page.get_by_role("button", name=re.compile(r"^[ABC] is best$")).count() == 0
    assert page.get_by_text("View code").count() == 3
    assert page.get_by_role("button", name="Export as Markdown").count() == 1
    page.get_by_test_id("stTable").locator("tbody tr").first.wait_for()  # the table is drawn a moment later
    board = leaderboard(page)
    assert board == {f"{n}-model": (1 if n == model_b else 0, 1) for n in SAID}


def test_stop_all_closes_every_stream_and_keeps_the_partial_answers(compare_app, page, servers):
    for fake in servers.values():
        fake.stall_after(4)  # a few words, then silence until the client leaves
    open_three_panes(page, compare_app, blind=False)
    ask(page, "Tell me a long story")
    stop = page.get_by_role("button", name="Stop all")
    stop.wait_for()
    until(lambda: all(f.requests for f in servers.values()), what="the three requests")
    until(lambda: main_text(page).count("▌") == 3, what="three answers streaming")
    assert not any(f.disconnects for f in servers.values())
    stop.click()
    for name, fake in servers.items():
        assert fake.wait_disconnect(15), f"{name} never saw the client leave"
    page.get_by_text("Stopped by you").first.wait_for()
    wait_idle(page)
    until(lambda: page.get_by_text("Stopped by you").count() == 3, what="three stopped panes")
    assert stop.count() == 0
    shown = main_text(page)
    for answer in SAID.values():
        first_words = " ".join(answer.split()[:4])
        assert first_words in shown
        assert answer not in shown  # only the part before the stall


def test_one_pane_stops_on_its_own_and_a_follow_up_goes_to_each_panes_thread(compare_app, page, servers):
    servers["alpha"].stall_after(4)
    servers["beta"].stall_after(4)
    open_three_panes(page, compare_app, blind=False)
    ask(page, "Tell me a long story")
    own_stops = page.get_by_role("button", name=re.compile(r"Stop$"))  # a pane's own (not "Stop all")
    own_stops.first.wait_for()  # (quickly: a stalled stream is cut after the client's read timeout)
    assert own_stops.count() >= 2  # one per running pane (Gamma's may have finished already)
    columns = page.locator("[data-testid='stColumn']").filter(has=page.locator("h3"))
    columns.filter(has_text="A · alpha-model").get_by_role("button", name=re.compile(r"Stop$")).click()
    assert servers["alpha"].wait_disconnect(15), "alpha never saw the client leave"
    page.get_by_text("Stopped by you").first.wait_for()
    assert not servers["beta"].disconnects  # the other pane goes on
    page.get_by_role("button", name="Stop all").click()
    assert servers["beta"].wait_disconnect(15)
    wait_idle(page)
    until(lambda: page.get_by_role("button", name="Stop all").count() == 0, what="nothing running")

    for fake in servers.values():
        fake.stall_after(None)
    ask(page, "And then?")
    until(lambda: all(len([r for r in f.requests if r.path.endswith("completions")]) == 2
                      for f in servers.values()), what="the follow-up at every server")
    page.get_by_text("And then?", exact=True).wait_for()
    wait_idle(page)
    until(lambda: main_text(page).count(SAID["gamma"]) == 2, what="gamma's second answer")
    for name, fake in servers.items():
        prompt = [r.body for r in fake.requests if r.path.endswith("completions")][-1]["prompt"]
        assert "Tell me a long story" in prompt and "And then?" in prompt
        assert " ".join(SAID[name].split()[:3]) in prompt  # its own earlier answer...
        assert not any(" ".join(SAID[other].split()[:3]) in prompt for other in SAID if other != name)  # only
    assert len(headings(page)) == 6
