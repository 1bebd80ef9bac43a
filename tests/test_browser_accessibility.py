"""Accessibility in headless Chromium: axe-core (from the npm registry, installed by
`scripts/setup.sh --dev` into .npm-tools/) audits every page on a laptop and a phone, and a
keyboard user sees where the focus is."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.plugins.app import ROOT, wait_idle

pytestmark = pytest.mark.browser

AXE = ROOT / ".npm-tools" / "node_modules" / "axe-core" / "axe.min.js"
PAGES = ("", "compare", "evaluate", "prompts", "usage", "settings")
VIEWPORTS = {"desktop": {"width": 1400, "height": 1000}, "phone": {"width": 390, "height": 844}}
RECEIPT = re.compile(r"\d[\d,]* tokens · ")


@pytest.fixture(scope="module")
def axe_source() -> str:
    if not AXE.is_file():
        pytest.fail(f"axe-core is missing ({AXE}): run `bash scripts/setup.sh --dev`.")
    return Path(AXE).read_text()


@pytest.fixture(scope="module")
def filled_app(tmp_path_factory):
    """The app on the fake EGP server, with a conversation that has an answer and a system prompt."""
    from tests.fake_egp import FakeEGP
    from tests.plugins.app import RunningApp

    with FakeEGP() as fake:
        fake.models(["fake-model"]).reply(text="Leaves drift down slowly\ncity lights in the cold rain")
        app = RunningApp({"EGP_ENDPOINT_URL": fake.base_url, "EGP_API_KEY": "k", "EGP_PLAYGROUND_LOCAL": "0"},
                         tmp_path_factory.mktemp("a11y")).start()
        try:
            yield app
        finally:
            app.stop()


def serious(page, axe_source: str) -> list[dict]:
    """axe-core's serious and critical violations on the page as it is now."""
    page.add_script_tag(content=axe_source)
    found = page.evaluate("async () => (await axe.run(document)).violations.map(v => ({id: v.id, impact: v.impact,"
                          " help: v.help, nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}))")
    return [v for v in found if v["impact"] in ("serious", "critical")]


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_every_page_has_no_serious_accessibility_violations(filled_app, browser, axe_source, viewport):
    context = browser.new_context(viewport=VIEWPORTS[viewport], is_mobile=viewport == "phone")
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto(filled_app.url)
    page.locator("[data-testid='stChatInputTextArea']:enabled").wait_for()
    wait_idle(page)
    if viewport == "desktop":  # a conversation on screen: messages, receipt, system prompt, history rows
        prompt = page.get_by_role("textbox", name="System prompt")
        prompt.fill("Answer as a poet.")
        prompt.press("Control+Enter")
        page.get_by_text("System prompt: Answer as a poet.").wait_for()
        wait_idle(page)
        box = page.locator("[data-testid='stChatInputTextArea']")
        box.fill("Write a haiku about autumn")
        box.press("Enter")
        page.get_by_text(RECEIPT).last.wait_for()
        wait_idle(page)
    found = {}
    for name in PAGES:
        if name:
            page.goto(f"{filled_app.url}/{name}")
        page.locator("[data-testid='stSidebarNav']").wait_for(state="attached")
        wait_idle(page)
        page.wait_for_timeout(500)  # the last elements' styles settle
        violations = serious(page, axe_source)
        if violations:
            found[name or "chat"] = violations
    context.close()
    assert not found, json.dumps(found, indent=1)


def test_the_keyboard_focus_is_visible(filled_app, browser):
    page = browser.new_page(viewport=VIEWPORTS["desktop"])
    page.goto(filled_app.url)
    page.locator("[data-testid='stChatInputTextArea']:enabled").wait_for()
    wait_idle(page)
    seen = 0
    for _ in range(8):
        page.keyboard.press("Tab")
        outline = page.evaluate("(() => { const e = document.activeElement; if (!e || e === document.body) return null;"
                                " const s = getComputedStyle(e); return [s.outlineStyle, s.outlineWidth, e.tagName]; })()")
        if outline is None:
            continue
        style, width, _tag = outline
        assert style != "none" and float(width.rstrip("px")) >= 2, outline
        seen += 1
    assert seen >= 4
    page.close()
