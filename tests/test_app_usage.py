"""The usage page under AppTest: empty state, numbers equal to sums taken from the store, CSV."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
from streamlit.testing.v1 import AppTest, app_test

from egp_core.pricing import DEFAULT_PRICES, format_cost
from egp_core.store import open_store
from egp_core.store import schema as s

APP = str(Path(__file__).resolve().parents[1] / "app.py")
USAGE = "views/usage.py"
OWNER = "local"  # ui.services.LOCAL_OWNER: no sign-in


class RecordingStorage(MemoryMediaFileStorage):
    """Streamlit's in-memory media storage that also remembers every file (for the CSV download)."""

    files: dict[str, bytes] = {}

    def load_and_get_id(self, path_or_data, mimetype, kind, filename=None) -> str:
        file_id = super().load_and_get_id(path_or_data, mimetype, kind, filename)
        RecordingStorage.files[file_id] = self.get_file(file_id).content
        return file_id


@pytest.fixture
def app_env(fresh_app, fake_egp):
    fresh_app.setenv("EGP_ENDPOINT_URL", fake_egp.base_url)
    fresh_app.setenv("EGP_API_KEY", "usage-test-key-000000")
    fresh_app.setattr(app_test, "MemoryMediaFileStorage", RecordingStorage)
    RecordingStorage.files = {}
    return fake_egp


@pytest.fixture
def store(app_env):
    """The same history database the app opens (EGP_PLAYGROUND_DATA/history.db)."""
    st_ = open_store()
    yield st_
    st_.close()


def usage_page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.switch_page(USAGE).run()
    assert not at.exception, at.exception
    return at


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def table(at: AppTest, column: str):
    """The table on the page that has this column (read-only tables carry no key)."""
    (found,) = [d.value for d in at.dataframe if column in d.value.columns]
    return found


def seed(store) -> dict[str, str]:
    """Two conversations of ours with priced, default-priced and unpriced models, and one of someone else."""
    store.set_price("house-model", 1.0, 2.0)
    trip = store.create_conversation(OWNER, "Trip planning")
    store.add_message(trip, "user", "Where to go?")
    store.add_message(trip, "assistant", "Lisbon.", model="gpt-4o",
                      usage={"prompt": 1200, "completion": 300, "total": 1500},
                      metrics={"time_to_first_token": 0.4, "tokens_per_second": 50.0, "total_time": 6.4})
    store.add_message(trip, "user", "And then?")
    store.add_message(trip, "assistant", "Porto.", model="gpt-4o",
                      usage={"prompt": 1600, "completion": 200, "total": 1800},
                      metrics={"time_to_first_token": 0.6, "tokens_per_second": 40.0, "total_time": 5.6})
    store.add_message(trip, "assistant", "A house answer.", model="house-model",
                      usage={"prompt": 500, "completion": 250, "total": 750},
                      metrics={"time_to_first_token": 0.1, "tokens_per_second": 120.0, "total_time": 2.2})
    code = store.create_conversation(OWNER, "Code review")
    store.add_message(code, "user", "Review this")
    store.add_message(code, "assistant", "Looks fine.", model="mystery-model",
                      usage={"prompt": 90, "completion": 10, "total": 100})
    store.add_message(code, "assistant", "", model="gpt-4o", status="error", error="boom")
    other = store.create_conversation("someone-else", "Not ours")
    store.add_message(other, "assistant", "x", model="gpt-4o", usage={"prompt": 99999, "completion": 99999})
    return {"trip": trip, "code": code}


def expected_from_store(store) -> dict:
    """Sums taken straight from the stored messages (not through usage_rows)."""
    prices = {m: (p.prompt_per_1k, p.completion_per_1k) for m, p in DEFAULT_PRICES.items()}
    prices.update(store.get_prices())
    per_model: dict[str, dict] = {}
    for conv in store.list_conversations(OWNER):
        for m in store.messages(conv.id):
            if m.role != "assistant":
                continue
            usage = m.usage or {}
            entry = per_model.setdefault(m.model, {"answers": 0, "prompt": 0, "completion": 0, "total": 0, "cost": 0.0})
            entry["answers"] += 1
            for k in ("prompt", "completion", "total"):
                entry[k] += usage.get(k, 0)
            p, c = prices.get(m.model, (0.0, 0.0))
            entry["cost"] += usage.get("prompt", 0) / 1000 * p + usage.get("completion", 0) / 1000 * c
    return per_model


