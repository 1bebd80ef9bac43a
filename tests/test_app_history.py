"""Conversations in the app (AppTest + fake EGP server): list, search, rename, delete,
import, share links, the URL, and who sees what in team mode."""

from __future__ import annotations

import json
import re

from streamlit.testing.v1 import AppTest

from egp_core.store import open_store
from egp_core.store.exchange import export_all_json
from tests.plugins.apptest import APP, markdown, send, start


def sidebar_buttons(at: AppTest) -> list[str]:
    return [b.label for b in at.sidebar.button]


def titles(at: AppTest) -> list[str]:
    """The conversation rows' whole titles (a row shows it cut, with the time; its tooltip whole)."""
    return [re.sub(r"\\(.)", r"\1", b.help) for b in at.sidebar.button if (b.key or "").startswith("open-")]


def open_menu(at: AppTest, conv: str | None = None) -> AppTest:
    """Open a row's menu (the open conversation's by default)."""
    at.session_state[f"menu-{conv or at.session_state['conversation_id']}"] = True
    at.run()
    assert not at.exception, at.exception
    return at


def share_link(at: AppTest) -> str:
    open_menu(at)
    click(at, "Share a read-only link", at.sidebar)
    return next(c.value for c in at.sidebar.code if "?share=" in c.value)


def click(at: AppTest, label: str, where=None) -> AppTest:
    buttons = (where or at).button
    at.button(key=next(b.key for b in buttons if b.label == label)).click().run()
    assert not at.exception, at.exception
    return at


def two_conversations(fake) -> AppTest:
    fake.reply(text="Apples are red or green.")
    at = send(start(), "Tell me about apples")
    click(at, "New chat", at.sidebar)
    fake.reply(text="Bananas are yellow and curved.")
    return send(at, "Tell me about bananas")


def test_conversations_are_listed_newest_first_and_searchable(app_env):
    at = two_conversations(app_env)
    assert titles(at) == ["Tell me about bananas", "Tell me about apples"]
    at.sidebar.text_input(key="history_search").set_value("curved").run()  # only in an answer
    assert titles(at) == ["Tell me about bananas"]
    at.sidebar.text_input(key="history_search").set_value("nothing like this").run()
    assert not titles(at)
    assert any("No conversations match" in c.value for c in at.sidebar.caption)


def test_opening_an_older_conversation_from_the_list(app_env):
    at = two_conversations(app_env)
    at.button(key=next(b.key for b in at.sidebar.button if b.label.startswith("Tell me about apples"))).click().run()
    assert "Apples are red or green." in markdown(at)
    assert "Bananas are yellow and curved." not in markdown(at)


def test_rename_and_delete_with_confirmation(app_env):
    at = two_conversations(app_env)
    conv = at.session_state["conversation_id"]
    open_menu(at)
    at.sidebar.text_input(key=f"rename-{conv}").set_value("Fruit facts").run()
    assert "Fruit facts" in titles(at)
    assert at.subheader[0].value == "Fruit facts"  # the open conversation's title, on the page
    click(open_menu(at), "Delete", at.sidebar)  # (AppTest closes a popover on each run; a browser keeps it open)
    assert any("Delete this conversation for good?" in w.value for w in at.sidebar.warning)
    assert open_store().get_conversation(conv) is not None  # nothing deleted yet
    click(open_menu(at, conv), "Yes, delete", at.sidebar)
    assert open_store().get_conversation(conv) is None
    assert "Fruit facts" not in titles(at)
    assert "Tell me about apples" in titles(at)
    assert at.title[0].value == "EGP Playground"  # back to an empty chat


def test_chats_stay_listed_after_many_comparisons_and_show_more_reaches_the_rest(app_env):
    store = open_store()
    try:
        old = [store.create_conversation("local", f"Old chat {i}") for i in range(60)]
        for i in range(55):  # newer than every chat: a list of 50 of any kind held no chat at all
            store.create_conversation("local", f"Comparison {i}", kind="compare")
    finally:
        store.close()
    at = start()
    listed = [t for t in titles(at) if t.startswith("Old chat")]
    assert len(listed) == 50 and not any(t.startswith("Comparison") for t in titles(at))
    click(at, "Show more", at.sidebar)
    listed = [t for t in titles(at) if t.startswith("Old chat")]
    assert sorted(listed) == sorted(f"Old chat {i}" for i in range(len(old)))
    assert "Show more" not in sidebar_buttons(at)  # nothing left to show


def totals(at: AppTest) -> str:
    return next(c.value for c in at.sidebar.caption if c.value.startswith("This session"))


def test_session_totals_count_only_answers_this_session_started(app_env):
    app_env.reply(text="Counted here.", usage={"prompt": 3, "completion": 2, "total": 5})
    at = send(start(), "First question")
    assert totals(at).startswith("This session: 1 answer · 5 tokens")
    conv = at.session_state["conversation_id"]
    token = share_link(at).split("?share=")[1].strip()
    # Another session opens the same conversation: its answer was not started there.
    again = AppTest.from_file(APP, default_timeout=60)
    again.query_params["c"] = conv
    again.run()
    assert "Counted here." in markdown(again)
    assert totals(again).startswith("This session: 0 answers · 0 tokens")
    # A share link neither.
    viewer = AppTest.from_file(APP, default_timeout=60)
    viewer.query_params["share"] = token
    viewer.run()
    assert "Counted here." in markdown(viewer)
    assert all(not c.value.startswith("This session") or "0 answers" in c.value
               for c in [*viewer.sidebar.caption, *viewer.caption])
    # The first session still counts its own answer once, also after opening the list again.
    at.button(key=f"open-{conv}").click().run()
    assert totals(at).startswith("This session: 1 answer · 5 tokens")


