"""Usage rows for the dashboard: one per assistant message, tokens, speed, cost, date range."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa

from egp_core.pricing import price_for
from egp_core.store import Store, usage_rows
from egp_core.store import schema as s


def _set_created(store: Store, message_id: str, when: datetime) -> None:
    with store.engine.begin() as conn:
        conn.execute(sa.update(s.messages).where(s.messages.c.id == message_id).values(created_at=when))


def test_usage_rows_tokens_metrics_and_cost(store: Store) -> None:
    store.set_price("m1", 1.0, 2.0)
    cid = store.create_conversation("alice", "Costs")
    store.add_message(cid, "user", "q1")
    a1 = store.add_message(cid, "assistant", "a1", model="m1", usage={"prompt": 1000, "completion": 500, "total": 1500},
                           metrics={"time_to_first_token": 0.25, "total_time": 2.0, "tokens_per_second": 250.0})
    a2 = store.add_message(cid, "assistant", "a2", model="unpriced", usage={"prompt": 10, "completion": 20, "total": 30})
    a3 = store.add_message(cid, "assistant", "", model=None, status="error", error="boom")
    other = store.create_conversation("bob", "Not alice's")
    store.add_message(other, "assistant", "b", model="m1", usage={"prompt": 5, "completion": 5, "total": 10})

    rows = usage_rows(store, "alice", None, None)
    assert [r["message_id"] for r in rows] == [a1, a2, a3]
    r1, r2, r3 = rows
    assert (r1["conversation_id"], r1["conversation_title"], r1["model"]) == (cid, "Costs", "m1")
    assert (r1["prompt_tokens"], r1["completion_tokens"], r1["total_tokens"]) == (1000, 500, 1500)
    assert r1["time_to_first_token"] == pytest.approx(0.25)
    assert r1["tokens_per_second"] == pytest.approx(250.0)
    assert r1["cost"] == pytest.approx(1.0 * 1 + 2.0 * 0.5)
    assert r1["day"] == datetime.now(UTC).date()
    assert r2["cost"] == 0.0 and r2["total_tokens"] == 30
    assert r2["time_to_first_token"] is None
    assert (r3["prompt_tokens"], r3["total_tokens"], r3["cost"], r3["model"], r3["status"]) == (0, 0, 0.0, "", "error")
    # Prices can be given by the caller instead of the stored ones.
    given = usage_rows(store, "alice", prices={"unpriced": (0.5, 0.5)})
    assert given[1]["cost"] == pytest.approx(0.015)
    assert given[0]["cost"] == 0.0
    assert usage_rows(store, "carol") == []


def test_cost_uses_default_prices_unless_the_person_set_one(store: Store) -> None:
    cid = store.create_conversation("alice")
    store.add_message(cid, "assistant", "x", model="gpt-4o", usage={"prompt": 2000, "completion": 1000})
    default = price_for("gpt-4o")
    assert default is not None and default.prompt_per_1k > 0
    expected = 2 * default.prompt_per_1k + 1 * default.completion_per_1k
    assert usage_rows(store, "alice")[0]["cost"] == pytest.approx(expected)
    store.set_price("gpt-4o", 0.0, 0.0)
    assert usage_rows(store, "alice")[0]["cost"] == 0.0
    store.set_price("gpt-4o", 1.0, 1.0)
    assert usage_rows(store, "alice")[0]["cost"] == pytest.approx(3.0)


def test_usage_rows_date_range_inclusive(store: Store) -> None:
    cid = store.create_conversation("alice")
    ids = {}
    for day in (1, 2, 3):
        mid = store.add_message(cid, "assistant", f"d{day}", model="m", usage={"prompt": day, "completion": 0,
                                                                              "total": day})
        _set_created(store, mid, datetime(2026, 3, day, 23, 59, 59, tzinfo=UTC))
        ids[day] = mid
    early = store.add_message(cid, "assistant", "early", model="m")
    _set_created(store, early, datetime(2026, 3, 2, 0, 0, 0, tzinfo=UTC))

    def days(start, end) -> list[str]:
        return [r["message_id"] for r in usage_rows(store, "alice", start, end)]

    assert days(date(2026, 3, 2), date(2026, 3, 2)) == [early, ids[2]]
    assert days(date(2026, 3, 2), None) == [early, ids[2], ids[3]]
    assert days(None, date(2026, 3, 1)) == [ids[1]]
    assert days(date(2026, 3, 4), date(2026, 3, 10)) == []
    assert [r["day"] for r in usage_rows(store, "alice", date(2026, 3, 1), date(2026, 3, 3))] == [
        date(2026, 3, 1), date(2026, 3, 2), date(2026, 3, 2), date(2026, 3, 3)]
    assert sum(r["total_tokens"] for r in usage_rows(store, "alice", date(2026, 3, 1), date(2026, 3, 3))) == 6


def test_total_falls_back_to_prompt_plus_completion(store: Store) -> None:
    cid = store.create_conversation("alice")
    store.add_message(cid, "assistant", "x", model="m", usage={"prompt": 3, "completion": 4})
    store.add_message(cid, "assistant", "y", model="m", usage={"prompt": "3", "completion": None, "total": 9})
    rows = usage_rows(store, "alice")
    assert [r["total_tokens"] for r in rows] == [7, 9]
    assert rows[1]["prompt_tokens"] == 0
    assert (datetime.now(UTC) - rows[0]["created_at"]) < timedelta(minutes=5)