def test_an_empty_history_shows_a_helpful_empty_state(app_env):
    at = usage_page()
    assert [i.value for i in at.info] == [
        "Nothing to show yet. Chat or compare models, and what each answer cost in tokens, time and money "
        "shows up here."
    ]
    assert not at.metric and not at.error and not at.dataframe
    assert not [b for b in at.get("download_button")]


def test_the_dashboard_numbers_equal_sums_from_the_store(store):
    seed(store)
    expected = expected_from_store(store)
    assert set(expected) == {"gpt-4o", "house-model", "mystery-model"}
    at = usage_page()
    shown = metrics(at)
    assert shown["Answers"] == str(sum(e["answers"] for e in expected.values()))  # 5, the failed one too
    assert shown["Prompt tokens"] == f"{sum(e['prompt'] for e in expected.values()):,}"
    assert shown["Completion tokens"] == f"{sum(e['completion'] for e in expected.values()):,}"
    assert shown["Total tokens"] == f"{sum(e['total'] for e in expected.values()):,}"
    assert shown["Estimated cost"] == format_cost(sum(e["cost"] for e in expected.values()))
    assert shown["Total tokens"] == "4,150" and shown["Estimated cost"] == "$1.01"  # by hand: gpt-4o $0.012, house $1.00

    per_model = table(at, "median_tokens_per_s").set_index("model")
    assert set(per_model.index) == set(expected)
    for model, e in expected.items():
        row = per_model.loc[model]
        assert (row["answers"], row["prompt_tokens"], row["completion_tokens"], row["total_tokens"]) == (
            e["answers"], e["prompt"], e["completion"], e["total"])
        assert row["cost"] == pytest.approx(e["cost"])
    assert per_model.loc["gpt-4o", "median_first_token_s"] == pytest.approx(0.5)
    assert per_model.loc["house-model", "median_tokens_per_s"] == pytest.approx(120.0)

    busiest = table(at, "conversation")
    assert list(busiest["conversation"]) == ["Trip planning", "Code review"]
    assert list(busiest["total_tokens"]) == [4050, 100]
    assert any("mystery-model" in c.value and "Settings" in c.value for c in at.caption)


def test_a_price_changed_in_the_store_changes_the_cost(store):
    seed(store)
    store.set_price("mystery-model", 10.0, 10.0)  # 100 tokens -> $1.00
    shown = metrics(usage_page())
    assert shown["Estimated cost"] == format_cost(sum(e["cost"] for e in expected_from_store(store).values()))
    assert shown["Estimated cost"] == "$2.01"


def test_the_date_range_picks_the_answers(store):
    ids = seed(store)
    old = [m for m in store.messages(ids["code"]) if m.role == "assistant"]
    long_ago = datetime.now(UTC) - timedelta(days=60)
    with store.engine.begin() as conn:
        conn.execute(sa.update(s.messages).where(s.messages.c.id.in_([m.id for m in old]))
                     .values(created_at=long_ago))
    at = usage_page()
    assert metrics(at)["Answers"] == "3"
    assert list(table(at, "median_tokens_per_s")["model"]) == ["gpt-4o", "house-model"]

    day = long_ago.date()
    at.date_input(key="usage-range").set_value((day, day)).run()
    assert metrics(at)["Answers"] == "2"
    assert metrics(at)["Total tokens"] == "100"

    at.date_input(key="usage-range").set_value((day + timedelta(days=1), day + timedelta(days=2))).run()
    assert [i.value for i in at.info] == ["No answers in these dates. Pick a wider range above."]
    assert not at.metric


def test_the_csv_download_holds_one_row_per_answer(store):
    seed(store)
    at = usage_page()
    (button,) = [b for b in at.get("download_button") if b.label == "Download the table (CSV)"]
    file_id = button.proto.url.rsplit("/", 1)[-1].split(".")[0]
    rows = list(csv.DictReader(io.StringIO(RecordingStorage.files[file_id].decode())))
    assert len(rows) == 5
    assert sum(int(r["total_tokens"]) for r in rows) == 4150
    assert {r["conversation_title"] for r in rows} == {"Trip planning", "Code review"}
    expected = expected_from_store(store)
    assert sum(float(r["cost"]) for r in rows) == pytest.approx(sum(e["cost"] for e in expected.values()))
    assert "Not ours" not in RecordingStorage.files[file_id].decode()
