"""Answer options in headless Chromium, on the built-in model (SGP v5 on the local server): three
candidates, a pinned seed that repeats, the token probability view (hovering shows the
alternatives), and validated JSON."""

from __future__ import annotations

import json
import re

import pytest

from egp_core.store import open_store
from tests.plugins.app import wait_idle
from tests.test_browser_chat import ASSISTANT, ask, local_app, open_ready, set_max_tokens, until  # noqa: F401

pytestmark = pytest.mark.browser


def sidebar_option(page, label: str):
    return page.get_by_test_id("stSidebar").get_by_label(label, exact=True)


def open_answer_options(page) -> None:
    expander = page.get_by_test_id("stSidebar").get_by_text("Answer options", exact=True)
    if not page.get_by_test_id("stSidebar").get_by_text("Candidates", exact=True).is_visible():
        expander.click()
    page.get_by_test_id("stSidebar").get_by_text("Candidates", exact=True).wait_for()


def set_number(page, label: str, value: int) -> None:
    box = sidebar_option(page, label).and_(page.get_by_test_id("stNumberInputField"))
    box.fill(str(value))
    box.press("Enter")
    wait_idle(page)


def toggle(page, label: str) -> None:
    page.get_by_test_id("stSidebar").get_by_text(label, exact=True).click()
    wait_idle(page)


def candidate_texts(data_dir) -> list[tuple[int, str, int | None]] | None:
    """The shown candidates (pane, text, seed), once every one of them has finished."""
    store = open_store(f"sqlite:///{data_dir}/history.db")
    try:
        conv = store.list_conversations("local")[0]
        answers = [m for m in store.messages(conv.id) if m.role == "assistant" and not m.hidden]  # Regenerate
        # keeps the earlier candidates, hidden, as a version to go back to
        if any(m.status != "complete" for m in answers):
            return None
        return [(m.pane, m.text, (m.parameters or {}).get("seed")) for m in answers]
    finally:
        store.close()


def test_candidates_seed_probabilities_and_json_on_the_built_in_model(local_app, page):  # noqa: F811
    open_ready(page, local_app)
    set_max_tokens(page, 16)
    open_answer_options(page)
    set_number(page, "Candidates", 3)
    toggle(page, "Pin a seed")
    set_number(page, "Seed", 7)
    toggle(page, "Token probabilities")
    ask(page, "Name a colour and say why you like it.")

    # three candidates as tabs, each with its receipt naming its seed
    tabs = page.get_by_role("tab", name=re.compile(r"^Candidate \d"))
    until(lambda: tabs.count() == 3, what="three candidate tabs")
    page.get_by_role("button", name="Regenerate").wait_for(timeout=120_000)
    assert [t.inner_text() for t in tabs.all()] == ["Candidate 1 ✓", "Candidate 2", "Candidate 3"]
    until(lambda: candidate_texts(local_app.data_dir) is not None, what="the candidates saved")
    first = candidate_texts(local_app.data_dir)
    assert [(p, s) for p, _, s in first] == [(0, 7), (1, 8), (2, 9)]
    assert all(text for _, text, _ in first)
    page.get_by_text("repeatable: seed 7").first.wait_for()

    # the probability view: shaded tokens, and hovering one shows its alternatives
    page.get_by_text("Show where the model was unsure").first.click()
    wait_idle(page)
    tokens = page.get_by_test_id("token-probs").first.get_by_test_id("token")
    until(lambda: tokens.count() > 0, what="the shaded tokens")
    tip = tokens.first.get_by_test_id("token-tip")
    assert not tip.is_visible()
    tokens.first.hover()
    tip.wait_for(state="visible")
    assert re.search(r"chosen: .+ \d+(\.\d)?%", tip.inner_text())
    assert len(tip.inner_text().splitlines()) >= 2  # and at least one alternative, with its chance
    page.get_by_text("where the model was unsure", exact=False).first.wait_for()

    # pick candidate 2, then regenerate: the same seeds give the same three answers
    tabs.nth(1).click()
    page.get_by_role("button", name="Continue with this one").first.click()
    wait_idle(page)
    until(lambda: tabs.nth(1).inner_text() == "Candidate 2 ✓", what="candidate 2 picked")
    page.get_by_role("button", name="Regenerate").click()
    page.get_by_role("button", name="Regenerate").wait_for(timeout=120_000)
    until(lambda: len(candidate_texts(local_app.data_dir) or []) == 3, what="the regenerated candidates")
    assert candidate_texts(local_app.data_dir) == first

    # JSON mode, in a new chat: the grammar makes the model write JSON; the page validates and
    # pretty-prints it
    page.get_by_test_id("stSidebar").get_by_role("button", name="New chat").click()
    wait_idle(page)
    set_number(page, "Candidates", 1)
    toggle(page, "Token probabilities")
    toggle(page, "Answer in JSON")
    page.get_by_test_id("stSidebar").get_by_text("Precise", exact=True).click()
    wait_idle(page)
    set_number(page, "Max tokens", 150)  # the Advanced expander is open already
    ask(page, "Reply with a JSON object with keys name and colour for a cat.")
    verdict = page.locator(ASSISTANT).last.get_by_text(re.compile(r"^Valid JSON\.|not valid JSON|does not match"))
    verdict.wait_for(timeout=120_000)
    assert verdict.inner_text() == "Valid JSON.", page.locator(ASSISTANT).last.inner_text()
    code = page.locator(ASSISTANT).last.get_by_test_id("stCode").inner_text()
    assert isinstance(json.loads(code), dict)