def test_renaming_to_a_title_with_spaces_around_it_ends(app_env):
    """The store keeps "Fruit facts" for "Fruit facts  "; the run must still end (it used to rename
    and rerun forever, because the input and the stored title never became equal)."""
    at = two_conversations(app_env)
    conv = at.session_state["conversation_id"]
    open_menu(at)
    at.sidebar.text_input(key=f"rename-{conv}").set_value("Fruit   facts  ").run(timeout=30)
    assert not at.exception, at.exception
    assert open_store().get_conversation(conv).title == "Fruit facts"
    assert "Fruit facts" in titles(at)
    at.run(timeout=30)  # an ordinary later run renames nothing
    assert not at.exception, at.exception
    open_menu(at)
    at.sidebar.text_input(key=f"rename-{conv}").set_value("   ").run(timeout=30)  # blank: ignored
    assert open_store().get_conversation(conv).title == "Fruit facts"


def test_a_broken_import_says_so_and_writes_nothing_and_a_good_one_imports(app_env, tmp_path):
    at = two_conversations(app_env)
    store = open_store()
    before = len(store.list_conversations("local"))
    good = export_all_json(store, "local")
    uploader = at.sidebar.file_uploader[0]
    uploader.set_value(("broken.json", good[: len(good) // 2].encode(), "application/json")).run()
    click(at, "Import", at.sidebar)
    errors = [e.value for e in at.sidebar.error]
    assert errors and "Nothing was imported" in errors[0]
    assert len(store.list_conversations("local")) == before
    at.sidebar.file_uploader[0].set_value(("good.json", good.encode(), "application/json")).run()
    click(at, "Import", at.sidebar)
    assert any("Imported 2 conversations" in s.value for s in at.sidebar.success)
    assert len(store.list_conversations("local")) == before + 2


def test_exports_are_offered_for_the_open_conversation_and_for_all(app_env):
    at = open_menu(two_conversations(app_env))
    labels = [b.label for b in at.sidebar.get("download_button")]
    assert {"Export as Markdown", "Export as JSON", "Export all conversations (JSON)"} <= set(labels)
    data = json.loads(export_all_json(open_store(), "local"))
    assert {c["title"] for c in data["conversations"]} == {"Tell me about apples", "Tell me about bananas"}


def test_a_share_link_shows_a_read_only_copy(app_env):
    at = two_conversations(app_env)
    link = share_link(at)
    assert link.startswith("http://") and "/?share=" in link  # a whole address, not just "?share=..."
    token = link.split("?share=")[1].strip()
    assert len(token) >= 24
    viewer = AppTest.from_file(APP, default_timeout=60)
    viewer.query_params["share"] = token
    viewer.run()
    assert not viewer.exception
    assert "Tell me about bananas" in markdown(viewer) and "Bananas are yellow and curved." in markdown(viewer)
    assert not viewer.chat_input and not [b for b in viewer.button if b.label in ("Edit", "Regenerate")]
    bad = AppTest.from_file(APP, default_timeout=60)
    bad.query_params["share"] = "not-a-real-token"
    bad.run()
    assert "not valid" in bad.error[0].value


def test_team_mode_each_person_sees_only_their_own(app_env):
    app_env.reply(text="Ann's answer.")
    ann = AppTest.from_file(APP, default_timeout=60)
    ann.user = {"is_logged_in": True, "email": "ann@example.com"}
    ann.run()
    send(ann, "Ann's private question")
    conv = ann.session_state["conversation_id"]
    assert open_store().get_conversation(conv).owner == "ann@example.com"

    bob = AppTest.from_file(APP, default_timeout=60)
    bob.user = {"is_logged_in": True, "email": "bob@example.com"}
    bob.query_params["c"] = conv  # even with the id, Bob cannot open it
    bob.run()
    assert not bob.exception
    assert "Ann's private question" not in markdown(bob)
    assert "Ann's private question" not in titles(bob)

    token = share_link(ann).split("?share=")[1].strip()
    bob2 = AppTest.from_file(APP, default_timeout=60)
    bob2.user = {"is_logged_in": True, "email": "bob@example.com"}
    bob2.query_params["share"] = token
    bob2.run()
    assert "Ann's private question" in markdown(bob2)


AUTH = {
    "redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "s" * 32,
    "client_id": "id", "client_secret": "secret",
    "server_metadata_url": "https://example.com/.well-known/openid-configuration",
}


def test_team_mode_asks_to_sign_in_but_share_links_still_open(app_env):
    app_env.reply(text="Shared answer.")
    at = send(start(), "Shared question")
    token = share_link(at).split("?share=")[1].strip()

    stranger = AppTest.from_file(APP, default_timeout=60)
    stranger.secrets["auth"] = AUTH
    stranger.user = {"is_logged_in": False}
    stranger.run()
    assert not stranger.exception
    assert [b.label for b in stranger.button] == ["Sign in"]
    assert not stranger.chat_input and "Shared question" not in markdown(stranger)

    reader = AppTest.from_file(APP, default_timeout=60)
    reader.secrets["auth"] = AUTH
    reader.user = {"is_logged_in": False}
    reader.query_params["share"] = token
    reader.run()
    assert "Shared question" in markdown(reader) and "Shared answer." in markdown(reader)
    assert not reader.chat_input
