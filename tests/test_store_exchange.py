"""Export (Markdown, JSON) and import: round trips, and refused files that write nothing."""

from __future__ import annotations

import json
import time

import pytest
import sqlalchemy as sa

from egp_core.store import (
    MAX_IMPORT_BYTES,
    ImportFailed,
    NotFound,
    Store,
    export_all_json,
    export_conversation_json,
    export_conversation_markdown,
    import_json,
    open_store,
)
from tests.test_store import SECRET, dump_database


def _fill(store: Store, owner: str = "alice") -> list[str]:
    a = store.create_conversation(owner, "Pasta ✓ — «quotes» \"and\" # hashes", {"model": "m1", "temperature": 0.3})
    store.add_message(a, "system", "Be brief.")
    store.add_message(a, "user", "How long to boil spaghetti?\n\nWith `code` and 日本語.")
    store.add_message(a, "assistant", "About 9 minutes.", model="m1", parameters={"max_tokens": 32},
                      usage={"prompt": 12, "completion": 5, "total": 17},
                      metrics={"time_to_first_token": 0.2, "total_time": 0.9, "tokens_per_second": 5.5},
                      finish_reason="stop")
    store.add_message(a, "user", "And rice?")
    store.add_message(a, "assistant", "About", status="stopped", model="m1")
    b = store.create_conversation(owner, "Compare", kind="compare")
    store.add_message(b, "user", "Say hi")
    store.add_message(b, "assistant", "hi", model="m1", pane=0)
    store.add_message(b, "assistant", "", model="m2", pane=1, status="error", error="The server failed.")
    store.add_message(b, "assistant", "Hel", model="m3", pane=2, status="interrupted")
    return [a, b]


def _comparable(store: Store, conversation_id: str) -> tuple:
    conv = store.get_conversation(conversation_id)
    msgs = tuple((m.seq, m.role, m.text, m.status, m.model, m.parameters, m.usage, m.metrics, m.error,
                  m.finish_reason, m.pane, m.created_at) for m in store.messages(conversation_id))
    return (conv.title, conv.kind, conv.settings, conv.created_at, conv.updated_at, msgs)


def test_export_all_and_import_round_trip(store: Store, tmp_path) -> None:
    ids = _fill(store)
    store.create_conversation("bob", "Bob's own")
    exported = export_all_json(store, "alice")
    doc = json.loads(exported)
    assert (doc["format"], doc["version"]) == ("egp-playground", 1)
    assert [c["title"] for c in doc["conversations"]] == ["Compare", store.get_conversation(ids[0]).title]
    assert "owner" not in exported and "Bob's own" not in exported

    # Into another owner of the same store: new ids, same content.
    assert import_json(store, exported, "carol") == 2
    carol = store.list_conversations("carol")
    assert {c.id for c in carol}.isdisjoint(ids)
    originals = sorted(_comparable(store, i) for i in ids)
    copies = sorted(_comparable(store, c.id) for c in carol)
    assert copies == originals
    assert len(store.list_conversations("alice")) == 2

    # Into a fresh database (bytes in, as from an upload).
    other = open_store(f"sqlite:///{tmp_path / 'other.db'}")
    try:
        assert import_json(other, exported.encode("utf-8"), "alice") == 2
        assert sorted(_comparable(other, c.id) for c in other.list_conversations("alice")) == originals
        # Imported copies are searchable like any other conversation.
        assert len(other.list_conversations("alice", "spaghetti")) == 1
    finally:
        other.close()


def test_export_one_conversation_json_is_importable(store: Store) -> None:
    a, b = _fill(store)
    exported = export_conversation_json(store, b)
    assert [c["title"] for c in json.loads(exported)["conversations"]] == ["Compare"]
    assert import_json(store, exported, "alice") == 1
    titles = [c.title for c in store.list_conversations("alice")]
    assert titles.count("Compare") == 2
    with pytest.raises(NotFound):
        export_conversation_json(store, "missing")
    with pytest.raises(NotFound):
        export_conversation_json(store, a, owner="bob")


def test_import_turns_streaming_into_interrupted(store: Store) -> None:
    cid = store.create_conversation("alice")
    store.add_message(cid, "assistant", "half", status="streaming")
    exported = export_conversation_json(store, cid)
    store.delete_conversation(cid, "alice")
    assert import_json(store, exported, "alice") == 1
    (conv,) = store.list_conversations("alice")
    assert [m.status for m in store.messages(conv.id)] == ["interrupted"]


