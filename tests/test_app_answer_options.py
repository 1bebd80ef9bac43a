"""Answer options on the chat page (AppTest, fake EGP over HTTP): candidates, seed, token
probabilities, JSON mode; and what the page says when the workspace's API can't do them."""

from __future__ import annotations

import json

import pytest

from egp_core.store import open_store
from tests.plugins.apptest import captions, generation_bodies, markdown, send, start


def v5_bodies(fake) -> list[dict]:
    return [r.body for r in fake.requests if r.path == "/v5/chat/completions"]


def candidate_tabs(at) -> list[str]:
    return [t.label for t in at.tabs if t.label.startswith("Candidate")]


def messages_of(tmp_path):
    store = open_store(None)
    conv = store.list_conversations("local")[0]
    return store.messages(conv.id)


def test_a_v5_workspace_is_spoken_to_in_v5_by_default(app_env):
    app_env.v5().reply(text="Hi from v5.")
    at = send(start(), "Hello")
    assert at.radio(key="api_style").value == "v5-chat"
    assert "Hi from v5." in markdown(at)
    assert v5_bodies(app_env)[-1]["messages"] == [{"role": "user", "content": "Hello"}]


def test_three_candidates_side_by_side_pick_one_to_continue(app_env, tmp_path):
    app_env.v5().reply(text="Idea")
    at = start()
    at.number_input(key="candidates").set_value(3).run()
    at.toggle(key="seed_on").set_value(True).run()
    at.number_input(key="seed").set_value(40).run()
    at = send(at, "Give me an idea")
    assert sorted(b["seed"] for b in v5_bodies(app_env)) == [40, 41, 42]  # one request per candidate
    assert candidate_tabs(at) == ["Candidate 1 ✓", "Candidate 2", "Candidate 3"]
    for seed in (40, 41, 42):
        assert f"Idea (seed {seed})" in markdown(at)
    stored = [m for m in messages_of(tmp_path) if m.role == "assistant"]
    assert [(m.pane, m.text, m.details["chosen"]) for m in stored] == [
        (0, "Idea (seed 40)", True), (1, "Idea (seed 41)", False), (2, "Idea (seed 42)", False)]
    pick = next(b for b in at.button if b.label == "Continue with this one" and b.key.startswith("pick-")
                and b.key.endswith(stored[2].id))
    pick.click().run()
    assert candidate_tabs(at) == ["Candidate 1", "Candidate 2", "Candidate 3 ✓"]
    at.number_input(key="candidates").set_value(1).run()
    send(at, "And another?")
    assert v5_bodies(app_env)[-1]["messages"][1] == {"role": "assistant", "content": "Idea (seed 42)"}


def test_a_pinned_seed_is_on_the_receipt_and_regenerate_repeats_the_answer(app_env):
    app_env.v5().reply(text="Seeded")
    at = start()
    at.toggle(key="seed_on").set_value(True).run()
    at.number_input(key="seed").set_value(7).run()
    at = send(at, "Say something")
    assert any("repeatable: seed 7" in c for c in captions(at))
    first = [m for m in markdown(at) if m.startswith("Seeded")]
    at.button(key=next(b.key for b in at.button if b.label == "Regenerate")).click().run()
    assert [m for m in markdown(at) if m.startswith("Seeded")] == first == ["Seeded (seed 7)"]
    assert [b["seed"] for b in v5_bodies(app_env)] == [7, 7]


def test_token_probabilities_are_kept_and_shown_with_alternatives(app_env, tmp_path):
    app_env.v5().reply(chunks=["Blue", " sky"])
    at = start()
    at.toggle(key="token_probabilities").set_value(True).run()
    at = send(at, "Colour?")
    body = v5_bodies(app_env)[-1]
    assert body["logprobs"] is True and body["top_logprobs"] == 5
    answer = next(m for m in messages_of(tmp_path) if m.role == "assistant")
    assert [t[0] for t in answer.details["logprobs"]] == ["Blue", " sky"]
    assert not [h for h in at.html if "token-probs" in h.value]
    at.toggle(key=f"probs-{answer.id}").set_value(True).run()
    html = next(h.value for h in at.html if "token-probs" in h.value)
    assert html.count('data-testid="token"') == 2
    assert "chosen: \u201cBlue\u201d 60%" in html and "\u201c maybe\u201d 30%" in html
    assert any("where the model was unsure" in c for c in captions(at))


