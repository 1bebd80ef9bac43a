"""The vote page in headless Chromium, attacked as a room would: a tap on a page that still shows the
previous round (a phone looks only every few seconds) after the presenter opened the next one."""

from __future__ import annotations

import pytest

from egp_core.store import open_store
from egp_core.voting import DemoDay
from tests import test_browser_demo
from tests.plugins.app import wait_idle

pytestmark = pytest.mark.browser

servers = test_browser_demo.servers
compare_app = test_browser_demo.compare_app


@pytest.fixture
def phones_look_every_10_s(monkeypatch):
    """Between two looks of the phone (3 s by default), the test opens the next round and taps the previous
    one's answer: 10 s leaves that room on a busy machine."""
    monkeypatch.setenv("EGP_PLAYGROUND_VOTE_POLL_SECONDS", "10")


AFTER_A_LOOK = """() => new Promise((done) => {
  const app = document.querySelector('[data-test-script-state]');
  new MutationObserver((_, obs) => {
    if (app.getAttribute('data-test-script-state') === 'notRunning') { obs.disconnect(); done(); }
  }).observe(app, {attributes: true, attributeFilter: ['data-test-script-state']});
})"""
"""Resolves when the page's next look at the demo (its fragment's timed run) has ended."""


@pytest.mark.usefixtures("phones_look_every_10_s")
def test_a_tap_on_the_previous_rounds_answers_counts_in_no_round(compare_app, browser):
    store = open_store(f"sqlite:///{compare_app.data_dir / 'history.db'}")
    day = DemoDay(store)
    demo = day.start_demo("presenter", "A demo")
    specs = [{"model": "alpha"}, {"model": "beta"}]
    r1 = day.open_round(demo, store.create_conversation("presenter", "q1", kind="compare"), specs)
    context, phone = test_browser_demo.open_phone(browser, f"{compare_app.url}/?vote={demo.code}")
    wait_idle(phone)
    phone.evaluate(AFTER_A_LOOK)  # it just looked: the next look is 10 s away
    r2 = day.open_round(demo, store.create_conversation("presenter", "q2", kind="compare"), specs)
    phone.locator(f".st-key-vote-{r1.id}-B button").click()  # round 1's answer B, still on the phone
    phone.get_by_text("Round 1 is over, so your vote was not counted").wait_for(timeout=30_000)
    assert day.rounds.tally(r2.id) == {} and day.rounds.tally(r1.id) == {}
    phone.locator(f".st-key-vote-{r2.id}-A button").click()  # the page shows round 2 now: that tap counts
    phone.get_by_text("Your vote for A is counted").wait_for()
    assert day.rounds.tally(r2.id) == {"A": 1}
    context.close()
    store.close()


def test_a_phone_rides_out_a_store_that_fails_for_a_moment(compare_app, browser):
    """The store fails while phones look every 3 s (a database restarting): the phone says so in a
    sentence, never the app's error box, and shows the round again once the store is back; a tap while it
    fails is not lost silently either."""
    import sqlite3

    path = compare_app.data_dir / "history.db"
    store = open_store(f"sqlite:///{path}")
    day = DemoDay(store)
    demo = day.start_demo("presenter", "A demo")
    r1 = day.open_round(demo, store.create_conversation("presenter", "q1", kind="compare"),
                        [{"model": "alpha"}, {"model": "beta"}])
    context, phone = test_browser_demo.open_phone(browser, f"{compare_app.url}/?vote={demo.code}")
    wait_idle(phone)
    with sqlite3.connect(path) as db:  # every query of the phone page fails from now on
        db.execute("ALTER TABLE round_votes RENAME TO round_votes_away")
    phone.locator(f".st-key-vote-{r1.id}-B button").click()
    phone.get_by_text("could not be counted just now").wait_for(timeout=30_000)
    phone.get_by_text("can't be reached right now").wait_for(timeout=30_000)  # its next look, 3 s on
    assert phone.get_by_test_id("stException").count() == 0
    assert "encountered an error" not in phone.inner_text("body")
    with sqlite3.connect(path) as db:
        db.execute("ALTER TABLE round_votes_away RENAME TO round_votes")
    phone.locator(f".st-key-vote-{r1.id}-B button").click()  # back: the tap counts
    phone.get_by_text("Your vote for B is counted").wait_for(timeout=30_000)
    assert day.rounds.tally(r1.id) == {"B": 1}
    context.close()
    store.close()