def test_markdown_export(store: Store) -> None:
    a, b = _fill(store)
    md = export_conversation_markdown(store, a)
    assert md.startswith("# Pasta ✓")
    assert "## You\n\nHow long to boil spaghetti?\n\nWith `code` and 日本語." in md
    assert "## Assistant (m1)\n\nAbout 9 minutes." in md
    assert "12 prompt + 5 completion tokens" in md
    assert "stopped before the end" in md
    assert md.index("Be brief.") < md.index("How long") < md.index("And rice?")
    md_b = export_conversation_markdown(store, b)
    assert "## Assistant (m2) · pane 2" in md_b
    assert "error: The server failed." in md_b
    assert "interrupted" in md_b
    with pytest.raises(NotFound):
        export_conversation_markdown(store, a, owner="bob")


def test_exports_and_imports_contain_no_api_key(store: Store) -> None:
    cid = store.create_conversation("alice", "Keys", {"model": "m1", "api_key": SECRET,
                                                      "connection": {"egp_api_key": SECRET, "url": "http://x"}})
    store.add_message(cid, "assistant", "ok", parameters={"max_tokens": 4, "api_key": SECRET})
    for text in (export_all_json(store, "alice"), export_conversation_json(store, cid),
                 export_conversation_markdown(store, cid)):
        assert SECRET not in text
    # A hand-made file carrying keys: imported without them.
    doc = {"format": "egp-playground", "version": 1, "conversations": [{
        "title": "From a file", "settings": {"model": "m", "apiKey": SECRET, "headers": {"Authorization": SECRET}},
        "messages": [{"role": "user", "text": "hi", "parameters": {"secret_token": SECRET, "max_tokens": 3}}]}]}
    assert import_json(store, json.dumps(doc), "alice") == 1
    imported = store.list_conversations("alice", "from a file")[0]
    assert imported.settings == {"model": "m", "headers": {}}
    assert store.messages(imported.id)[0].parameters == {"max_tokens": 3}
    assert SECRET not in dump_database(store)


def test_import_drops_nul_characters(store: Store) -> None:
    doc = {"format": "egp-playground", "version": 1, "conversations": [{
        "title": "nul\u0000title", "messages": [{"role": "user", "text": "a\u0000b", "usage": {"k\u0000": "v"}}]}]}
    assert import_json(store, json.dumps(doc), "alice") == 1
    (conv,) = store.list_conversations("alice")
    assert conv.title == "nultitle"
    (msg,) = store.messages(conv.id)
    assert (msg.text, msg.usage) == ("ab", {"k": "v"})


def _good_export(store: Store) -> str:
    _fill(store, owner="source")
    return export_all_json(store, "source")


CHATGPT_EXPORT = json.dumps([{
    "title": "Chat", "create_time": 1700000000.0, "update_time": 1700000001.0, "current_node": "b",
    "mapping": {"a": {"id": "a", "message": {"author": {"role": "user"}, "content": {"parts": ["hi"]}},
                      "parent": None, "children": ["b"]}},
}])