def test_json_mode_with_fields_validates_and_pretty_prints(app_env):
    app_env.v5().reply(text='{"name": "Ada", "age": 36}')
    at = start()
    at.toggle(key="json_mode").set_value(True).run()
    at.radio(key="json_kind").set_value("fields").run()
    at.text_area(key="json_fields").set_value("name: string\nage: integer").run()
    at = send(at, "A person")
    fmt = v5_bodies(app_env)[-1]["response_format"]
    assert fmt["type"] == "json_schema"
    assert fmt["json_schema"]["schema"]["required"] == ["name", "age"]
    assert "Valid JSON, and it matches the schema." in captions(at)
    assert any(c.value == '{\n  "name": "Ada",\n  "age": 36\n}' for c in at.code)
    app_env.reply(text='{"name": "Ada"}')
    at = send(at, "Another")
    assert any("does not match the schema: at the top level, 'age' is a required property" in w.value
               for w in at.warning)
    app_env.reply(text='{"name": "Ad')
    at = send(at, "A third")
    assert any(w.value.startswith("This answer is not valid JSON") for w in at.warning)


def test_a_bad_schema_or_field_line_gets_a_plain_message(app_env):
    app_env.v5()
    at = start()
    at.toggle(key="json_mode").set_value(True).run()
    at.radio(key="json_kind").set_value("schema").run()
    at.text_area(key="json_schema").set_value('{"type": "object", ').run()
    assert any(e.value.startswith("The schema is not valid JSON") for e in at.sidebar.error)
    at.text_area(key="json_schema").set_value('{"type": 12}').run()
    assert any(e.value.startswith("The schema is not valid:") for e in at.sidebar.error)
    at.radio(key="json_kind").set_value("fields").run()
    at.text_area(key="json_fields").set_value("age: years").run()
    assert any("'years' is not a type here" in e.value for e in at.sidebar.error)
    assert not at.exception


def test_an_older_workspace_says_what_it_cannot_do(app_env):
    app_env.reply(text="Plain.")
    at = start()
    assert at.radio(key="api_style").value == "completions"
    notes = captions(at)
    assert "This workspace's completions API (v2) doesn't return token probabilities." in " ".join(notes)
    assert any("doesn't take a seed" in c for c in notes)
    assert not any(t.key in ("seed_on", "token_probabilities", "json_mode") for t in at.toggle)
    at.number_input(key="candidates").set_value(2).run()
    at = send(at, "Two please")
    bodies = generation_bodies(app_env)
    assert len(bodies) == 2 and all("n" not in b and "seed" not in b for b in bodies)
    assert candidate_tabs(at) == ["Candidate 1 ✓", "Candidate 2"]


def test_compare_panes_get_the_options_their_connection_takes(app_env):
    app_env.v5().reply(text="Pane answer")
    at = start()
    at.switch_page("views/compare.py").run()
    at.toggle(key="seed_on").set_value(True).run()
    at.chat_input(key="compare-input").set_value("Compare this").run()
    assert not at.exception, at.exception
    bodies = v5_bodies(app_env)
    assert len(bodies) == 2 and all(b["seed"] == 7 for b in bodies)
    assert sum("repeatable: seed 7" in c for c in captions(at)) == 2


@pytest.mark.model
def test_the_same_options_work_against_an_openai_compatible_server(fresh_app, local_server, tmp_path):
    """The local server's /v1 is an OpenAI-compatible server: connected as one, every option works."""
    local_server.wait_idle()
    fresh_app.setenv("EGP_PLAYGROUND_LOCAL", "0")
    fresh_app.setenv("OPENAI_BASE_URL", local_server.base_url + "/v1")
    at = start()
    assert at.radio(key="api_style").value == "chat"
    at.radio(key="preset").set_value("Precise").run()
    at.number_input(key="max_tokens").set_value(60).run()
    at.number_input(key="candidates").set_value(2).run()
    at.toggle(key="seed_on").set_value(True).run()
    at.toggle(key="token_probabilities").set_value(True).run()
    at.toggle(key="json_mode").set_value(True).run()
    at.radio(key="json_kind").set_value("fields").run()
    at.text_area(key="json_fields").set_value("name: string\ncolour: string").run()
    at = send(at, "Reply with a JSON object with keys name and colour for a cat.")
    assert candidate_tabs(at) == ["Candidate 1 ✓", "Candidate 2"]
    answers = [m for m in messages_of(tmp_path) if m.role == "assistant"]
    assert [(m.pane, m.parameters["seed"]) for m in answers] == [(0, 7), (1, 8)]
    assert all(m.details["logprobs"] and set(json.loads(m.text)) == {"name", "colour"} for m in answers)
    assert sum(c == "Valid JSON, and it matches the schema." for c in captions(at)) == 2
