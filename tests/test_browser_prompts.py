"""Prompts in headless Chromium: fill a saved prompt's variables form and send; export and import files."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from egp_core.prompts import PromptContent
from egp_core.store import open_store
from egp_core.store.prompts import PromptLibrary
from tests.plugins.app import wait_idle

pytestmark = pytest.mark.browser

ASSISTANT = "[data-testid='stChatMessage']:has([data-testid='stChatMessageAvatarAssistant'])"


def test_fill_a_variables_form_and_send(app_factory, fake_egp, page, tmp_path):
    fake_egp.models(["fake-model"])
    fake_egp.reply(text="Here is the summary.")
    store = open_store(f"sqlite:///{tmp_path}/history.db")
    PromptLibrary(store).create("local", PromptContent(
        name="Summarise", template="Summarise {{text}} in {{words|50}} words."))
    store.close()
    app = app_factory(env={"EGP_ENDPOINT_URL": fake_egp.base_url, "EGP_API_KEY": "k"})
    page.goto(app.url)
    page.locator("[data-testid='stChatInputTextArea']:enabled").wait_for()
    picker = page.locator("[data-testid='stExpander']").filter(has_text="Use a saved prompt")
    picker.get_by_text("Use a saved prompt").click()
    wait_idle(page)
    for attempt in range(3):  # a rerun of the page (e.g. once it has loaded) closes an open list
        picker.locator("[data-testid='stSelectbox']").first.click()
        try:
            page.get_by_role("option", name="Summarise").click(timeout=5_000)
            break
        except PlaywrightTimeout:
            assert attempt < 2, "the prompt list did not stay open"
            wait_idle(page)
    wait_idle(page)

    text = page.get_by_label("text", exact=True)
    assert text.evaluate("e => e.tagName") == "TEXTAREA"  # a long variable gets a multi-line field
    assert page.get_by_label("words", exact=True).evaluate("e => e.tagName") == "INPUT"
    page.get_by_text("Fill in text: the prompt has no value for it.").wait_for()
    send = page.locator("[data-testid^='stBaseButton']").filter(has_text=re.compile(r"^\W*(send)?\s*Send$"))
    assert send.is_disabled()

    text.fill("the quarterly report\nand its annex")
    page.get_by_label("words", exact=True).click()  # leaving the text area commits it
    page.get_by_label("words", exact=True).fill("12")
    page.get_by_label("words", exact=True).press("Enter")
    wait_idle(page)
    preview = page.locator("[data-testid='stCode']").filter(has_text="Summarise the quarterly report")
    preview.wait_for()
    assert "and its annex in 12 words." in preview.inner_text()
    assert page.get_by_text("Fill in text").count() == 0
    send.click()

    answer = page.locator(ASSISTANT).last
    answer.get_by_text("from prompt 'Summarise' v1").wait_for()
    assert "Here is the summary." in answer.inner_text()
    body = [r.body for r in fake_egp.requests if r.path.endswith("completions")][-1]
    assert body["prompt"] == "Summarise the quarterly report\nand its annex in 12 words."


def test_export_then_import_prompts_and_a_broken_file_says_why(app_factory, fake_egp, page, tmp_path):
    fake_egp.models(["fake-model"])
    store = open_store(f"sqlite:///{tmp_path}/history.db")
    library = PromptLibrary(store)
    v1 = library.create("local", PromptContent(name="Haiku", template="A haiku about {{topic}}"))
    library.save(v1.prompt_id, "local", PromptContent(name="Haiku", template="A haiku about {{topic|rain}}"))
    app = app_factory(env={"EGP_ENDPOINT_URL": fake_egp.base_url, "EGP_API_KEY": "k"})
    page.goto(app.url + "/prompts")
    wait_idle(page)
    page.get_by_text("Export / import").click()
    wait_idle(page)
    with page.expect_download() as download:
        page.get_by_text("Export my prompts (JSON)").click()
    exported = tmp_path / "exported.json"
    download.value.save_as(exported)
    assert '"format": "egp-playground-prompts"' in exported.read_text()

    broken = tmp_path / "broken.json"
    broken.write_text(exported.read_text().rstrip()[:-3])  # cut off at the end
    page.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files(str(broken))
    page.get_by_text("broken.json").wait_for()
    wait_idle(page)
    page.get_by_role("button", name="Import", exact=True).click()
    page.get_by_text("The file is cut off: it ends in the middle.").wait_for()
    assert len(library.list("local")) == 1

    page.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files(str(exported))
    page.get_by_text("exported.json").wait_for()
    wait_idle(page)
    page.get_by_role("button", name="Import", exact=True).click()
    page.get_by_text("Imported 1 prompt, with all their versions.").wait_for()
    copies = library.list("local")
    assert [p.name for p in copies] == ["Haiku", "Haiku"]
    assert all([v.version for v in library.versions(p.id, "local")] == [2, 1] for p in copies)
    store.close()
