"""The prompt library in the store (SQLite and PostgreSQL): versions, diffs, sharing, soft delete,
export and import."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import sqlalchemy as sa

from egp_core.prompts import PromptContent, PromptInvalid, diff, ref_label
from egp_core.store import ImportFailed, NotFound
from egp_core.store import schema as s
from egp_core.store.prompt_exchange import export_prompts_json, import_prompts_json
from egp_core.store.prompts import PromptLibrary

SUMMARISE = PromptContent(name="Summarise", template="Summarise {{text}} in {{words|50}} words.",
                          description="Short summaries", system_prompt="You are {{tone|concise}}.")


@pytest.fixture
def lib(store) -> PromptLibrary:
    return PromptLibrary(store)


def test_every_save_is_a_new_version_and_old_versions_never_change(lib):
    v1 = lib.create("alice", SUMMARISE, note="first", tags=["Writing", "work", "writing"])
    assert (v1.version, v1.note, v1.name) == (1, "first", "Summarise")
    v2 = lib.save(v1.prompt_id, "alice", PromptContent(name="Summarise", template="Sum up {{text}}."), note="shorter")
    v3 = lib.save(v1.prompt_id, "alice", PromptContent(name="Summarise!", template="Sum up {{text}} briefly.",
                                                       model="gpt-4o", parameters={"temperature": 0.2}))
    assert (v2.version, v3.version) == (2, 3)
    assert [v.version for v in lib.versions(v1.prompt_id, "alice")] == [3, 2, 1]
    again = lib.version(v1.prompt_id, 1, "alice")
    assert again.content == SUMMARISE and again.note == "first" and again.created_at == v1.created_at
    assert lib.version(v1.prompt_id, 2, "alice").content.template == "Sum up {{text}}."
    prompt = lib.get(v1.prompt_id, "alice")
    assert (prompt.name, prompt.latest.version, prompt.tags) == ("Summarise!", 3, ["writing", "work"])
    assert prompt.latest.content.parameters == {"temperature": 0.2}
    assert ref_label(v3.ref()) == "from prompt 'Summarise!' v3"
    # saving the same content again keeps nothing new
    assert lib.save(v1.prompt_id, "alice", v3.content) is None
    assert lib.get(v1.prompt_id, "alice").latest.version == 3


def test_the_store_offers_no_way_to_change_a_version(lib, store):
    v1 = lib.create("alice", SUMMARISE)
    lib.save(v1.prompt_id, "alice", SUMMARISE.__class__(name="B", template="b"))
    assert not any(name.startswith(("update_version", "edit_version", "set_version")) for name in dir(lib))
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(s.prompt_versions.c.version, s.prompt_versions.c.name)
                            .order_by(s.prompt_versions.c.version)).all()
    assert [tuple(r) for r in rows] == [(1, "Summarise"), (2, "B")]


def test_restore_saves_an_old_version_as_the_newest(lib):
    v1 = lib.create("alice", SUMMARISE)
    lib.save(v1.prompt_id, "alice", PromptContent(name="Summarise", template="Other {{x}}"))
    v3 = lib.restore(v1.prompt_id, "alice", 1)
    assert (v3.version, v3.content, v3.note) == (3, SUMMARISE, "Restored from v1")
    assert lib.restore(v1.prompt_id, "alice", 3) is None  # already the newest
    with pytest.raises(NotFound):
        lib.restore(v1.prompt_id, "alice", 9)


def test_malformed_or_empty_content_is_refused_with_a_plain_message(lib):
    with pytest.raises(PromptInvalid, match="Give the prompt a name"):
        lib.create("alice", PromptContent(name="  ", template="x"))
    with pytest.raises(PromptInvalid, match="Write the user message"):
        lib.create("alice", PromptContent(name="n", template=" \n"))
    with pytest.raises(PromptInvalid, match=r"In the user message: The template \{\{first name\}\} has a space"):
        lib.create("alice", PromptContent(name="n", template="Hi {{first name}}"))
    with pytest.raises(PromptInvalid, match="In the system prompt: .*never closed"):
        lib.create("alice", PromptContent(name="n", template="x", system_prompt="{{oops"))
    assert lib.list("alice") == []


def test_diff_of_two_versions_side_by_side(lib):
    v1 = lib.create("alice", PromptContent(name="Mail", template="Dear {{name}},\nThanks.\nBye", system_prompt="Polite"))
    v2 = lib.save(v1.prompt_id, "alice", PromptContent(name="Mail", template="Dear {{name}},\nThank you!\nBye\nP.S.",
                                                       system_prompt="Polite", parameters={"max_tokens": 64}))
    fields = diff(v1, v2)
    assert [f.label for f in fields] == ["User message", "Parameters"]
    rows = [(r.left, r.right, r.change) for r in fields[0].rows]
    assert rows == [("Dear {{name}},", "Dear {{name}},", "same"), ("Thanks.", "Thank you!", "changed"),
                    ("Bye", "Bye", "same"), ("", "P.S.", "added")]
    assert [(r.left, r.right, r.change) for r in fields[1].rows] == [("", "max_tokens: 64", "added")]
    assert [(r.left, r.change) for r in diff(v2, v1)[0].rows][-1] == ("P.S.", "removed")
    assert diff(v1, v1) == []


def test_list_search_and_tags(lib):
    a = lib.create("alice", SUMMARISE, tags=["writing"])
    b = lib.create("alice", PromptContent(name="Translate", template="Translate {{text}} into {{language}}"),
                   tags=["Languages", "work"])
    lib.create("bob", PromptContent(name="Bob's secret", template="x"))
    assert [p.name for p in lib.list("alice")] == ["Translate", "Summarise"]
    assert [p.id for p in lib.list("alice", query="SUMMAR")] == [a.prompt_id]
    assert [p.id for p in lib.list("alice", query="into language")] == [b.prompt_id]
    assert [p.id for p in lib.list("alice", query="languages")] == [b.prompt_id]  # tags are searched too
    assert [p.id for p in lib.list("alice", query="concise")] == [a.prompt_id]  # and the system prompt
    assert [p.id for p in lib.list("alice", tag="work")] == [b.prompt_id]
    assert lib.list("alice", query="100%_") == []
    assert lib.tags("alice") == ["languages", "work", "writing"]
    assert lib.set_tags(a.prompt_id, "alice", "Writing, short ,") == ["writing", "short"]
    assert lib.get(a.prompt_id, "alice").tags == ["writing", "short"]


def test_prompts_are_private_until_shared_with_the_team_and_only_the_owner_changes_them(lib):
    v1 = lib.create("alice@x.org", SUMMARISE)
    assert lib.get(v1.prompt_id, "bob@x.org") is None
    assert lib.list("bob@x.org") == [] and lib.versions(v1.prompt_id, "bob@x.org") == []
    assert lib.version(v1.prompt_id, 1, "bob@x.org") is None
    with pytest.raises(NotFound):
        lib.set_team(v1.prompt_id, "bob@x.org", True)
    lib.set_team(v1.prompt_id, "alice@x.org", True)
    assert lib.get(v1.prompt_id, "bob@x.org").team is True
    assert [p.id for p in lib.list("bob@x.org")] == [v1.prompt_id]
    assert lib.version(v1.prompt_id, 1, "bob@x.org").content == SUMMARISE
    for change in (lambda: lib.save(v1.prompt_id, "bob@x.org", PromptContent(name="x", template="y")),
                   lambda: lib.restore(v1.prompt_id, "bob@x.org", 1),
                   lambda: lib.set_tags(v1.prompt_id, "bob@x.org", ["x"]),
                   lambda: lib.create_share(v1.prompt_id, "bob@x.org")):
        with pytest.raises(NotFound):
            change()
    assert lib.delete(v1.prompt_id, "bob@x.org") is False
    lib.set_team(v1.prompt_id, "alice@x.org", False)
    assert lib.get(v1.prompt_id, "bob@x.org") is None


def test_a_share_link_opens_the_prompt_read_only_until_revoked(lib):
    v1 = lib.create("alice", SUMMARISE)
    lib.save(v1.prompt_id, "alice", PromptContent(name="Summarise", template="v2 {{text}}"))
    token = lib.create_share(v1.prompt_id, "alice")
    assert lib.create_share(v1.prompt_id, "alice") == token and len(token) >= 30
    shared = lib.for_share(token)
    assert shared.id == v1.prompt_id and [v.version for v in shared.versions] == [2, 1]
    assert lib.for_share("nope") is None and lib.for_share("") is None
    lib.delete_share(v1.prompt_id, "alice")
    assert lib.for_share(token) is None


def test_delete_is_soft_can_be_undone_and_is_purged_later(lib, store):
    v1 = lib.create("alice", SUMMARISE)
    token = lib.create_share(v1.prompt_id, "alice")
    assert lib.delete(v1.prompt_id, "alice") is True
    assert lib.get(v1.prompt_id, "alice") is None and lib.list("alice") == [] and lib.for_share(token) is None
    with pytest.raises(NotFound):
        lib.save(v1.prompt_id, "alice", PromptContent(name="x", template="y"))
    assert [p.id for p in lib.deleted("alice")] == [v1.prompt_id] and lib.deleted("bob") == []
    assert lib.undelete(v1.prompt_id, "bob") is False
    assert lib.undelete(v1.prompt_id, "alice") is True
    assert lib.get(v1.prompt_id, "alice").latest.content == SUMMARISE
    assert lib.for_share(token).id == v1.prompt_id
    lib.delete(v1.prompt_id, "alice")
    assert lib.purge_deleted() == 0  # kept for a while
    assert lib.purge_deleted(older_than=timedelta(seconds=-1)) == 1
    assert lib.deleted("alice") == [] and lib.undelete(v1.prompt_id, "alice") is False
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(s.prompt_versions)).scalar() == 0


def test_export_then_import_keeps_every_version(lib):
    v1 = lib.create("alice", SUMMARISE, note="one", tags=["writing"])
    lib.save(v1.prompt_id, "alice", PromptContent(name="Summarise", template="Two {{text}}", model="m",
                                                  parameters={"temperature": 0.3}), note="two")
    exported = export_prompts_json(lib, lib.list("alice"))
    doc = json.loads(exported)
    assert doc["format"] == "egp-playground-prompts" and [v["version"] for v in doc["prompts"][0]["versions"]] == [1, 2]
    assert import_prompts_json(lib, exported.encode(), "bob") == 1
    [copy] = lib.list("bob")
    assert copy.id != v1.prompt_id and copy.tags == ["writing"] and copy.team is False
    versions = lib.versions(copy.id, "bob")
    assert [(v.version, v.note) for v in versions] == [(2, "two"), (1, "one")]
    assert [v.content for v in versions] == [v.content for v in lib.versions(v1.prompt_id, "alice")]
    assert versions[-1].created_at == v1.created_at


@pytest.mark.parametrize(("data", "says"), [
    (b"", "The file is empty."),
    (b"\xff\xfe\x00", "not a text file"),
    (b'{"format": "egp-playground-prompts", "version": 1, "prompts": [', "cut off"),
    (b"[1, 2]", "not a prompt export"),
    (b'{"format": "egp-playground", "version": 1, "conversations": []}', "holds conversations, not prompts"),
    (b'{"format": "egp-playground-prompts", "version": 7, "prompts": []}', "newer version"),
    (b'{"format": "egp-playground-prompts", "version": 1, "prompts": [{"name": "a", "versions": []}]}',
     "damaged or of the wrong type"),
    (b'{"format": "egp-playground-prompts", "version": 1, "prompts": [{"name": "a", "versions": '
     b'[{"version": 1, "name": "a", "template": 5}]}]}', "damaged or of the wrong type"),
])
def test_a_broken_file_imports_nothing_and_says_why(lib, data, says):
    lib.create("bob", SUMMARISE)
    with pytest.raises(ImportFailed) as caught:
        import_prompts_json(lib, data, "bob")
    assert says in caught.value.user_message and caught.value.user_message.endswith("Nothing was imported.")
    assert len(lib.list("bob")) == 1


def test_an_import_with_one_bad_prompt_writes_none_of_them(lib):
    good = {"name": "ok", "versions": [{"version": 1, "name": "ok", "template": "fine {{x}}"}]}
    bad = {"name": "bad", "versions": [{"version": 1, "name": "bad", "template": "ok"},
                                       {"version": 2, "name": "bad", "template": "broken {{x"}]}
    twice = {"name": "twice", "versions": [{"version": 1, "name": "t", "template": "a"},
                                           {"version": 1, "name": "t", "template": "b"}]}
    for second, says in ((bad, "Prompt 2 ('bad'), version 2: In the user message: The template has a {{ that is "
                               "never closed"), (twice, "same version number twice")):
        data = json.dumps({"format": "egp-playground-prompts", "version": 1, "prompts": [good, second]})
        with pytest.raises(ImportFailed) as caught:
            import_prompts_json(lib, data, "bob")
        assert says in caught.value.user_message
        assert lib.list("bob") == []


def test_the_markdown_export_of_a_chat_names_the_prompt_version_of_each_answer(lib, store):
    from egp_core.store import export_conversation_markdown

    v3 = lib.create("alice", SUMMARISE).ref() | {"version": 3}
    cid = store.create_conversation("alice", "From a prompt")
    store.add_message(cid, "user", "Summarise this", parameters={"prompt": v3})
    store.add_message(cid, "assistant", "Done.", model="m", parameters={"prompt": v3})
    text = export_conversation_markdown(store, cid)
    assert text.count("from prompt 'Summarise' v3") == 2
