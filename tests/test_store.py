"""The history store on both backends: a SQLite file and a real PostgreSQL server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from egp_core.store import NotFound, Store, StoreError, open_store
from egp_core.store import schema as s
from egp_core.store.redact import is_secret_key


def _age_message(store: Store, message_id: str, seconds: float) -> None:
    with store.engine.begin() as conn:
        conn.execute(sa.update(s.messages).where(s.messages.c.id == message_id)
                     .values(updated_at=datetime.now(UTC) - timedelta(seconds=seconds)))


def test_conversation_crud(store: Store) -> None:
    cid = store.create_conversation("alice", "  First   chat ", {"model": "m1"}, kind="compare")
    conv = store.get_conversation(cid)
    assert conv is not None
    assert (conv.id, conv.owner, conv.title, conv.settings, conv.kind) == (cid, "alice", "First chat",
                                                                          {"model": "m1"}, "compare")
    assert conv.created_at.tzinfo is not None and conv.created_at.utcoffset() == timedelta(0)
    assert abs(conv.created_at - datetime.now(UTC)) < timedelta(minutes=5)
    assert store.get_conversation(cid, owner="alice") is not None
    assert store.get_conversation(cid, owner="bob") is None
    assert store.get_conversation("nope") is None

    assert store.rename_conversation(cid, "Renamed", "bob") is False
    assert store.rename_conversation(cid, "Renamed", "alice") is True
    assert store.get_conversation(cid).title == "Renamed"
    assert store.rename_conversation(cid, "   ", "alice") is True
    assert store.get_conversation(cid).title == "New chat"

    assert store.update_settings(cid, {"model": "m2", "parameters": {"max_tokens": 9}}) is True
    assert store.get_conversation(cid).settings == {"model": "m2", "parameters": {"max_tokens": 9}}
    assert store.update_settings("missing", {}) is False

    default = store.get_conversation(store.create_conversation("alice"))
    assert (default.title, default.settings, default.kind) == ("New chat", {}, "chat")


def test_delete_conversation_removes_messages_and_share(store: Store) -> None:
    cid = store.create_conversation("alice", "To delete")
    mid = store.add_message(cid, "user", "hello")
    token = store.create_share(cid, "alice")
    keep = store.create_conversation("alice", "Keep")
    store.add_message(keep, "user", "stay")

    assert store.delete_conversation(cid, "bob") is False
    assert store.get_conversation(cid) is not None
    assert store.delete_conversation(cid, "alice") is True
    assert store.get_conversation(cid) is None
    assert store.get_message(mid) is None
    assert store.messages(cid) == []
    assert store.conversation_for_share(token) is None
    assert store.delete_conversation(cid, "alice") is False
    assert [m.text for m in store.messages(keep)] == ["stay"]


def test_messages_in_order_with_all_fields(store: Store) -> None:
    cid = store.create_conversation("alice")
    ids = [store.add_message(cid, "system", "be brief")]
    ids.append(store.add_message(cid, "user", "question"))
    ids.append(store.add_message(
        cid, "assistant", "answer", model="m1", parameters={"temperature": 0.5, "max_tokens": 20},
        usage={"prompt": 3, "completion": 4, "total": 7},
        metrics={"time_to_first_token": 0.25, "total_time": 1.5, "tokens_per_second": 2.7},
        error=None, pane=1, finish_reason="stop"))
    msgs = store.messages(cid)
    assert [m.id for m in msgs] == ids
    assert [m.seq for m in msgs] == [1, 2, 3]
    assert [m.role for m in msgs] == ["system", "user", "assistant"]
    a = msgs[2]
    assert (a.text, a.status, a.model, a.pane, a.finish_reason) == ("answer", "complete", "m1", 1, "stop")
    assert a.parameters == {"temperature": 0.5, "max_tokens": 20}
    assert a.usage == {"prompt": 3, "completion": 4, "total": 7}
    assert a.metrics == {"time_to_first_token": 0.25, "total_time": 1.5, "tokens_per_second": 2.7}
    assert a.created_at.tzinfo is not None
    assert store.get_message(ids[1]).text == "question"
    assert store.get_message("missing") is None


def test_add_message_validates(store: Store) -> None:
    cid = store.create_conversation("alice")
    with pytest.raises(NotFound):
        store.add_message("missing", "user", "x")
    with pytest.raises(ValueError):
        store.add_message(cid, "robot", "x")
    with pytest.raises(ValueError):
        store.add_message(cid, "user", "x", status="done")
    with pytest.raises(ValueError):  # a comparison has panes A to D
        store.add_message(cid, "assistant", "x", pane=4)
    assert store.messages(cid) == []


def test_update_message_touches_message_and_conversation(store: Store) -> None:
    cid = store.create_conversation("alice")
    store.add_message(cid, "user", "q")
    mid = store.add_message(cid, "assistant", "", status="streaming", model="m1")
    before_msg = store.get_message(mid)
    before_conv = store.get_conversation(cid)

    assert store.update_message(mid, text="partial") is True
    mid_way = store.get_message(mid)
    assert (mid_way.text, mid_way.status) == ("partial", "streaming")
    assert mid_way.updated_at > before_msg.updated_at

    assert store.update_message(mid, text="partial answer", status="error", error="The server failed.",
                                usage={"prompt": 2, "completion": 2, "total": 4},
                                metrics={"time_to_first_token": 0.1}, finish_reason="length") is True
    done = store.get_message(mid)
    assert (done.text, done.status, done.error, done.finish_reason) == (
        "partial answer", "error", "The server failed.", "length")
    assert done.usage == {"prompt": 2, "completion": 2, "total": 4}
    assert done.model == "m1"
    assert done.created_at == before_msg.created_at
    assert store.get_conversation(cid).updated_at > before_conv.updated_at
    assert store.update_message("missing", text="x") is False
    with pytest.raises(ValueError):
        store.update_message(mid, status="finished")


def test_appending_sends_only_the_new_text(store: Store) -> None:
    cid = store.create_conversation("alice")
    mid = store.add_message(cid, "assistant", "", status="streaming")
    for piece in ("Hel", "lo, ", "wörld \u0000", "日本"):
        assert store.update_message(mid, append_text=piece, status="streaming")
    assert store.get_message(mid).text == "Hello, wörld 日本"
    assert store.update_message(mid, append_text="")  # nothing new: only alive
    assert store.get_message(mid).text == "Hello, wörld 日本"
    with pytest.raises(ValueError):
        store.update_message(mid, text="a", append_text="b")


def test_saved_errors_hold_no_key(store: Store) -> None:
    cid = store.create_conversation("alice")
    echoed = '{"kind": "ServerError", "detail": "x-api-key: sk-abcdefghijklmnop12345 | Authorization: Bearer tok12345678"}'
    a = store.add_message(cid, "assistant", "", status="error", error=echoed)
    b = store.add_message(cid, "assistant", "", status="streaming")
    store.update_message(b, status="error", error=echoed)
    for mid in (a, b):
        saved = store.get_message(mid).error
        assert "sk-abcdefghijklmnop12345" not in saved and "tok12345678" not in saved and "x-api-key" in saved


def test_delete_messages_from(store: Store) -> None:
    cid = store.create_conversation("alice")
    other = store.create_conversation("alice")
    other_id = store.add_message(other, "user", "elsewhere")
    ids = [store.add_message(cid, role, f"m{i}") for i, role in enumerate(["user", "assistant"] * 3)]
    assert store.delete_messages_from(cid, ids[2]) == 4
    assert [m.text for m in store.messages(cid)] == ["m0", "m1"]
    assert store.delete_messages_from(cid, other_id) == 0
    assert store.delete_messages_from(cid, "missing") == 0
    assert [m.text for m in store.messages(other)] == ["elsewhere"]
    # New messages continue after the remaining ones.
    new = store.add_message(cid, "user", "again")
    assert [m.id for m in store.messages(cid)][-1] == new
    assert store.get_message(new).seq == 3


def test_list_newest_updated_first_and_per_owner(store: Store) -> None:
    a = store.create_conversation("alice", "A")
    b = store.create_conversation("alice", "B")
    c = store.create_conversation("alice", "C")
    store.create_conversation("bob", "Bob's")
    assert [x.id for x in store.list_conversations("alice")] == [c, b, a]
    store.add_message(a, "user", "bump")
    assert [x.id for x in store.list_conversations("alice")] == [a, c, b]
    assert [x.id for x in store.list_conversations("alice", limit=2)] == [a, c]
    assert [x.title for x in store.list_conversations("bob")] == ["Bob's"]
    assert store.list_conversations("carol") == []


def test_list_filters_by_kind_in_the_query_and_pages_through_the_rest(store: Store) -> None:
    """60 comparisons newer than every chat must not push the chats out of a page of 50."""
    chats = [store.create_conversation("alice", f"chat {i}") for i in range(3)]
    for i in range(60):
        store.create_conversation("alice", f"compare {i}", kind="compare")
    assert {c.id for c in store.list_conversations("alice", limit=50, kind="chat")} == set(chats)
    assert len(store.list_conversations("alice", limit=50, kind="compare")) == 50
    pages = [store.list_conversations("alice", limit=25, kind="compare", offset=o) for o in (0, 25, 50)]
    assert [len(p) for p in pages] == [25, 25, 10]
    ids = [c.id for p in pages for c in p]
    assert len(set(ids)) == 60  # every one once, none skipped
    assert all(c.kind == "compare" for p in pages for c in p)
    assert store.list_conversations("alice", kind="chat", offset=3) == []


def test_search_titles_and_messages(store: Store) -> None:
    pasta = store.create_conversation("alice", "Dinner ideas")
    store.add_message(pasta, "user", "How long do I boil Spaghetti?")
    store.add_message(pasta, "assistant", "About 9 minutes, al dente.")
    physics = store.create_conversation("alice", "Quantum physics")
    store.add_message(physics, "user", "Explain ÉNERGIE and 100% efficiency_ratio")
    store.create_conversation("bob", "spaghetti for bob")

    def found(q: str) -> set[str]:
        return {c.id for c in store.list_conversations("alice", q)}

    assert found("spaghetti") == {pasta}          # message text, other case
    assert found("DINNER") == {pasta}             # title
    assert found("quantum") == {physics}
    assert found("al dente") == {pasta}           # several words, each must match
    assert found("dinner quantum") == set()
    assert found("énergie") == {physics}          # case folding beyond ASCII
    assert found("100%") == {physics}             # LIKE wildcards are literal
    assert found("%") == {physics}
    assert found("én_rgie") == set()              # "_" is literal, not any character
    assert found("y_ratio") == {physics}
    assert found("nothing-like-this") == set()
    assert found("") == {pasta, physics}
    assert found("   ") == {pasta, physics}


def test_mark_interrupted_leaves_fresh_streams(store: Store) -> None:
    cid = store.create_conversation("alice")
    old = store.add_message(cid, "assistant", "half an ans", status="streaming")
    fresh = store.add_message(cid, "assistant", "still going", status="streaming")
    done = store.add_message(cid, "assistant", "done")
    old_done = store.add_message(cid, "assistant", "old but complete")
    _age_message(store, old, 120)
    _age_message(store, old_done, 120)

    assert store.mark_interrupted(stale_after_seconds=30) == 1
    assert store.get_message(old).status == "interrupted"
    assert store.get_message(old).text == "half an ans"
    assert store.get_message(fresh).status == "streaming"
    assert store.get_message(done).status == "complete"
    assert store.get_message(old_done).status == "complete"
    assert store.mark_interrupted(stale_after_seconds=30) == 0


def test_share_links(store: Store) -> None:
    cid = store.create_conversation("alice", "Shared")
    store.add_message(cid, "user", "hi")
    with pytest.raises(NotFound):
        store.create_share(cid, "bob")
    with pytest.raises(NotFound):
        store.create_share("missing", "alice")
    token = store.create_share(cid, "alice")
    assert len(token) >= 32
    assert store.create_share(cid, "alice") == token
    assert store.share_token(cid, "alice") == token
    other = store.create_conversation("alice", "Other")
    assert store.create_share(other, "alice") != token

    shared = store.conversation_for_share(token)
    assert shared is not None and (shared.id, shared.title) == (cid, "Shared")
    assert store.conversation_for_share("wrong-token") is None
    assert store.conversation_for_share("") is None

    assert store.delete_share(cid, "alice") is True
    assert store.conversation_for_share(token) is None
    assert store.create_share(cid, "alice") != token


def test_votes_and_leaderboard(store: Store) -> None:
    assert store.leaderboard() == []
    cid = store.create_conversation("alice", kind="compare")
    store.add_vote(cid, "m1", ["m1", "m2"], "alice")
    store.add_vote(cid, "m1", ["m1", "m3"], "alice")
    store.add_vote(None, "m2", ["m1", "m2", "m3"], "bob")
    with pytest.raises(ValueError):
        store.add_vote(cid, "m9", ["m1", "m2"], "alice")
    board = {e["model"]: (e["wins"], e["votes"]) for e in store.leaderboard()}
    assert board == {"m1": (2, 3), "m2": (1, 2), "m3": (0, 2)}
    assert [e["model"] for e in store.leaderboard()] == ["m1", "m2", "m3"]
    assert store.leaderboard()[0]["win_rate"] == pytest.approx(2 / 3)
    assert {e["model"]: (e["wins"], e["votes"]) for e in store.leaderboard("bob")} == {
        "m1": (0, 1), "m2": (1, 1), "m3": (0, 1)}
    assert store.leaderboard("carol") == []
    # Votes stay when the conversation is deleted.
    store.delete_conversation(cid, "alice")
    assert {e["model"]: e["votes"] for e in store.leaderboard()}["m1"] == 3


def test_prices(store: Store) -> None:
    assert store.get_prices() == {}
    store.set_price("gpt-4o", 0.0025, 0.01)
    store.set_price("local", 0, 0)
    assert store.get_prices() == {"gpt-4o": (0.0025, 0.01), "local": (0.0, 0.0)}
    store.set_price("gpt-4o", 0.005, 0.015)
    assert store.get_prices()["gpt-4o"] == (0.005, 0.015)
    with pytest.raises(ValueError):
        store.set_price("x", -1, 0)
    assert store.delete_price("gpt-4o") is True
    assert store.delete_price("gpt-4o") is False
    assert store.get_prices() == {"local": (0.0, 0.0)}


SECRET = "sk-SECRET-1234567890abcdef"


def test_api_keys_are_never_stored(store: Store) -> None:
    settings = {
        "model": "m1",
        "api_key": SECRET,
        "connection": {"kind": "egp", "EGP_API_KEY": SECRET, "client_secret": SECRET, "account_id": "acc",
                       "headers": {"Authorization": f"Bearer {SECRET}", "x-api-key": SECRET}},
        "access_token": SECRET,
        "parameters": {"max_tokens": 16, "temperature": 0.2},
        "history": [{"token": SECRET, "password": SECRET}],
    }
    cid = store.create_conversation("alice", "Keys", settings)
    mid = store.add_message(cid, "assistant", "ok", parameters={"max_tokens": 16, "apiKey": SECRET},
                            usage={"prompt": 1, "completion": 2, "total": 3, "prompt_tokens": 1})
    store.update_settings(cid, {**settings, "model": "m2"})
    store.update_message(mid, usage={"prompt": 1, "completion": 2, "total": 3, "secret": SECRET})

    conv = store.get_conversation(cid)
    assert conv.settings == {"model": "m2", "connection": {"kind": "egp", "account_id": "acc", "headers": {}},
                             "parameters": {"max_tokens": 16, "temperature": 0.2}, "history": [{}]}
    msg = store.get_message(mid)
    assert msg.parameters == {"max_tokens": 16}
    assert msg.usage == {"prompt": 1, "completion": 2, "total": 3}
    assert SECRET not in dump_database(store)


@pytest.mark.parametrize("name", ["api_key", "EGP_API_KEY", "apiKey", "x-api-key", "client_secret", "token",
                                  "access_token", "accessToken", "refresh-token", "Authorization", "password"])
def test_secret_names(name: str) -> None:
    assert is_secret_key(name)


@pytest.mark.parametrize("name", ["max_tokens", "prompt_tokens", "completion_tokens", "total_tokens",
                                  "time_to_first_token", "timeToFirstToken", "tokens_per_second", "prompt",
                                  "completion", "total", "model", "temperature", "account_id", "url"])
def test_not_secret_names(name: str) -> None:
    assert not is_secret_key(name)


def dump_database(store: Store) -> str:
    """Every value of every table, as one string."""
    parts = []
    with store.engine.connect() as conn:
        for table in sa.inspect(conn).get_table_names():
            for row in conn.execute(sa.text(f'SELECT * FROM "{table}"')):
                parts.append(repr(tuple(row)))
    return "\n".join(parts)


def test_open_store_default_is_sqlite_file_in_data_dir(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("EGP_PLAYGROUND_DB_URL", raising=False)
    monkeypatch.setenv("EGP_PLAYGROUND_DATA", str(tmp_path / "data"))
    st = open_store()
    try:
        assert st.dialect == "sqlite"
        cid = st.create_conversation("me", "persisted")
        with st.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 1000
    finally:
        st.close()
    assert (tmp_path / "data" / "history.db").is_file()
    again = open_store()
    try:
        assert again.get_conversation(cid).title == "persisted"
    finally:
        again.close()


def test_open_store_url_from_environment(tmp_path, monkeypatch, postgres_database: str) -> None:
    monkeypatch.setenv("EGP_PLAYGROUND_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("EGP_PLAYGROUND_DB_URL", postgres_database)
    st = open_store()
    try:
        assert st.dialect == "postgresql"
        assert st.create_conversation("me")
    finally:
        st.close()
    assert not (tmp_path / "data" / "history.db").exists()


def test_open_failures_are_explained_without_the_password(tmp_path) -> None:
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    for url in (f"postgresql+psycopg://user:hunter2-pw@127.0.0.1:{port}/history",
                "nonsense://somewhere",
                f"sqlite:///{not_a_dir}/history.db"):
        with pytest.raises(StoreError) as info:
            open_store(url)
        err = info.value
        assert "Could not open the conversation history database" in err.user_message
        assert err.detail
        assert "hunter2-pw" not in err.user_message + err.detail + str(err)


def test_nul_characters_are_dropped_not_fatal(store: Store) -> None:
    cid = store.create_conversation("alice", "ti\x00tle", {"note": "a\x00b"})
    mid = store.add_message(cid, "assistant", "par\x00tial", status="streaming", error="e\x00", model="m\x00")
    assert store.update_message(mid, text="full\x00 answer", status="complete", metrics={"x\x00": "y\x00"})
    msg = store.get_message(mid)
    assert (msg.text, msg.error, msg.model, msg.metrics) == ("full answer", "e", "m", {"x": "y"})
    conv = store.get_conversation(cid)
    assert (conv.title, conv.settings) == ("title", {"note": "ab"})


def test_plain_postgres_urls_use_psycopg(postgres_database: str) -> None:
    for scheme in ("postgresql://", "postgres://"):
        st = open_store(postgres_database.replace("postgresql+psycopg://", scheme))
        try:
            assert st.engine.url.drivername == "postgresql+psycopg"
            assert st.create_conversation("me")
        finally:
            st.close()
