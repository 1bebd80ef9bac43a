"""The sidebar and the chat around it, in headless Chromium, on a laptop (1400x1000) and a phone
(390x844): one line per conversation, the row menu, a share link with the browser's own address
and Copy link, settings kept across a reload, the drawer on a phone, a dead connection."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.plugins.app import free_port, wait_idle

pytestmark = pytest.mark.browser

DESKTOP = {"width": 1400, "height": 1000}
PHONE = {"width": 390, "height": 844}
RECEIPT = re.compile(r"\d[\d,]* tokens · ")
SIDEBAR = "[data-testid='stSidebar']"


@pytest.fixture
def app(app_factory, fake_egp):
    fake_egp.models(["fake-model"]).reply(text="Leaves drift down slowly\ncity lights in the cold rain")
    return app_factory(env={"EGP_ENDPOINT_URL": fake_egp.base_url, "EGP_API_KEY": "k", "EGP_PLAYGROUND_LOCAL": "0"})


def new_page(browser, viewport: dict, **kw):
    context = browser.new_context(viewport=viewport, is_mobile=viewport is PHONE, has_touch=viewport is PHONE, **kw)
    page = context.new_page()
    page.set_default_timeout(30_000)
    return page


def ready(page, url: str) -> None:
    page.goto(url)
    page.locator("[data-testid='stChatInputTextArea']:enabled").wait_for()
    wait_idle(page)


def ask(page, text: str) -> None:
    box = page.locator("[data-testid='stChatInputTextArea']")
    box.fill(text)
    box.press("Enter")
    page.get_by_text(RECEIPT).last.wait_for()
    wait_idle(page)


def rows(page):
    return page.locator(f"{SIDEBAR} [class*='st-key-open-'] [data-testid^='stBaseButton']:visible")


def test_rows_are_one_line_told_apart_with_a_menu_and_a_share_link_that_works(app, browser):
    page = new_page(browser, DESKTOP, permissions=["clipboard-read", "clipboard-write"])
    ready(page, app.url)
    question = "Write a haiku about autumn in the city, with falling leaves and rain"
    ask(page, question)
    page.get_by_role("button", name="New chat").click()
    wait_idle(page)
    ask(page, question)
    assert rows(page).count() == 2, rows(page).all_inner_texts()
    labels = [t.strip() for t in rows(page).all_inner_texts()]
    assert labels[0] != labels[1] and all(t.startswith("Write a haiku") for t in labels)
    line = rows(page).first.bounding_box()["height"]
    assert all(rows(page).nth(i).bounding_box()["height"] <= line + 1 for i in range(2))
    assert line < 48  # one line, not a title wrapped onto two
    assert page.title().startswith("Write a haiku about autumn")  # the browser tab names the chat
    assert page.locator("h3").filter(has_text="Write a haiku about autumn").count() == 1  # and the page

    page.locator(f"{SIDEBAR} [class*='st-key-menu-'] [data-testid='stPopoverButton']").first.click()
    menu = page.locator("[data-testid='stPopoverBody']")
    menu.get_by_role("button", name="Delete").wait_for()
    colour = menu.locator("[class*='st-key-del-'] button").evaluate("b => getComputedStyle(b).color")
    assert colour == "rgb(180, 35, 24)"  # a destructive button in the warning colour
    menu.get_by_role("button", name="Share a read-only link").click()
    wait_idle(page)
    link = page.locator("[data-testid='stPopoverBody'] code").first.inner_text().strip()
    assert link.startswith(f"{app.url}/?share=")  # the address this browser uses, port included
    menu.get_by_role("button", name="Copy to the clipboard").click()  # the shared copy button (ui/copy_button)
    menu.get_by_text("Copied").wait_for()
    assert page.evaluate("navigator.clipboard.readText()") == link
    shared = new_page(browser, DESKTOP)
    shared.goto(link)
    shared.get_by_text("A read-only copy shared with you.").wait_for()
    shared.get_by_text("Leaves drift down slowly").first.wait_for()  # the shared answer, drawn after its header
    shared.context.close()
    page.context.close()


def test_settings_and_system_prompt_survive_a_reload(app, browser):
    page = new_page(browser, DESKTOP)
    ready(page, app.url)
    page.get_by_text("Creative", exact=True).click()
    wait_idle(page)
    prompt = page.get_by_role("textbox", name="System prompt")
    prompt.fill("Answer as a poet.")
    prompt.press("Control+Enter")
    page.get_by_text("System prompt: Answer as a poet.").wait_for()  # the server has it, shown at the top
    wait_idle(page)
    ask(page, "Tell me about the sea")
    page.reload()
    page.get_by_text(RECEIPT).first.wait_for()
    wait_idle(page)
    expect(page.get_by_role("textbox", name="System prompt")).to_have_value("Answer as a poet.")
    expect(page.get_by_role("radio", name="Creative")).to_be_checked()
    assert page.get_by_text("System prompt: Answer as a poet.").count() == 1  # at the top of the chat
    page.context.close()


def test_on_a_phone_history_comes_first_and_the_drawer_closes_after_a_pick(app, browser):
    desktop = new_page(browser, DESKTOP)
    ready(desktop, app.url)
    ask(desktop, "First question from the laptop")
    desktop.context.close()

    page = new_page(browser, PHONE)
    ready(page, app.url)
    assert "sidebar" not in page.locator("[data-testid='stMainBlockContainer']").inner_text().lower()  # points nowhere hidden
    page.locator("[data-testid='stExpandSidebarButton']").click()
    sidebar = page.locator(SIDEBAR)
    new_chat = sidebar.get_by_role("button", name="New chat")
    new_chat.wait_for()
    row = rows(page).first
    assert new_chat.bounding_box()["y"] + new_chat.bounding_box()["height"] < PHONE["height"]
    assert row.bounding_box()["y"] + row.bounding_box()["height"] < PHONE["height"]  # no scrolling past settings
    assert sidebar.get_by_text("Connection").bounding_box()["y"] > row.bounding_box()["y"]
    row.click()
    wait_idle(page)
    page.wait_for_function("document.querySelector(\"[data-testid='stSidebar']\").getAttribute('data-collapsed') === 'true'")
    receipt = page.get_by_text(RECEIPT).first
    receipt.wait_for()
    assert receipt.bounding_box()["height"] < 30  # the receipt takes one line
    page.context.close()


def test_a_dead_connection_says_why_and_the_input_says_so(app_factory, browser):
    port = free_port()  # nothing listens there
    dead = app_factory(env={"EGP_ENDPOINT_URL": f"http://127.0.0.1:{port}", "EGP_API_KEY": "k",
                            "EGP_PLAYGROUND_LOCAL": "0"})
    page = new_page(browser, DESKTOP)
    page.goto(dead.url)
    page.get_by_text(f"refused the connection on port {port}").first.wait_for()
    box = page.locator("[data-testid='stChatInputTextArea']")
    assert box.is_disabled()
    assert "cannot be reached" in (box.get_attribute("placeholder") or "")
    assert page.locator(f"{SIDEBAR} [data-testid='stSelectbox']").filter(has_text="Model").count() == 0
    page.context.close()


def test_adding_a_connection_tests_it_first_and_says_why_not_on_a_phone(app, browser):
    port = free_port()
    page = new_page(browser, PHONE)
    page.goto(f"{app.url}/settings")
    page.get_by_role("textbox", name="Address").fill(f"http://127.0.0.1:{port}")
    page.get_by_role("button", name="Test and add").click()
    page.get_by_text(f"Not added: 127.0.0.1 refused the connection on port {port}").wait_for()
    page.get_by_text("Technical detail").wait_for()
    assert page.get_by_text("secrets.toml").count() == 0  # the technical names wait behind a "?"
    page.context.close()
