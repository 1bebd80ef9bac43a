"""Team mode end to end: a real OpenID Connect provider on 127.0.0.1 (oidc-provider-mock),
the app as a `streamlit run` process with [auth] in its own secrets.toml, people signing in
through headless Chromium.

Two people each see only their own conversations, comparisons and usage, even with the other's
ids in the URL; a stranger meets the sign-in page on every path and query string; a share link
opens its one conversation read-only.
"""

from __future__ import annotations

import csv
import io
import re
import time
from pathlib import Path

import pytest

from egp_core.store import open_store
from tests.fake_egp import FakeEGP
from tests.plugins.app import RunningApp, free_port, wait_idle

pytestmark = pytest.mark.browser

ANN, BOB = "ann@example.com", "bob@example.com"
APP_TEXT = "[data-testid='stApp']"
CHAT_BOX = "[data-testid='stChatInputTextArea']"
ASSISTANT = "[data-testid='stChatMessage']:has([data-testid='stChatMessageAvatarAssistant'])"
PATHS = ("/", "/compare", "/usage", "/settings")


@pytest.fixture(scope="module")
def team(oidc_provider, tmp_path_factory, browser):
    """The app in team mode (answers from a fake EGP server), and a comparison Ann made earlier."""
    data = tmp_path_factory.mktemp("team")
    fake = FakeEGP().start().models(["fake-model"]).reply(text="An answer from the fake model.")
    port = free_port()
    secrets = data / "secrets.toml"
    secrets.write_text(
        "[auth]\n"
        f'redirect_uri = "http://127.0.0.1:{port}/oauth2callback"\n'
        f'cookie_secret = "{"team-mode-cookie-secret-" * 2}"\n'
        'client_id = "playground"\nclient_secret = "playground-secret"\n'
        f'server_metadata_url = "{oidc_provider}/.well-known/openid-configuration"\n'
    )
    env = {"STREAMLIT_SECRETS_FILES": str(secrets), "EGP_ENDPOINT_URL": fake.base_url,
           "EGP_API_KEY": "sk-team-workspace-key-0123", "EGP_PLAYGROUND_LOCAL": "0", "EGP_PLAYGROUND_DB_URL": ""}
    app = RunningApp(env, data, port).start()
    store = open_store(f"sqlite:///{data / 'history.db'}")
    cmp_id = store.create_conversation(ANN, "Ann's comparison", kind="compare")
    store.add_message(cmp_id, "user", "Ann's compare prompt", pane=0)
    store.add_message(cmp_id, "assistant", "Ann's compare answer", model="fake-model", pane=0)
    store.close()
    app.compare_id = cmp_id
    yield app
    app.stop()
    fake.stop()


@pytest.fixture
def contexts(browser):
    """New browser contexts (each its own cookies: one person each), closed after the test."""
    made = []

    def new():
        ctx = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
        made.append(ctx)
        page = ctx.new_page()
        page.set_default_timeout(30_000)
        page.route(re.compile(r"^https?://(?!127\.0\.0\.1)"), lambda route: route.abort())  # offline
        return page

    yield new
    for ctx in made:
        ctx.close()


def text(page) -> str:
    return page.locator(APP_TEXT).inner_text()


def sign_in(page, app, email: str) -> None:
    """Through the provider's own form, as a person does."""
    page.goto(app.url)
    page.get_by_role("button", name="Sign in").click()
    page.locator("input[name=sub]").fill(email)
    page.get_by_role("button", name="Authorize", exact=True).click()
    page.get_by_text(f"Signed in as {email}").wait_for()
    page.locator(f"{CHAT_BOX}:enabled").wait_for()
    wait_idle(page)


def ask(page, question: str) -> str:
    """Ask in a new chat; returns the new conversation's id (from the URL, once it names a new one)."""
    before = conversation_in_url(page)
    page.get_by_role("button", name="New chat").click()
    wait_idle(page)
    box = page.locator(CHAT_BOX)
    box.fill(question)
    box.press("Enter")
    page.locator(ASSISTANT).last.get_by_text("An answer from the fake model.").wait_for()
    deadline = time.monotonic() + 30  # a patience limit, not a timed assertion
    while conversation_in_url(page) in (None, before):
        assert time.monotonic() < deadline, f"the URL never named the new conversation: {page.url}"
        page.wait_for_timeout(50)
    wait_idle(page)
    return conversation_in_url(page)


def conversation_in_url(page_or_url) -> str | None:
    url = page_or_url if isinstance(page_or_url, str) else page_or_url.url
    found = re.search(r"[?&]c=([0-9a-f]{32})", url)
    return found.group(1) if found else None


