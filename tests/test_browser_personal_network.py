"""Personal mode, opened from another computer: the room's phones may reach the app (the vote panel
tells the presenter to start it on 0.0.0.0), but only the voting and share links, never the owner's
conversations, settings or key.

Another computer is played by Chromium on this machine sending `X-Forwarded-For`, as a reverse proxy
would: Streamlit's server (uvicorn) takes the visitor's address from it for connections from 127.0.0.1.
"""

from __future__ import annotations

import pytest

from egp_core.store import open_store
from egp_core.voting import DemoDay
from tests.plugins.app import wait_idle

pytestmark = pytest.mark.browser

ELSEWHERE = {"X-Forwarded-For": "203.0.113.7"}  # an address of no machine here (TEST-NET-3)
NOTICE = "This playground is in personal mode: it opens only on the computer it runs on."


@pytest.fixture
def personal(app_factory, tmp_path):
    """A personal-mode app (no sign-in) with a conversation, its share link and a demo open for voting."""
    store = open_store(f"sqlite:///{tmp_path / 'history.db'}")
    conv = store.create_conversation("local", "Owner's secret plans", kind="chat")
    store.add_message(conv, "user", "What are my secret plans?")
    token = store.create_share(conv, "local")
    day = DemoDay(store)
    demo = day.start_demo("local", "A demo")
    day.open_round(demo, store.create_conversation("local", "q", kind="compare"), [{"model": "a"}, {"model": "b"}])
    store.close()
    app = app_factory({"EGP_PLAYGROUND_LOCAL": "off"}, data_dir=tmp_path)
    return app, conv, token, demo.code


def body_of(browser, url: str, headers: dict | None, wait_for: str) -> str:
    context = browser.new_context(extra_http_headers=headers or {})
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(url)
    page.get_by_text(wait_for).first.wait_for()
    wait_idle(page)
    text = page.inner_text("body")
    context.close()
    return text


@pytest.mark.parametrize("path", ["/", "/compare", "/settings", "/usage", "/?c={conv}", "/?share=",
                                  "/?share=bogus", "/?vote=", "/?c={conv}&share="])
def test_another_computer_meets_only_a_notice(personal, browser, path):
    app, conv, _token, _code = personal
    text = body_of(browser, app.url + path.format(conv=conv), ELSEWHERE, NOTICE)
    assert "secret plans" not in text and "Chat" not in text and "Settings" not in text
    assert ("This link is not valid" in text) == ("share=" in path or "vote=" in path)


def test_another_computer_votes_and_opens_a_share_link_and_this_one_sees_everything(personal, browser):
    app, conv, token, code = personal
    vote = body_of(browser, f"{app.url}/?vote={code}", ELSEWHERE, "Answer B")
    assert "Round 1" in vote and NOTICE not in vote and "secret plans" not in vote
    shared = body_of(browser, f"{app.url}/?share={token}", ELSEWHERE, "What are my secret plans?")
    assert NOTICE not in shared and "Settings" not in shared
    own = body_of(browser, f"{app.url}/?c={conv}", None, "What are my secret plans?")  # the owner's computer
    assert NOTICE not in own and "Settings" in own


def test_the_owner_can_open_it_to_the_network(app_factory, browser, tmp_path):
    app = app_factory({"EGP_PLAYGROUND_LOCAL": "off", "EGP_PLAYGROUND_OPEN_TO_NETWORK": "1"}, data_dir=tmp_path)
    text = body_of(browser, app.url + "/settings", ELSEWHERE, "Settings")
    assert NOTICE not in text
