"""The chat page as a ChatGPT user expects it, in headless Chromium at desktop and phone sizes.

Text shown as written, Copy, Stop by the input (and Esc), Send and Cancel together
when editing, earlier answers kept as versions. Each test saves screenshots to
$EGP_TEST_SHOTS (default: the test's temporary folder) for a person to look at.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from egp_core.store import open_store
from tests.plugins.app import wait_idle
from tests.test_browser_chat import ASSISTANT, ask, stop_button, until

pytestmark = pytest.mark.browser

USER = "[data-testid='stChatMessage']:has([data-testid='stChatMessageAvatarUser'])"
SIZES = {"desktop": {"width": 1400, "height": 1000}, "phone": {"width": 390, "height": 844}}
POEM = ("Roses are red\nViolets are blue\nSugar is sweet\n\nThings to remember:\n- a list item\n- another item\n\n"
        "```python\nprint('hi')\nprint('there')\n```\n\nThe end.")
RECEIPT = re.compile(r"\d+ tokens")


@pytest.fixture
def shots(tmp_path) -> Path:
    folder = Path(os.environ.get("EGP_TEST_SHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def chat(app_factory, fake_egp):
    fake_egp.models(["fake-model"])
    app = app_factory(env={"EGP_ENDPOINT_URL": fake_egp.base_url, "EGP_API_KEY": "k", "EGP_PLAYGROUND_LOCAL": "0"})
    app.fake = fake_egp
    return app


def open_page(browser, app, size: str):
    context = browser.new_context(viewport=SIZES[size], is_mobile=size == "phone", has_touch=size == "phone",
                                  permissions=["clipboard-read", "clipboard-write"])
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto(app.url)
    page.locator("[data-testid='stChatInputTextArea']:enabled").wait_for()
    wait_idle(page)
    return page


def answered(page, n: int) -> None:
    """Wait until `n` answers have their receipt."""
    until(lambda: page.locator(ASSISTANT).get_by_text(RECEIPT).count() >= n, what=f"answer {n}")
    wait_idle(page)


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_text_as_written_and_copy(browser, chat, shots, size):
    page = open_page(browser, chat, size)
    chat.fake.reply(text="Sure: 2*3*4 = 24")
    ask(page, "2*3*4")
    answered(page, 1)
    chat.fake.reply(text=POEM)
    ask(page, "# My heading")
    answered(page, 2)
    questions = page.locator(USER)
    assert questions.nth(0).locator("[data-testid='stText']").inner_text() == "2*3*4"
    assert questions.nth(1).locator("[data-testid='stText']").inner_text() == "# My heading"
    assert questions.locator("em, h1, h2").count() == 0  # no italics, no heading
    poem = page.locator(ASSISTANT).nth(1)
    assert poem.locator("br").count() >= 2  # one line per row
    # The code block's highlighter is loaded by the browser on first use: wait for it, then count.
    poem.locator("pre code").first.wait_for()
    assert poem.locator("li").count() == 2 and poem.locator("pre code").count() == 1
    lines = [t for t in poem.locator("[data-testid='stMarkdownContainer']").first.inner_text().split("\n")
             if t.strip()]
    assert lines[:3] == ["Roses are red", "Violets are blue", "Sugar is sweet"]
    page.screenshot(path=str(shots / f"chat-{size}.png"))
    # Copy: the answer as Markdown, the question exactly as typed.
    poem.get_by_role("button", name="Copy the answer (as Markdown)").click()
    poem.get_by_text("Copied").wait_for()
    assert page.evaluate("navigator.clipboard.readText()") == POEM
    questions.nth(0).get_by_role("button", name="Copy the question").click()
    until(lambda: page.evaluate("navigator.clipboard.readText()") == "2*3*4", what="the question on the clipboard")
    if size == "desktop":  # the sidebar: the title as typed, and search filters as you type
        sidebar = page.locator("[data-testid='stSidebar']")
        typed = sidebar.get_by_role("button", name=re.compile(r"^2\*3\*4 · "))  # the title, then when
        typed.wait_for()
        sidebar.get_by_role("button", name="New chat").click()
        chat.fake.reply(text="Hello.")
        ask(page, "Hello there")
        answered(page, 1)
        hello = sidebar.get_by_role("button", name=re.compile(r"^Hello there · "))
        hello.wait_for()
        sidebar.get_by_label("Search conversations").press_sequentially("2*3")  # no Enter
        hello.wait_for(state="detached")
        assert typed.is_visible()


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_stop_sits_by_the_input_and_esc_stops(browser, chat, shots, size):
    page = open_page(browser, chat, size)
    chat.fake.reply(text=" ".join(f"word{i}" for i in range(600)), pace=40)
    ask(page, "Count slowly")
    stop = stop_button(page)
    stop.wait_for()
    until(lambda: "word40" in page.locator(ASSISTANT).last.inner_text(), what="word40")
    bottom = page.locator("[data-testid='stBottom']")
    assert bottom.get_by_text("Sending a new question stops this answer first.").is_visible()
    stop_box = stop.bounding_box()
    input_box = page.locator("[data-testid='stChatInput']").bounding_box()
    assert 0 <= input_box["y"] - (stop_box["y"] + stop_box["height"]) < 120  # right above the input
    assert input_box["y"] + input_box["height"] <= SIZES[size]["height"]  # on screen, not scrolled away
    page.screenshot(path=str(shots / f"streaming-{size}.png"))
    page.locator("[data-testid='stChatInputTextArea']").focus()
    page.keyboard.press("Escape")
    answer = page.locator(ASSISTANT).last
    answer.get_by_text("Stopped by you").wait_for(timeout=10_000)
    assert stop.count() == 0
    shown = int(re.search(r"about (\d+) tokens", answer.inner_text()).group(1))
    words = len(re.findall(r"word\d+", answer.locator("[data-testid='stMarkdownContainer']").first.inner_text()))
    store = open_store(f"sqlite:///{chat.data_dir}/history.db")
    usage = store.messages(store.list_conversations("local")[0].id)[-1].usage
    assert usage["estimated"] is True and usage["total"] == shown
    assert usage["completion"] >= words > 40  # the fake sends a word and its space as separate pieces
    page.screenshot(path=str(shots / f"stopped-{size}.png"))


def test_edit_says_what_goes_away_with_send_and_cancel_together_and_regenerate_keeps_versions(
        browser, chat, shots):
    page = open_page(browser, chat, "desktop")
    chat.fake.reply(text="One.")
    ask(page, "Question one")
    answered(page, 1)
    chat.fake.reply(text="Two.")
    ask(page, "Question two")
    answered(page, 2)
    chat.fake.reply(text="Two, again.")
    page.locator(ASSISTANT).last.get_by_role("button", name="Regenerate").click()
    page.locator(ASSISTANT).last.get_by_text("Two, again.").wait_for()
    wait_idle(page)
    last = page.locator(ASSISTANT).last
    assert last.get_by_text("2/2").is_visible()
    last.get_by_role("button", name="‹").click()
    page.locator(ASSISTANT).last.get_by_text("Two.", exact=True).wait_for()
    assert page.locator(ASSISTANT).last.get_by_text("1/2").is_visible()
    page.screenshot(path=str(shots / "versions-desktop.png"))

    page.locator(USER).first.get_by_role("button", name="Edit").click()
    page.get_by_text("removes the 1 later question below").wait_for()
    wait_idle(page)
    (sx, sy, sw), (cx, cy, _) = page.evaluate(  # both at once: the page may scroll in between
        "() => ['edit-send-', 'edit-cancel-'].map(k => document.querySelector(`[class*='st-key-${k}'] button`))"
        ".map(b => b.getBoundingClientRect()).map(r => [r.x, r.y, r.width])")
    assert abs(sy - cy) < 5 and 0 <= cx - (sx + sw) < 40  # side by side
    page.screenshot(path=str(shots / "edit-desktop.png"))
    cancel = page.locator("[class*='st-key-edit-cancel-'] button").first
    cancel.click()
    cancel.wait_for(state="detached")


def test_continue_and_view_code_after_a_reload(browser, chat, shots):
    page = open_page(browser, chat, "desktop")
    chat.fake.reply(text="Once upon a time", finish_reason="length")
    ask(page, "Tell me a story")
    answered(page, 1)
    chat.fake.reply(text=" there was a lighthouse.")
    page.locator(ASSISTANT).last.get_by_role("button", name="Continue").click()
    page.locator(ASSISTANT).last.get_by_text("Once upon a time there was a lighthouse.").wait_for()
    wait_idle(page)
    assert page.locator(ASSISTANT).count() == 1 and page.get_by_role("button", name="Continue").count() == 0
    page.reload()  # a new session: View code reads the last answer's request from the store
    page.locator(ASSISTANT).last.get_by_text("there was a lighthouse").wait_for()
    page.get_by_text("View code").click()
    curl = page.get_by_role("tab", name=re.compile("curl"))
    curl.click()
    code = page.locator("[data-testid='stCode']").filter(has_text="curl -sS").first
    code.wait_for()
    assert '"prompt": "Tell me a story"' in code.inner_text() and chat.fake.base_url in code.inner_text()
    page.screenshot(path=str(shots / "view-code-desktop.png"))


# The Markdown of the answer's text: every element in the assistant's message but the receipt's.
ANSWER_BLOCKS = ASSISTANT + " [data-testid='stMarkdownContainer']:has-text('Paragraph')"


def test_a_long_answer_keeps_the_elements_it_streamed_into_when_it_ends_and_on_a_rerun(browser, chat):
    """The live view and the saved answer draw the same Markdown blocks (ui.text.blocks): when a long
    answer ends, and when a later run of the page draws it from the store, the browser keeps the very
    elements it rendered while the answer streamed. Nothing of a long answer is rendered anew when it
    ends (which froze the page), and the answer is not one big Markdown element."""
    from ui.text import blocks

    text = "\n\n".join(f"Paragraph {i}: " + " ".join(f"w{i}x{j}" for j in range(50)) for i in range(30))
    assert len(blocks(text)) >= 4
    chat.fake.reply(text=text, pace=400)  # about 1,500 tokens: 4 seconds
    page = open_page(browser, chat, "desktop")
    ask(page, "Write thirty paragraphs")
    until(lambda: page.locator(ANSWER_BLOCKS).count() >= 3, what="two finished blocks and the end")
    # Mark the elements drawn while streaming (a property no React update touches) and their first paragraph.
    marked = page.locator(ANSWER_BLOCKS).evaluate_all("""(els) => {
        window.__streamed = els.flatMap((el) => [el, el.querySelector('p')]);
        return els.length; }""")
    page.locator(ASSISTANT).last.get_by_text(RECEIPT).wait_for()
    wait_idle(page)
    still = "() => window.__streamed.every((el) => el.isConnected)"

    def count() -> int:
        return page.locator(ANSWER_BLOCKS).count()

    assert count() == len(blocks(text)) and marked >= 3
    assert page.evaluate(still), "the end of the answer replaced elements the live view drew"
    page.get_by_text("View code").click()  # a rerun: the answer is drawn from the store this time
    page.locator("[data-testid='stCode']").first.wait_for()
    wait_idle(page)
    assert count() == len(blocks(text))
    assert page.evaluate(still), "a rerun drew the saved answer in other elements than the live view's"
    assert "".join(page.locator(ANSWER_BLOCKS).all_inner_texts()).count("Paragraph") == 30