def _bad_files(good: str) -> dict[str, tuple[bytes | str, str]]:
    doc = json.loads(good)
    wrong_text = json.loads(good)
    wrong_text["conversations"][1]["messages"][0]["text"] = 42  # the first conversation is fine
    wrong_role = json.loads(good)
    wrong_role["conversations"][0]["messages"][0]["role"] = "robot"
    not_list = json.loads(good)
    not_list["conversations"][0]["messages"] = {"0": "hi"}
    no_title = json.loads(good)
    del no_title["conversations"][0]["title"]
    newer = dict(doc, version=2)
    fifth_pane = json.loads(good)
    fifth_pane["conversations"][0]["messages"][0]["pane"] = 4  # the compare view has letters A to D only
    huge = ('{"format": "egp-playground", "version": 1, "conversations": [{"title": "big", "messages": '
            '[{"role": "user", "text": "' + "a" * (MAX_IMPORT_BYTES + 10) + '"}]}]}')
    return {
        "malformed": ("{this is not json", "not valid JSON"),
        "truncated": (good[: len(good) // 2], "cut off"),
        "truncated at a boundary": (good[: good.index('"messages"')], "cut off"),
        "truncated in a string": (good[: good.index('"title": "') + 11], "cut off"),
        "truncated in a word": (json.dumps(dict(doc, flag=False))[:-4], "cut off"),  # ends in `"flag": fal`
        "empty": (b"", "empty"),
        "binary": (b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe", "not a text file"),
        "huge": (huge, "too large"),
        "chatgpt": (CHATGPT_EXPORT, "ChatGPT"),
        "other json": (json.dumps({"hello": "world"}), "not exported from EGP Playground"),
        "json list": (json.dumps([1, 2, 3]), "not exported from EGP Playground"),
        "newer version": (json.dumps(newer), "newer version"),
        "wrong text type": (json.dumps(wrong_text), "wrong type"),
        "wrong role": (json.dumps(wrong_role), "wrong type"),
        "messages not a list": (json.dumps(not_list), "wrong type"),
        "missing title": (json.dumps(no_title), "wrong type"),
        "string version": (json.dumps(dict(doc, version="1")), "wrong type"),
        "nan": (good.replace('"total_time": 0.9', '"total_time": NaN'), "not valid JSON"),
        "pane out of range": (json.dumps(fifth_pane), "at most 4 panes"),
    }


BAD_CASES = [
    "malformed", "truncated", "truncated at a boundary", "truncated in a string", "truncated in a word", "empty", "binary", "huge", "chatgpt", "other json",
    "json list", "newer version", "wrong text type", "wrong role", "messages not a list", "missing title",
    "string version", "nan", "pane out of range",
]


@pytest.mark.parametrize("case", BAD_CASES)
def test_refused_imports_write_nothing(store: Store, case: str) -> None:
    good = _good_export(store)
    data, expected = _bad_files(good)[case]
    before = dump_database(store)
    with pytest.raises(ImportFailed) as info:
        import_json(store, data, "alice")
    message = info.value.user_message
    assert expected.lower() in message.lower(), message
    assert "Nothing was imported" in message
    assert dump_database(store) == before
    assert store.list_conversations("alice") == []
    # The same store still imports a good file afterwards.
    assert import_json(store, good, "alice") == 2


def test_every_bad_file_is_tested() -> None:
    minimal = json.dumps({"format": "egp-playground", "version": 1, "conversations": [
        {"title": "a", "messages": [{"role": "user", "text": "x"}]},
        {"title": "b", "messages": [{"role": "user", "text": "y"}]}]})
    assert set(_bad_files(minimal)) == set(BAD_CASES)


def test_markdown_export_shows_the_system_prompt_each_answer_used(store: Store) -> None:
    conv = store.create_conversation("alice", "Pirates")
    store.add_message(conv, "user", "Hello")
    store.add_message(conv, "assistant", "Ahoy!", model="m", parameters={"system_prompt": "Talk like a pirate.\nBe brief."})
    store.add_message(conv, "user", "Again")
    store.add_message(conv, "assistant", "Ahoy again!", model="m", parameters={"system_prompt": "Talk like a pirate.\nBe brief."})
    store.add_message(conv, "user", "Now normally")
    store.add_message(conv, "assistant", "Hello.", model="m", parameters={})
    md = export_conversation_markdown(store, conv)
    assert md.count("## System prompt") == 2  # once where it starts, once where it ends
    assert "## System prompt\n\n> Talk like a pirate.\n> Be brief.\n\n## You\n\nHello" in md
    assert md.index("> Talk like a pirate.") < md.index("Hello") < md.index("_(none from here on)_") < md.index(
        "Now normally")


# ----- big imports: short batches, and still all or nothing -----------------------------------------


def _big_export(conversations: int = 4, messages: int = 100, boom_at: int | None = None) -> str:
    convs = []
    for c in range(conversations):
        msgs = [{"role": "user" if i % 2 == 0 else "assistant", "text": f"conversation {c} message {i}"}
                for i in range(messages)]
        convs.append({"title": f"Big {c}", "messages": msgs})
    if boom_at is not None:  # a row the database refuses, late in the file
        convs[boom_at // messages]["messages"][boom_at % messages]["text"] = "boom"
    return json.dumps({"format": "egp-playground", "version": 1, "conversations": convs})


def test_a_big_import_writes_in_short_transactions_and_shows_nothing_until_the_end(store: Store) -> None:
    """So a long import does not hold the write lock that live answers need for their heartbeats."""
    per_transaction: list[int] = []
    rows = [0]
    visible_while_writing: list[int] = []

    def after_execute(conn, clause, multiparams, params, options, result) -> None:
        if isinstance(clause, sa.sql.dml.Insert):
            rows[0] += len(multiparams) or 1  # the parameter sets of an executemany
            if clause.table.name == "messages":  # another session looks in the middle of the import
                visible_while_writing.append(len(store.list_conversations("alice")))

    def on_commit(conn) -> None:
        if rows[0]:
            per_transaction.append(rows[0])
        rows[0] = 0

    sa.event.listen(store.engine, "after_execute", after_execute)
    sa.event.listen(store.engine, "commit", on_commit)
    try:
        assert import_json(store, _big_export(), "alice", batch_rows=50) == 4
    finally:
        sa.event.remove(store.engine, "after_execute", after_execute)
        sa.event.remove(store.engine, "commit", on_commit)
    assert sum(per_transaction) == 4 + 400
    assert len(per_transaction) >= 9 and max(per_transaction) <= 50, per_transaction
    assert visible_while_writing and set(visible_while_writing) == {0}, "half an import was visible"
    found = store.list_conversations("alice")
    assert sorted(c.title for c in found) == ["Big 0", "Big 1", "Big 2", "Big 3"]
    assert all(len(store.messages(c.id)) == 100 for c in found)


REFUSE_BOOM = {
    "sqlite": ["CREATE TRIGGER refuse_boom BEFORE INSERT ON messages WHEN NEW.text = 'boom' "
               "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"],
    "postgresql": ["CREATE FUNCTION refuse_boom() RETURNS trigger AS $$ BEGIN IF NEW.text = 'boom' THEN "
                   "RAISE EXCEPTION 'refused by the test'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql",
                   "CREATE TRIGGER refuse_boom BEFORE INSERT ON messages FOR EACH ROW EXECUTE FUNCTION refuse_boom()"],
}


def test_a_batch_refused_late_in_a_big_import_leaves_nothing_behind(store: Store) -> None:
    store.create_conversation("alice", "Already here")
    with store.engine.begin() as conn:
        for statement in REFUSE_BOOM[store.dialect]:
            conn.exec_driver_sql(statement)
    before = dump_database(store)
    with pytest.raises(ImportFailed) as info:
        import_json(store, _big_export(boom_at=350), "alice", batch_rows=50)  # batch 8 of 9
    assert "Nothing was imported" in info.value.user_message and "refused by the test" in info.value.detail
    assert dump_database(store) == before  # not even invisible staged rows are left
    assert [c.title for c in store.list_conversations("alice")] == ["Already here"]


def test_rows_left_by_an_import_cut_off_by_a_crash_are_removed_later(store: Store) -> None:
    from egp_core.store.exchange import STAGING_OWNER, discard_unfinished_imports

    store.create_conversation("alice", "Mine")
    old = store.create_conversation(f"{STAGING_OWNER}1000:abc", "Half imported long ago")
    store.add_message(old, "user", "orphan")
    recent = store.create_conversation(f"{STAGING_OWNER}{int(time.time())}:def", "Being imported right now")
    assert discard_unfinished_imports(store) == 1
    assert store.get_conversation(old) is None and store.messages(old) == []
    assert store.get_conversation(recent) is not None  # another process may still be writing it
    assert [c.title for c in store.list_conversations("alice")] == ["Mine"]


def test_earlier_answer_versions_stay_hidden_through_export_and_import(store: Store) -> None:
    conv = store.create_conversation("alice", "Haiku")
    store.add_message(conv, "user", "A haiku, please")
    first = store.add_message(conv, "assistant", "First try", model="m1")
    store.add_message(conv, "assistant", "Second try", model="m1")
    store.set_hidden([first], True)  # Regenerate kept the first answer as version 1 of 2

    doc = json.loads(export_conversation_json(store, conv))
    assert [(m["text"], m["hidden"]) for m in doc["conversations"][0]["messages"]] == [
        ("A haiku, please", False), ("First try", True), ("Second try", False)]
    assert import_json(store, json.dumps(doc), "bob") == 1
    copy = store.list_conversations("bob")[0]
    assert [(m.text, m.hidden) for m in store.messages(copy.id)] == [
        ("A haiku, please", False), ("First try", True), ("Second try", False)]

    markdown = export_conversation_markdown(store, conv)  # a reader sees the answer on screen, once
    assert "Second try" in markdown and "First try" not in markdown
    older = dict(doc, conversations=[dict(doc["conversations"][0], messages=[
        {k: v for k, v in m.items() if k != "hidden"} for m in doc["conversations"][0]["messages"]])])
    assert import_json(store, json.dumps(older), "carol") == 1  # files from before the flag still import
    assert not any(m.hidden for m in store.messages(store.list_conversations("carol")[0].id))
