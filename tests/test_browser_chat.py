"""What only a browser shows: streaming, Stop, refresh and crash, in headless Chromium.

The app runs as a real `streamlit run` process. The first tests use the real
bundled model through the embedded server; the refresh and crash tests use the
fake EGP server streaming at a slow, steady pace so that "mid-answer" is certain.
"""

from __future__ import annotations

import html
import re
import time

import pytest
import requests

from egp_core.store import open_store
from tests.plugins.app import free_port, wait_idle

pytestmark = pytest.mark.browser

RECEIPT = re.compile(r"\d[\d,]* tokens · ")  # the receipt under a finished answer
ASSISTANT = "[data-testid='stChatMessage']:has([data-testid='stChatMessageAvatarAssistant'])"


def ask(page, text: str) -> None:
    box = page.locator("[data-testid='stChatInputTextArea']")
    box.fill(text)
    box.press("Enter")


def last_answer(page) -> str:
    answers = page.locator(ASSISTANT)
    if answers.count() == 0:
        return ""
    return answers.last.locator("[data-testid='stMarkdownContainer']").first.inner_text()


def shows_the_same_words(shown: str, saved: str) -> bool:
    """The page shows the saved answer, rendered as Markdown: the same letters and digits in the
    same order (rendering drops only markup: asterisks, list numbers, entities...), and nearly all of
    them. An empty page, or one showing a different or cut answer, fails."""
    saved = html.unescape(re.sub(r"(?m)^\s*(?:\d+[.)]|[-*+])\s+|^```\w*", "", saved))  # list markers, fences
    page, kept = re.sub(r"[\W_]+", "", shown), re.sub(r"[\W_]+", "", saved)
    letters = iter(kept)
    in_order = all(ch in letters for ch in page)  # `page` is a subsequence of `kept`
    return bool(page) and in_order and len(page) >= 0.95 * len(kept)


