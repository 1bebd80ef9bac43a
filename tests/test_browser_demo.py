"""Demo day in headless Chromium: a presenter and ten phones voting at once.

The presenter runs a blind comparison of three models and opens voting; ten
phone-sized browsers (each its own browser profile) open the `?vote=` link and
vote at once; the presenter's chart counts all ten, a second vote from the same
browser is refused, then the presenter closes the round and reveals the names.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from egp_core.store import open_store
from egp_core.voting import DemoDay
from tests import test_browser_compare
from tests.plugins.app import wait_idle
from tests.test_browser_compare import SAID, ask, headings, main_text, open_three_panes, until

pytestmark = pytest.mark.browser

servers = test_browser_compare.servers  # three fake EGP servers, one model each
compare_app = test_browser_compare.compare_app

PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True, "device_scale_factor": 2}


def test_ten_phones_vote_at_once_and_the_presenter_reveals(compare_app, page, browser, servers):
    open_three_panes(page, compare_app, blind=True)
    ask(page, "What colour is the sky?")
    page.get_by_role("button", name="Let the room vote from their phones").wait_for(timeout=60_000)
    wait_idle(page)
    columns = page.locator("[data-testid='stColumn']").filter(has=page.locator("h3"))
    letter_of = {}
    for letter in "ABC":
        text = columns.filter(has_text=f"Model {letter}").first.inner_text()
        letter_of[next(name for name, answer in SAID.items() if answer in text)] = letter

    page.get_by_role("button", name="Let the room vote from their phones").click()
    page.get_by_text("Scan to vote").wait_for()
    wait_idle(page)
    link = re.search(r"http://[^\s`]+/\?vote=([A-Z0-9]+)", main_text(page))
    assert link, main_text(page)
    url = link.group(0)
    assert url.startswith(compare_app.url)  # the address the presenter's browser uses, port included
    assert page.locator("[data-testid='stImage'] img").count() == 1  # the QR code

    # ten phones open the link; seven vote for beta, two call it a tie, one votes for gamma
    phones = []
    for _ in range(10):  # opened one after another (ten page loads at once starve a 2-core machine)
        context = browser.new_context(**PHONE)
        phone = context.new_page()
        phone.set_default_timeout(120_000)
        phone.goto(url, wait_until="commit")
        for _attempt in range(3):  # a page left blank by a busy machine is reloaded, as a person would
            try:
                phone.get_by_role("button", name="Answer B").wait_for(timeout=60_000)
                break
            except PlaywrightTimeout:
                phone.reload(wait_until="commit")
        else:
            pytest.fail("a phone's vote page never showed the answers")
        assert phone.get_by_test_id("stSidebar").count() == 0
        phones.append((context, phone))
    choices = ["Answer " + letter_of["beta"]] * 7 + ["It's a tie"] * 2 + ["Answer " + letter_of["gamma"]]
    for (_context, phone), choice in zip(phones, choices, strict=True):
        phone.get_by_role("button", name=choice).click(no_wait_after=True)  # all at once
    for (_context, phone), choice in zip(phones, choices, strict=True):
        # a tap that lands while the page redraws itself may need a second tap, as on a real phone;
        # a second tap that finds the first one counted is refused, so the count below stays exact
        for _attempt in range(6):
            try:
                phone.get_by_text(re.compile("is counted|already voted")).first.wait_for(timeout=20_000)
                break
            except PlaywrightTimeout:
                phone.get_by_role("button", name=choice).click(no_wait_after=True)
        else:
            pytest.fail("a phone's vote never got an answer")

    # the presenter's chart counts all ten (it refreshes itself every second)
    until(lambda: "10 votes" in main_text(page), what="ten votes on the presenter's page")
    assert headings(page)[:3] == ["Model A", "Model B", "Model C"]  # still blind

    # the same browser again (a new tab shares its storage): its vote is already counted
    again = phones[0][0].new_page()
    again.goto(url, wait_until="commit")
    again.get_by_text("You voted").wait_for()
    assert again.get_by_role("button", name=re.compile("^Answer ")).count() == 0
    assert "10 votes" in main_text(page)

    page.get_by_role("button", name="Close voting").click()
    page.get_by_text(f"The room picked {letter_of['beta']} with 7 of 10 votes").wait_for()
    phones[1][1].get_by_text("Voting is closed").wait_for()
    wait_idle(page)
    page.get_by_role("button", name="Reveal the names").click()
    page.get_by_text("The names are revealed above").wait_for()
    wait_idle(page)
    revealed = headings(page)
    assert any(h.startswith(f"{letter_of['beta']} · beta-model") for h in revealed), revealed

    def board() -> dict[str, list[str]]:
        rows = page.get_by_test_id("stTable").locator("tbody tr").all_inner_texts()
        return {r.split("\t")[0].strip(): [c.strip() for c in r.split("\t")] for r in rows}

    until(lambda: "beta-model" in board(), what="the leaderboard after the reveal")  # drawn after a rerun
    rows = board()
    assert rows["beta-model"][2:] == ["1", "0", "0", "1"]  # wins, ties, losses, rounds
    assert rows["alpha-model"][2:] == ["0", "0", "1", "1"]
    # the phones learn the result too
    phones[2][1].get_by_text(f"{letter_of['beta']}: beta-model").wait_for()
    for context, _phone in phones:
        context.close()


# Installed in a page: counts the script runs (full or fragment) that start from now on.
COUNT_RUNS = """() => {
  window.__runs = 0;
  const app = document.querySelector('[data-test-script-state]');
  new MutationObserver(() => { if (app.getAttribute('data-test-script-state') === 'running') window.__runs++; })
    .observe(app, {attributes: true, attributeFilter: ['data-test-script-state']});
}"""


def runs_in(page, ms: int) -> int:
    """How many times the page asks the app again in the next `ms` milliseconds."""
    wait_idle(page)
    page.evaluate(COUNT_RUNS)
    page.wait_for_timeout(ms)
    return page.evaluate("() => window.__runs")


def test_a_phone_asks_every_10_s_and_still_follows_the_demo(compare_app, browser):
    """Waiting for a round, or with its vote in, a phone looks again every 10 s, not every 3 s (a room
    of phones costs the app little), and still shows the round the presenter opens."""
    store = open_store(f"sqlite:///{compare_app.data_dir / 'history.db'}")
    day = DemoDay(store)
    demo = day.start_demo("presenter", "A quiet demo")
    context = browser.new_context(**PHONE)
    phone = context.new_page()
    phone.set_default_timeout(120_000)
    phone.goto(f"{compare_app.url}/?vote={demo.code}", wait_until="commit")
    phone.get_by_text("Waiting for the presenter to open the first round").wait_for()
    assert runs_in(phone, 7_000) == 0  # at the 3-second pace it would have asked twice

    day.open_round(demo, store.create_conversation("presenter", "q", kind="compare"),
                   [{"model": "alpha"}, {"model": "beta"}])
    phone.get_by_role("button", name="Answer B").wait_for()  # found on its next look
    phone.get_by_role("button", name="Answer B").click()
    phone.get_by_text("Your vote for B is counted").wait_for()
    assert runs_in(phone, 7_000) == 0  # voted: nothing to do but wait for the result
    day.reveal(day.rounds.current_round(demo.id).id)
    phone.get_by_text("B: beta").wait_for()  # the result still comes
    context.close()
    store.close()
