"""A conversation keeps its settings and shows who it is (AppTest + fake EGP server): the style,
parameters and system prompt an answer used come back when it is reopened or reloaded; the
title is on the page and follows an edited first question; rows are grouped by day and two
chats with the same title can be told apart."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from streamlit.testing.v1 import AppTest

from egp_core.store import open_store
from egp_core.store.exchange import import_json
from tests.plugins.apptest import APP, generation_bodies, markdown, send, start


def rows(at: AppTest) -> list[str]:
    return [b.label for b in at.sidebar.button if (b.key or "").startswith("open-")]


def click_key(at: AppTest, key: str) -> AppTest:
    at.button(key=key).click().run()
    assert not at.exception, at.exception
    return at


def test_reopening_a_conversation_brings_back_its_settings_and_system_prompt(app_env):
    app_env.reply(text="Yarr.")
    at = start()
    at.radio(key="preset").set_value("Creative").run()
    at.text_area(key="system_prompt").set_value("Answer like a pirate.").run()
    send(at, "Hello there")
    pirate = at.session_state["conversation_id"]
    assert any(e.label.startswith("System prompt: Answer like a pirate") for e in at.expander)  # at the top

    click_key(at, "new-chat")
    at.radio(key="preset").set_value("Precise").run()
    at.text_area(key="system_prompt").set_value("").run()
    send(at, "Plain question")
    assert "pirate" not in json.dumps(generation_bodies(app_env)[-1])

    click_key(at, f"open-{pirate}")
    assert at.radio(key="preset").value == "Creative"
    assert at.slider(key="temperature").value == 0.9
    assert at.text_area(key="system_prompt").value == "Answer like a pirate."
    send(at, "And again")
    assert "Answer like a pirate." in json.dumps(generation_bodies(app_env)[-1])

    reloaded = AppTest.from_file(APP, default_timeout=60)  # a reload: a new session, the URL only
    reloaded.query_params["c"] = pirate
    reloaded.run()
    assert not reloaded.exception, reloaded.exception
    assert reloaded.radio(key="preset").value == "Creative"
    assert reloaded.text_area(key="system_prompt").value == "Answer like a pirate."
    assert reloaded.subheader[0].value == "Hello there"  # the title on the page


def test_the_title_follows_an_edited_first_question(app_env):
    app_env.reply(text="Sure.")
    at = send(start(), "Write a haiku about snow")
    conv = at.session_state["conversation_id"]
    first = next(b for b in at.button if b.label == "Edit")
    first.click().run()
    at.text_area(key=next(t.key for t in at.text_area if (t.key or "").startswith("edit-text-"))).set_value(
        "Write a limerick about rain").run()
    at.button(key=next(b.key for b in at.button if (b.key or "").startswith("edit-send-"))).click().run()
    assert not at.exception, at.exception
    assert open_store().get_conversation(conv).title == "Write a limerick about rain"
    assert rows(at)[0].startswith("Write a limerick ab")
    assert at.subheader[0].value == "Write a limerick about rain"


def _dated(title: str, when: datetime) -> dict:
    stamp = when.isoformat()
    return {"title": title, "created_at": stamp, "updated_at": stamp,
            "messages": [{"role": "user", "text": title, "created_at": stamp, "updated_at": stamp}]}


def test_rows_are_grouped_by_day_one_line_each_and_same_titles_differ(app_env):
    app_env.reply(text="A haiku.")
    at = send(start(), "Write a haiku about autumn in the city, please, with falling leaves")
    click_key(at, "new-chat")
    send(at, "Write a haiku about autumn in the city, please, with falling leaves")
    now = datetime.now(UTC)
    doc = {"format": "egp-playground", "version": 1, "conversations": [
        _dated("From yesterday", now - timedelta(days=1)),
        _dated("From last week", now - timedelta(days=4)),
        _dated("From long ago", now - timedelta(days=40)),
    ]}
    import_json(open_store(), json.dumps(doc), "local")
    at.run()
    groups = [c.value for c in at.sidebar.caption if c.value in ("Today", "Yesterday", "Previous 7 days", "Older")]
    assert groups == ["Today", "Yesterday", "Previous 7 days", "Older"]
    labels = rows(at)
    haikus = [label for label in labels if label.startswith("Write a haiku")]
    assert len(haikus) == 2 and haikus[0] != haikus[1]  # told apart, not two identical rows
    assert all(len(label.split(" · ")[0]) <= 20 for label in haikus)  # cut to fit one line
    assert any(label.startswith("From long ago · ") for label in labels)


def test_a_title_is_shown_as_written_in_the_list(app_env):
    app_env.reply(text="24.")
    at = send(start(), "2*3*4 = ?")
    assert rows(at)[0].startswith("2\\*3\\*4 = ?")  # escaped: shown as typed, not as emphasis
    assert "24." in markdown(at)