def until(condition, timeout: float = 60, what: str = "the page") -> None:
    """Poll a condition (a patience limit, not a timed assertion: it only stops a hung test)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.05)


def stop_button(page):
    """Stop, pinned above the input while an answer streams (its label also shows the Esc shortcut)."""
    return page.locator("[data-testid='stBottom']").get_by_role("button", name=re.compile(r"^Stop\b"))


def set_max_tokens(page, n: int) -> None:
    page.get_by_text("Advanced").click()
    box = page.get_by_label("Max tokens", exact=True).and_(page.get_by_test_id("stNumberInputField"))
    box.fill(str(n))
    box.press("Enter")
    wait_idle(page)


@pytest.fixture
def local_app(app_factory, monkeypatch):
    monkeypatch.delenv("EGP_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("EGP_API_KEY", raising=False)
    port = free_port()
    app = app_factory(env={"EGP_LOCAL_PORT": str(port)})
    app.local_url = f"http://127.0.0.1:{port}"
    return app


def local_health(app) -> dict:
    try:
        return requests.get(app.local_url + "/health", timeout=5).json()
    except requests.ConnectionError:  # the app starts its server on the first page view
        return {}


def open_ready(page, app) -> None:
    """Open the app and wait until the local model is listed and loaded."""
    page.goto(app.url)
    deadline = time.monotonic() + 120
    while not local_health(app).get("ready"):
        assert time.monotonic() < deadline, "the local model did not load"
        time.sleep(0.2)
    page.get_by_text("The local model is loading").wait_for(state="detached")
    page.locator("[data-testid='stChatInputTextArea']:enabled").wait_for()
    wait_idle(page)


def test_the_answer_appears_progressively_with_a_receipt_matching_the_server(local_app, page):
    open_ready(page, local_app)
    set_max_tokens(page, 200)
    ask(page, "Write a short story about a lighthouse keeper and a cat.")
    seen: list[str] = []
    stop_button(page).wait_for()
    deadline = time.monotonic() + 120
    while stop_button(page).count() and time.monotonic() < deadline:
        text = last_answer(page)
        if text and (not seen or seen[-1] != text):
            seen.append(text)
        time.sleep(0.05)
    receipt = page.locator(ASSISTANT).last.get_by_text(RECEIPT)
    receipt.wait_for()
    partial = [t for t in seen if t.endswith("▌")]
    assert len(set(partial)) >= 3, seen
    total = int(re.search(r"(\d[\d,]*) tokens", receipt.inner_text()).group(1).replace(",", ""))
    # The server's own count, from its own answer (saved as it arrived) ...
    store = open_store(f"sqlite:///{local_app.data_dir}/history.db")
    try:
        message = [m for c in store.list_conversations("local") for m in store.messages(c.id)
                   if m.role == "assistant"][-1]
    finally:
        store.close()
    assert message.usage["total"] == total
    prompt_tokens = message.usage["prompt"]
    # ... and asked afresh: the same prompt has the same number of tokens.
    direct = requests.post(
        local_app.local_url + "/v2/completions",
        json={"model": "SmolLM2-135M-Instruct", "prompt": "Write a short story about a lighthouse keeper and a cat.",
              "model_parameters": {"max_tokens": 1}},
        timeout=60,
    ).json()
    assert direct["token_usage"]["prompt"] == prompt_tokens
    assert shows_the_same_words(last_answer(page), message.text)


def test_stop_keeps_the_partial_answer_and_frees_the_engine(local_app, page):
    open_ready(page, local_app)
    set_max_tokens(page, 2000)
    ask(page, "Write a very long essay about the history of the sea, in many chapters.")
    stop_button(page).wait_for()
    until(lambda: len(last_answer(page)) >= 40, what="the first words")
    stop_button(page).click()
    # No further click: the page shows the partial answer, marked stopped.
    page.get_by_text("Stopped by you").first.wait_for(timeout=5_000)
    partial = last_answer(page)
    assert len(partial) >= 40 and not partial.endswith("▌")
    # The server never counted this answer's tokens: the page estimates them, and says so.
    assert page.locator(ASSISTANT).last.get_by_text(re.compile(r"about \d+ tokens")).count() == 1
    # The engine hears of the stop when the closed connection reaches it (its next token at the latest):
    # it frees its slot by itself, with no other request needed.
    def health() -> dict:
        return requests.get(local_app.local_url + "/health", timeout=5).json()

    until(lambda: not health()["busy"], timeout=10, what="the engine freed after Stop")
    assert health()["queue_length"] == 0 and health()["active"] == 0, health()
    store = open_store(f"sqlite:///{local_app.data_dir}/history.db")
    conv = store.list_conversations("local")[0]
    answer = [m for m in store.messages(conv.id) if m.role == "assistant"][-1]
    assert answer.status == "stopped" and answer.text.strip().startswith(partial[:30].strip())


@pytest.fixture
def slow_fake(fake_egp):
    """400 words at 40 per second: a 10 second answer."""
    fake_egp.models(["fake-model"])
    fake_egp.reply(text=" ".join(f"word{i}" for i in range(400)), pace=40)
    return fake_egp


def test_refresh_mid_answer_shows_the_saved_part_and_keeps_following(app_factory, slow_fake, page):
    app = app_factory(env={"EGP_ENDPOINT_URL": slow_fake.base_url, "EGP_API_KEY": "k"})
    page.goto(app.url)
    page.locator("[data-testid='stChatInputTextArea']:enabled").wait_for()
    ask(page, "Count for me")
    until(lambda: "word20" in last_answer(page), what="word20")
    page.reload()
    page.get_by_text("Count for me").first.wait_for()
    until(lambda: "word5" in last_answer(page), what="the saved answer after the refresh")
    assert "word0" in last_answer(page)  # the start is still there
    page.get_by_text(RECEIPT).first.wait_for(timeout=30_000)
    assert "word399" in last_answer(page)
    assert "c=" in page.url


def test_a_crash_mid_answer_keeps_the_question_and_the_partial_answer(app_factory, slow_fake, page, tmp_path):
    env = {"EGP_ENDPOINT_URL": slow_fake.base_url, "EGP_API_KEY": "k"}
    app = app_factory(env=env)
    page.goto(app.url)
    page.locator("[data-testid='stChatInputTextArea']:enabled").wait_for()
    ask(page, "Start counting")
    until(lambda: "word30" in last_answer(page), what="word30")
    url = page.url
    assert "c=" in url
    # The answer is saved every half second while it streams: crash once word30 is saved.
    store = open_store(f"sqlite:///{app.data_dir}/history.db")
    conv = url.split("c=")[1].split("&")[0]
    until(lambda: "word30" in store.messages(conv)[-1].text, what="word30 to be saved")
    app.kill()
    app.start()
    page.goto(url)
    page.get_by_text("Start counting").first.wait_for()
    page.get_by_text("Interrupted").first.wait_for(timeout=30_000)
    assert "word0" in last_answer(page) and "word30" in last_answer(page)
    page.get_by_role("button", name="Regenerate").wait_for()


def test_html_in_an_answer_is_shown_as_text_not_run(app_factory, fake_egp, page):
    fake_egp.models(["fake-model"])
    fake_egp.reply(text="Look: <b>bold</b> <img src=x onerror=alert(1)> <script>alert(2)</script> done")
    app = app_factory(env={"EGP_ENDPOINT_URL": fake_egp.base_url, "EGP_API_KEY": "k"})
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(app.url)
    page.locator("[data-testid='stChatInputTextArea']:enabled").wait_for()
    ask(page, "Some HTML please")
    page.get_by_text(RECEIPT).first.wait_for()
    answer = page.locator(ASSISTANT).last
    assert "<b>bold</b>" in answer.inner_text() and "<script>" in answer.inner_text()
    assert answer.locator("b, img, script").count() == 0
    assert not dialogs


def test_a_first_visit_straight_to_a_page_goes_through_the_app(app_factory, fake_egp, page):
    fake_egp.models(["fake-model"])
    app = app_factory(env={"EGP_ENDPOINT_URL": fake_egp.base_url, "EGP_API_KEY": "k"})
    page.goto(app.url + "/usage")  # the server has served nothing before
    nav = page.locator("[data-testid='stSidebarNav']")
    nav.get_by_role("link", name="Settings").wait_for()
    assert [t.strip() for t in nav.locator("a p").all_inner_texts()] == ["Chat", "Compare", "Evaluate", "Prompts", "Usage", "Settings"]
