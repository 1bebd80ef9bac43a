"""Numbered migrations: each one upgrades a database left by the version before, keeping its data."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from egp_core.store import SchemaTooNew, open_store
from egp_core.store import schema as s
from egp_core.store.engine import make_engine
from egp_core.store.migrations import LATEST, MIGRATIONS, current_version, migrate
from egp_core.store.schema import UTCDateTime

T0 = datetime(2025, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)


def _t(name: str, *cols: tuple[str, sa.types.TypeEngine]) -> sa.TableClause:
    return sa.table(name, *(sa.column(c, t) for c, t in cols))


# Tables as the app wrote them at each version (only the columns that existed then).
CONV_V1 = _t("conversations", ("id", sa.String()), ("owner", sa.String()), ("title", sa.Text()),
             ("created_at", UTCDateTime()), ("updated_at", UTCDateTime()), ("settings", sa.JSON()))
MSG_V1 = _t("messages", ("id", sa.String()), ("conversation_id", sa.String()), ("seq", sa.Integer()),
            ("role", sa.String()), ("text", sa.Text()), ("status", sa.String()), ("model", sa.Text()),
            ("parameters", sa.JSON()), ("usage", sa.JSON()), ("metrics", sa.JSON()), ("error", sa.Text()),
            ("finish_reason", sa.String()), ("created_at", UTCDateTime()), ("updated_at", UTCDateTime()))
SHARE_V2 = _t("shares", ("token", sa.String()), ("conversation_id", sa.String()), ("owner", sa.String()),
              ("created_at", UTCDateTime()))


def seed_v1(conn: sa.Connection) -> None:
    conn.execute(sa.insert(CONV_V1).values(id="c1", owner="alice", title="Old chat", created_at=T0,
                                           updated_at=T0, settings={"model": "m1"}))
    conn.execute(sa.insert(MSG_V1), [
        {"id": "m1", "conversation_id": "c1", "seq": 1, "role": "user", "text": "Old question", "status": "complete",
         "model": None, "parameters": None, "usage": None, "metrics": None, "error": None, "finish_reason": None,
         "created_at": T0, "updated_at": T0},
        {"id": "m2", "conversation_id": "c1", "seq": 2, "role": "assistant", "text": "Old answ", "status": "streaming",
         "model": "m1", "parameters": {"max_tokens": 8}, "usage": {"prompt": 3, "completion": 2, "total": 5},
         "metrics": {"time_to_first_token": 0.5}, "error": None, "finish_reason": None,
         "created_at": T0, "updated_at": T0},
    ])


def check_v1(conn: sa.Connection) -> None:
    row = conn.execute(sa.select(CONV_V1).where(CONV_V1.c.id == "c1")).one()
    assert (row.owner, row.title, row.settings, row.created_at) == ("alice", "Old chat", {"model": "m1"}, T0)
    msgs = conn.execute(sa.select(MSG_V1).where(MSG_V1.c.conversation_id == "c1").order_by(MSG_V1.c.seq)).all()
    assert [(m.id, m.text, m.status, m.usage) for m in msgs] == [
        ("m1", "Old question", "complete", None), ("m2", "Old answ", "streaming", {"prompt": 3, "completion": 2, "total": 5})]


def seed_v2(conn: sa.Connection) -> None:
    conn.execute(sa.insert(SHARE_V2).values(token="tok-v2", conversation_id="c1", owner="alice", created_at=T0))


def check_v2(conn: sa.Connection) -> None:
    assert conn.execute(sa.select(SHARE_V2.c.conversation_id).where(SHARE_V2.c.token == "tok-v2")).scalar() == "c1"


def seed_v3(conn: sa.Connection) -> None:
    conv = _t("conversations", *[(c.name, c.type) for c in CONV_V1.columns], ("kind", sa.String()))
    msg = _t("messages", *[(c.name, c.type) for c in MSG_V1.columns], ("pane", sa.Integer()))
    conn.execute(sa.insert(conv).values(id="c2", owner="alice", title="Compare", created_at=T0, updated_at=T0,
                                        settings={}, kind="compare"))
    conn.execute(sa.insert(msg).values(id="m3", conversation_id="c2", seq=1, role="assistant", text="pane two",
                                       status="complete", created_at=T0, updated_at=T0, pane=1))


def check_v3(conn: sa.Connection) -> None:
    kinds = dict(conn.exec_driver_sql("SELECT id, kind FROM conversations").all())
    assert kinds == {"c1": "chat", "c2": "compare"}
    panes = dict(conn.exec_driver_sql("SELECT id, pane FROM messages").all())
    assert panes == {"m1": None, "m2": None, "m3": 1}


def seed_v4(conn: sa.Connection) -> None:
    conn.execute(sa.insert(s.votes).values(id="v1", conversation_id="c2", owner="alice", winner_model="m1",
                                           models=["m1", "m2"], created_at=T0))
    conn.execute(sa.insert(s.prices).values(model="m1", prompt_per_1k=0.5, completion_per_1k=1.5, updated_at=T0))


def check_v4(conn: sa.Connection) -> None:
    assert conn.execute(sa.select(s.votes.c.models)).scalar() == ["m1", "m2"]
    assert conn.execute(sa.select(s.prices.c.prompt_per_1k)).scalar() == 0.5


def seed_v5(conn: sa.Connection) -> None:
    conn.execute(sa.insert(s.prompts).values(id="p1", owner="alice", tags=["writing"], team=False, share_token=None,
                                             latest_version=2, created_at=T0, updated_at=T0, deleted_at=None))
    conn.execute(sa.insert(s.prompt_versions), [
        {"prompt_id": "p1", "version": n, "name": "Summarise", "description": "", "system_prompt": "",
         "template": f"v{n} {{{{text}}}}", "model": None, "parameters": None, "note": "", "created_at": T0}
        for n in (1, 2)])


def check_v5(conn: sa.Connection) -> None:
    rows = conn.execute(sa.select(s.prompt_versions.c.version, s.prompt_versions.c.template)
                        .order_by(s.prompt_versions.c.version)).all()
    assert [tuple(r) for r in rows] == [(1, "v1 {{text}}"), (2, "v2 {{text}}")]
    assert conn.execute(sa.select(s.prompts.c.tags, s.prompts.c.team)).one() == (["writing"], False)


def seed_v6(conn: sa.Connection) -> None:
    conn.execute(sa.insert(s.demos).values(id="d1", code="ABC234", owner="alice", title="Demo", settings={},
                                           created_at=T0))
    conn.execute(sa.insert(s.rounds).values(id="r1", demo_id="d1", owner="alice", number=1, status="open",
                                            contestants=["m1", "m2"], created_at=T0))
    conn.execute(sa.insert(s.round_votes).values(round_id="r1", voter="v", choice="A", source="s",
                                                 created_at=T0))


def check_v6(conn: sa.Connection) -> None:
    # the one-click vote of version 4 became a revealed round that the leaderboard reads
    old = conn.execute(sa.select(s.rounds.c.outcome, s.rounds.c.status).where(s.rounds.c.id == "v1")).first()
    assert old is not None and old.status == "revealed" and old.outcome["winner"] == 0
    assert conn.execute(sa.select(s.round_votes.c.choice).where(s.round_votes.c.round_id == "r1")).scalar() == "A"


def seed_v7(conn: sa.Connection) -> None:
    conn.execute(sa.insert(s.eval_datasets).values(id="d1", owner="alice", name="qs.csv", content_hash="h1",
                                                   columns=["q"], rows=[["hi"]], n_rows=1, created_at=T0))
    conn.execute(sa.insert(s.eval_runs).values(id="r1", owner="alice", title="Run", dataset_id="d1", config={},
                                               status="complete", total=1, created_at=T0, updated_at=T0))
    conn.execute(sa.insert(s.eval_results).values(run_id="r1", row_index=0, contestant=0, repeat_index=0,
                                                  status="ok", output="hello", created_at=T0))


def check_v7(conn: sa.Connection) -> None:
    assert conn.execute(sa.select(s.eval_results.c.output)).scalar() == "hello"
    with pytest.raises(sa.exc.IntegrityError), conn.begin_nested():  # one result per run/row/contestant/repeat
        conn.execute(sa.insert(s.eval_results).values(run_id="r1", row_index=0, contestant=0, repeat_index=0,
                                                      status="ok", output="again", created_at=T0))


def seed_v8(conn: sa.Connection) -> None:
    conn.execute(sa.update(s.messages).where(s.messages.c.id == "m3").values(
        details={"logprobs": [["pane", -0.1, [["pane", -0.1], ["page", -2.5]]]], "chosen": True}))


def check_v8(conn: sa.Connection) -> None:
    details = dict(conn.execute(sa.select(s.messages.c.id, s.messages.c.details)).all())
    assert details["m1"] is None and details["m3"]["chosen"] is True
    assert details["m3"]["logprobs"][0][2][1] == ["page", -2.5]


def seed_v9(conn: sa.Connection) -> None:
    conn.execute(sa.update(s.messages).where(s.messages.c.id == "m2").values(hidden=True))


def check_v9(conn: sa.Connection) -> None:
    hidden = dict(conn.execute(sa.select(s.messages.c.id, s.messages.c.hidden)).all())
    assert hidden["m2"] is True and not any(v for k, v in hidden.items() if k != "m2")  # old rows are shown


def seed_v10(conn: sa.Connection) -> None:
    conn.execute(sa.update(s.demos).where(s.demos.c.id == "d1").values(share_token="demo-tok"))


def check_v10(conn: sa.Connection) -> None:
    tokens = dict(conn.execute(sa.select(s.demos.c.id, s.demos.c.share_token)).all())
    assert tokens == {"d1": "demo-tok"}  # the demo of version 6 is kept, with no link until one is made
    with pytest.raises(sa.exc.IntegrityError), conn.begin_nested():  # a token leads to one demo only
        conn.execute(sa.insert(s.demos).values(id="d2", code="XYZ789", owner="bob", title="Demo", settings={},
                                               created_at=T0, share_token="demo-tok"))


SEEDS: dict[int, tuple[Callable, Callable]] = {1: (seed_v1, check_v1), 2: (seed_v2, check_v2),
                                               3: (seed_v3, check_v3), 4: (seed_v4, check_v4),
                                               5: (seed_v5, check_v5), 6: (seed_v6, check_v6),
                                               7: (seed_v7, check_v7), 8: (seed_v8, check_v8),
                                               9: (seed_v9, check_v9), 10: (seed_v10, check_v10)}


def test_migrations_are_numbered_one_to_latest_and_all_seeded() -> None:
    assert [n for n, _, _ in MIGRATIONS] == list(range(1, LATEST + 1))
    assert sorted(SEEDS) == list(range(1, LATEST + 1))


@pytest.mark.parametrize("target", range(1, LATEST + 1))
def test_migration_from_the_version_before(db_url: str, target: int) -> None:
    engine = make_engine(db_url)
    try:
        assert migrate(engine, 0) == 0
        for version in range(1, target):  # each version's data written while it was the latest
            assert migrate(engine, version) == version
            with engine.begin() as conn:
                SEEDS[version][0](conn)
        with engine.begin() as conn:
            assert current_version(conn) == target - 1
        assert migrate(engine, target) == target
        with engine.begin() as conn:
            assert current_version(conn) == target
            for version in range(1, target):
                SEEDS[version][1](conn)
            SEEDS[target][0](conn)  # what the new version writes works too
            SEEDS[target][1](conn)
    finally:
        engine.dispose()


def test_old_data_through_the_store_after_upgrading(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        migrate(engine, 1)
        with engine.begin() as conn:
            seed_v1(conn)
    finally:
        engine.dispose()
    store = open_store(db_url)
    try:
        conv = store.get_conversation("c1", owner="alice")
        assert (conv.title, conv.kind, conv.settings, conv.created_at) == ("Old chat", "chat", {"model": "m1"}, T0)
        assert [m.text for m in store.messages("c1")] == ["Old question", "Old answ"]
        assert store.mark_interrupted() == 1
        assert store.messages("c1")[1].status == "interrupted"
        assert store.add_message("c1", "user", "new one") and store.messages("c1")[-1].seq == 3
        assert store.conversation_for_share(store.create_share("c1", "alice")).id == "c1"
        store.set_price("m1", 1, 2)
        assert store.get_prices() == {"m1": (1.0, 2.0)}
    finally:
        store.close()


def test_migrated_schema_matches_schema_py(db_url: str) -> None:
    store = open_store(db_url)
    try:
        inspector = sa.inspect(store.engine)
        assert set(inspector.get_table_names()) == set(s.metadata.tables)
        for name, table in s.metadata.tables.items():
            assert {c["name"] for c in inspector.get_columns(name)} == {c.name for c in table.columns}, name
    finally:
        store.close()


def test_opening_again_is_a_no_op(db_url: str) -> None:
    first = open_store(db_url)
    cid = first.create_conversation("alice", "kept")
    first.close()
    second = open_store(db_url)
    try:
        assert second.get_conversation(cid).title == "kept"
        with second.engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT COUNT(*), MAX(version) FROM schema_version").one() == (1, LATEST)
    finally:
        second.close()


def test_replicas_starting_together_migrate_once(db_url: str) -> None:
    errors: list[BaseException] = []
    stores = []
    barrier = threading.Barrier(6)

    def start() -> None:
        try:
            barrier.wait()
            stores.append(open_store(db_url))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert errors == []
        assert len(stores) == 6
        cid = stores[0].create_conversation("alice")
        assert stores[5].get_conversation(cid) is not None
        with stores[1].engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT COUNT(*), MAX(version) FROM schema_version").one() == (1, LATEST)
    finally:
        for st in stores:
            st.close()


def test_database_from_a_newer_app_is_refused(db_url: str) -> None:
    open_store(db_url).close()
    engine = make_engine(db_url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE schema_version SET version = :v"), {"v": LATEST + 1})
    engine.dispose()
    with pytest.raises(SchemaTooNew) as info:
        open_store(db_url)
    assert "newer version" in info.value.user_message
