"""The Evaluate page in headless Chromium: upload a CSV, map, estimate, run two models, watch the progress,
read the verdict, filter the failures, export the results.

The app runs as a real `streamlit run` process with two connections (secrets.toml, the compare
test's `compare_app` fixture), one per fake EGP server: "Paris" answers "Paris." to everything,
"Hedge" answers "Paris, or maybe Rome.".
"""

from __future__ import annotations

import csv
import io
import re

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.fake_egp import FakeEGP
from tests.plugins.app import wait_idle
from tests.test_browser_compare import compare_app, pick  # noqa: F401 - compare_app is a fixture

pytestmark = pytest.mark.browser

ROWS = 20  # 15 expect Paris, 5 expect Rome


@pytest.fixture
def servers():
    started = {"paris": FakeEGP().start().models(["paris-model"]).reply(text="Paris."),
               "hedge": FakeEGP().start().models(["hedge-model"]).reply(text="Paris, or maybe Rome.")}
    for fake in started.values():
        fake.delay_first_byte(1.0)  # slow enough to watch the progress bar (20 rows, 4 at a time: 5 s)
    yield started
    for fake in started.values():
        fake.stop()


def test_upload_map_estimate_run_filter_export(compare_app, servers, page, tmp_path):  # noqa: F811
    eval_app = compare_app  # the app with one connection per server in secrets.toml
    data = tmp_path / "capitals.csv"
    data.write_text("Question,Expected answer\n" + "".join(
        f"Which city is capital number {i}?,{'Rome' if i % 4 == 0 else 'Paris'}\n" for i in range(ROWS)))
    page.goto(eval_app.url)
    wait_idle(page)
    page.get_by_role("link", name="Evaluate").click()
    page.get_by_text("Start with a dataset").wait_for()
    page.locator("input[type=file]").set_input_files(str(data))
    page.get_by_text(f"{ROWS} rows, 2 columns").wait_for()
    wait_idle(page)
    # the template's {{question}} was matched to the "Question" column, the expected answer guessed
    assert page.get_by_test_id("stSelectbox").filter(has_text="{{question}} comes from").get_by_role(
        "combobox").input_value() == "Question"
    assert page.get_by_test_id("stSelectbox").filter(has_text="Expected answer").get_by_role(
        "combobox").input_value() == "Expected answer"
    second = page.get_by_test_id("stSelectbox").filter(has_text="Connection").nth(1)  # contestant B's
    pick(page, second.locator(".."), "Connection", "Hedge")  # (pick retries a click the page swallowed)
    wait_idle(page)
    page.get_by_test_id("stMetric").filter(has_text="Requests").get_by_text(str(2 * ROWS)).wait_for()

    page.get_by_role("button", name="Run the evaluation").click()
    page.get_by_text(re.compile(rf"of {2 * ROWS} done")).first.wait_for()  # the progress bar
    page.get_by_text("Just finished:").first.wait_for()  # results appear as rows finish
    page.get_by_text(re.compile(r"Errors: 0 · Tokens: \d+")).first.wait_for()
    verdict = "B: hedge-model passes 5 more of 20 rows than A: paris-model; not enough evidence yet"
    page.get_by_text(verdict).wait_for(timeout=90_000)
    wait_idle(page)
    assert len([r for r in servers["paris"].requests if r.method == "POST"]) == ROWS

    page.get_by_role("radiogroup", name="Show").get_by_text("Failures only", exact=True).click()
    wait_idle(page)
    page.get_by_text("Page (of 1; 5 rows)").wait_for()

    wait_idle(page)
    for attempt in range(3):  # a click that lands while the page redraws is lost: click again
        try:
            with page.expect_download(timeout=20_000) as download:
                page.get_by_role("button", name="Export CSV").click()
            break
        except PlaywrightTimeout:
            assert attempt < 2, "the CSV never downloaded"
            wait_idle(page)
    rows = list(csv.DictReader(io.StringIO(download.value.path().read_text())))
    assert len(rows) == 2 * ROWS
    assert {r["output"] for r in rows} == {"Paris.", "Paris, or maybe Rome."}
    assert sum(r["passed"] == "True" for r in rows) == 15 + 20
    assert not any("key-" in v for r in rows for v in r.values())