def visit(page, url: str, drawn: str) -> str:
    """Open the URL; once the text `drawn` is on the page (so it is drawn), what the page shows."""
    page.goto(url)
    page.get_by_text(drawn).first.wait_for()
    wait_idle(page)
    return text(page)


def usage_titles(page, app) -> set[str]:
    """The conversation titles in the Usage page's CSV download."""
    visit(page, app.url + "/usage", "Download the table (CSV)")
    with page.expect_download() as download:
        page.get_by_role("button", name="Download the table (CSV)").click()
    rows = csv.DictReader(io.StringIO(Path(download.value.path()).read_text()))
    return {r["conversation_title"] for r in rows}


def test_two_people_each_see_only_their_own_conversations_comparisons_and_usage(team, contexts):
    ann, bob = contexts(), contexts()
    sign_in(ann, team, ANN)
    ann_chat = ask(ann, "Ann's private question")
    sign_in(bob, team, BOB)
    assert "Ann's private question" not in text(bob)
    ask(bob, "Bob's own question")
    assert "Bob's own question" in text(bob) and "Ann's private question" not in text(bob)

    shown = visit(bob, f"{team.url}/?c={ann_chat}", "Bob's own question")  # Ann's id does not open hers
    assert "Ann's private question" not in shown
    shown = visit(bob, f"{team.url}/compare?cmp={team.compare_id}", "Leaderboard")
    assert "Ann's compare prompt" not in shown and "Ann's comparison" not in shown
    visit(ann, f"{team.url}/compare?cmp={team.compare_id}", "Ann's compare prompt")  # while Ann sees hers

    assert usage_titles(bob, team) == {"Bob's own question"}
    assert usage_titles(ann, team) == {"Ann's private question", "Ann's comparison"}
    shown = visit(ann, f"{team.url}/?c={ann_chat}", "An answer from the fake model.")
    assert "Ann's private question" in shown and "Bob's own question" not in shown


STRANGER_QUERIES = ("", "?share=", "?share=%20", "?share=%09", "?share=bogus", "?c={chat}", "?share=&c={chat}",
                    "?cmp={cmp}", "?share=bogus&share=", "?eval_share=", "?shared_prompt=", "?vote=bogus",
                    "?demo_share=", "?demo_share=bogus")


def test_a_stranger_meets_only_the_sign_in_page_on_every_path_and_query_string(team, contexts):
    ann, stranger = contexts(), contexts()
    sign_in(ann, team, ANN)
    chat = ask(ann, "Ann's question nobody else may read")
    # Every query string on /, the telling ones on every other path (AppTest covers every pair).
    tried = [("/", q) for q in STRANGER_QUERIES] + [(p, q) for p in PATHS[1:] for q in STRANGER_QUERIES[:3]]
    for path, query in tried:
        url = team.url + path + query.format(chat=chat, cmp=team.compare_id)
        stranger.goto(url)
        stranger.get_by_role("button", name="Sign in").wait_for()
        wait_idle(stranger)
        shown = text(stranger)
        assert "Ann's" not in shown and "fake-model" not in shown, url
        assert stranger.locator(CHAT_BOX).count() == 0, url
        assert stranger.locator("[data-testid='stSidebarNav']").count() == 0, url
        buttons = stranger.locator("[data-testid='stApp'] button:not([data-testid='stBaseButton-header'])")
        labels = [b.splitlines()[-1].strip() for b in buttons.all_inner_texts()]  # (after the icon's name)
        assert labels == ["Sign in"], (url, labels)


def test_a_share_link_opens_its_conversation_read_only_for_a_stranger(team, contexts):
    ann, stranger = contexts(), contexts()
    sign_in(ann, team, ANN)
    ask(ann, "Ann's other, private question")
    shared = ask(ann, "Ann's question to share")
    row = ann.locator(f".st-key-row-{shared}").filter(visible=True).first
    row.hover()  # the row's menu shows on hover
    row.locator("[data-testid='stPopoverButton']").filter(visible=True).first.click()
    ann.get_by_role("button", name="Share a read-only link").click()
    link = ann.locator("[data-testid='stCode']").filter(has_text="?share=").first.inner_text()
    token = link.split("?share=")[1].strip()
    for path in PATHS:
        shown = visit(stranger, f"{team.url}{path}?share={token}", "A read-only copy shared with you.")
        assert "Ann's question to share" in shown and "An answer from the fake model." in shown, path
        assert "Ann's other, private question" not in shown, path
        assert "Sign in" not in shown, path
        assert stranger.locator(CHAT_BOX).count() == 0, path
        assert stranger.locator("[data-testid='stSidebarNav']").count() == 0, path
        assert stranger.get_by_role("button", name=re.compile("Edit|Regenerate|New chat")).count() == 0, path
