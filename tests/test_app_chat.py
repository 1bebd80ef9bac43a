"""The chat page under Streamlit's AppTest, against the fake EGP server over real HTTP."""

from __future__ import annotations

import json

from streamlit.testing.v1 import AppTest

from egp_core.store import open_store
from tests.plugins.apptest import APP, SECRET, captions, generation_bodies, markdown, send, start


def test_a_prompt_streams_into_an_answer_with_a_receipt(app_env):
    app_env.reply(text="Paris is the capital of France.", usage={"prompt": 11, "completion": 7, "total": 18})
    at = send(start(), "What is the capital of France?")
    assert "What is the capital of France?" in markdown(at)
    assert "Paris is the capital of France." in markdown(at)
    receipt = next(c for c in at.caption if "tokens" in c.value and "fake-model" in c.value)
    assert receipt.value == "**fake-model** · 18 tokens · Finished"  # plain words, one line
    details = receipt.proto.help  # the technical part, one click away
    assert "11 prompt + 7 completion = 18 tokens" in details
    assert "first token after" in details and "tokens/s" in details
    assert any("This session: 1 answer · 18 tokens" in c for c in captions(at))
    body = generation_bodies(app_env)[-1]
    assert body["model"] == "fake-model" and body["prompt"] == "What is the capital of France?"
    assert body["stream"] is True


def test_the_url_names_the_conversation_and_reopens_it(app_env):
    app_env.reply(text="Kept answer.")
    at = send(start(), "Remember me")
    conv = at.query_params["c"][0] if isinstance(at.query_params["c"], list) else at.query_params["c"]
    again = AppTest.from_file(APP, default_timeout=60)
    again.query_params["c"] = conv
    again.run()
    assert "Remember me" in markdown(again) and "Kept answer." in markdown(again)


def test_an_error_shows_its_plain_message_detail_and_retry(app_env):
    app_env.fail(status=401, times=1)
    app_env.reply(text="Now it works.")
    at = send(start(), "Hello?")
    assert [e.value for e in at.error] == ["The API key was rejected. Check it in Settings."]
    assert any(x.label == "Technical detail" for x in at.expander)
    assert "Hello?" in markdown(at)  # the question is kept
    at.button(key=next(b.key for b in at.button if b.label == "Retry")).click().run()
    assert not at.exception
    assert not at.error
    assert "Now it works." in markdown(at)


def test_a_rate_limit_says_to_wait(app_env):
    app_env.fail(status=429, retry_after=0, times=5)
    at = send(start(), "Busy?")
    assert "too many requests" in at.error[0].value
    assert len(generation_bodies(app_env)) == 3  # the first try and two retries


def click(at: AppTest, label: str, nth: int = 0) -> AppTest:
    at.button(key=[b.key for b in at.button if b.label == label][nth]).click().run()
    assert not at.exception, at.exception
    return at


def test_regenerate_keeps_the_earlier_answers_as_versions(app_env):
    app_env.reply(text="First answer.")
    at = send(start(), "Tell me something")
    app_env.reply(text="Second answer.")
    click(at, "Regenerate")
    assert "Second answer." in markdown(at) and "First answer." not in markdown(at)
    assert "2/2" in captions(at)
    assert markdown(at).count("Tell me something") == 1
    click(at, "‹")
    assert "First answer." in markdown(at) and "Second answer." not in markdown(at)
    assert "1/2" in captions(at)
    # The answer on show is the one the next question builds on; the choice is saved.
    app_env.reply(text="Third.")
    send(at, "And then?")
    prompt = generation_bodies(app_env)[-1]["prompt"]
    assert "Assistant: First answer." in prompt and "Second answer." not in prompt
    again = AppTest.from_file(APP, default_timeout=60)
    again.query_params["c"] = at.query_params["c"][0] if isinstance(at.query_params["c"], list) else at.query_params["c"]
    again.run()
    assert "First answer." in markdown(again) and "1/2" in captions(again)


def test_edit_an_earlier_question_and_resend(app_env):
    app_env.reply(text="Answer one.")
    at = send(start(), "Question one")
    app_env.reply(text="Answer two.")
    at = send(at, "Question two")
    assert "Answer two." in markdown(at)
    edit_keys = [b.key for b in at.button if b.label == "Edit"]
    at.button(key=edit_keys[0]).click().run()
    # It says first what goes away.
    assert ("Sending replaces this question and its answer, and removes the 1 later question below and "
            "their answers.") in captions(at)
    at.text_area(key=next(t.key for t in at.text_area if t.label == "Edit your question")).set_value(
        "Question one, edited"
    ).run()
    app_env.reply(text="Answer to the edit.")
    at.button(key=next(b.key for b in at.button if b.label == "Send")).click().run()
    shown = markdown(at)
    assert "Question one, edited" in shown and "Answer to the edit." in shown
    assert "Question two" not in shown and "Answer two." not in shown and "Question one" not in shown
    assert generation_bodies(app_env)[-1]["prompt"] == "Question one, edited"


def test_multi_turn_sends_a_transcript(app_env):
    app_env.reply(text="Hi Ann.")
    at = send(start(), "My name is Ann.")
    app_env.reply(text="You are Ann.")
    send(at, "What is my name?")
    prompt = generation_bodies(app_env)[-1]["prompt"]
    assert "User: My name is Ann." in prompt and "Assistant: Hi Ann." in prompt
    assert prompt.rstrip().endswith("Assistant:")


def test_old_turns_are_left_out_when_the_context_is_full_and_the_page_says_so(app_env):
    app_env.models([{"model_name": "tiny-model", "context_length": 160}])
    app_env.reply(text="Short.")
    at = start()
    at.number_input(key="max_tokens").set_value(16).run()
    long_question = "Please consider this rather long question about many things. " * 3
    for i in range(3):
        at = send(at, f"{i}: {long_question}")
    notes = [i.value for i in at.info]
    assert any("earlier turn" in n and "left out" in n for n in notes), notes
    prompt = generation_bodies(app_env)[-1]["prompt"]
    assert "0: Please" not in prompt and "2: Please" in prompt


def test_html_in_an_answer_is_shown_as_text(app_env):
    app_env.reply(text="<script>alert(1)</script><b>bold</b>")
    at = send(start(), "Say HTML")
    answer = next(m for m in at.markdown if "<script>" in m.value)
    assert answer.proto.allow_html is False


def test_a_starter_prompt_can_be_clicked(app_env):
    app_env.reply(text="A haiku.")
    at = start()
    starters = [b for b in at.button if b.key and b.key.startswith("starter-")]
    assert len(starters) >= 3
    at.button(key=starters[1].key).click().run()
    assert "A haiku." in markdown(at)


def test_the_api_key_never_reaches_the_page_or_the_history(app_env, tmp_path):
    app_env.reply(text="Secretless.")
    at = send(start(), "Show me the code")
    at.session_state["chat-code-open"] = True  # open "View code"
    at.run()
    page = json.dumps([str(e.proto) for e in at.main] + [str(e.proto) for e in at.sidebar])
    assert SECRET not in page
    assert "EGP_API_KEY" in page  # the snippets read the key from the environment
    # ... and the request did carry it, so it was really configured
    assert app_env.requests[-1].headers.get("x-api-key") == SECRET
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path


def test_new_chat_and_the_history_list(app_env):
    app_env.reply(text="One.")
    at = send(start(), "First conversation")
    at.button(key=next(b.key for b in at.sidebar.button if b.label == "New chat")).click().run()
    assert "First conversation" not in markdown(at)
    assert any(b.label.startswith("First conversation · ") for b in at.sidebar.button)
    store = open_store()
    assert [c.title for c in store.list_conversations("local")] == ["First conversation"]


def test_a_dropped_stream_keeps_the_partial_answer_with_the_error_and_retry(app_env):
    app_env.reply(text="The first words arrive and then the line goes dead").drop_after(3)
    at = send(start(), "Tell me a long thing")
    shown = " ".join(markdown(at))
    assert "The first" in shown  # the partial answer is kept on the page
    assert "cut before the answer finished" in at.error[0].value
    assert any(b.label == "Retry" for b in at.button)


def test_an_oversized_prompt_gets_the_servers_reason(app_env):
    app_env.fail(status=400, body={"detail": "The prompt has 9000 tokens but the model fits 2048."})
    at = send(start(), "x" * 20_000)
    assert "9000 tokens but the model fits 2048" in at.error[0].value
    assert store_messages()[0].text == "x" * 20_000  # the question itself is kept


def store_messages():
    store = open_store()
    conv = store.list_conversations("local")[0]
    return store.messages(conv.id)


def test_chat_completions_send_the_turns_as_messages(app_env):
    app_env.reply(text="Bonjour Ann.")
    at = start()
    at.radio(key="api_style").set_value("chat").run()
    at.text_area(key="system_prompt").set_value("Answer in French.").run()
    at = send(at, "My name is Ann.")
    app_env.reply(text="Ann.")
    send(at, "What is my name?")
    last = [r for r in app_env.requests if r.path.endswith("completions")][-1]
    assert last.path == "/v4/chat-completions"
    assert last.body["messages"] == [
        {"role": "system", "content": "Answer in French."},
        {"role": "user", "content": "My name is Ann."},
        {"role": "assistant", "content": "Bonjour Ann."},
        {"role": "user", "content": "What is my name?"},
    ]
    assert "Ann." in markdown(at)


def test_choices_survive_a_visit_to_the_compare_page(app_env):
    at = start()
    at.slider(key="temperature").set_value(0.85).run()
    at.text_area(key="system_prompt").set_value("Be brief.").run()
    at.switch_page("views/compare.py").run()
    assert not at.exception, at.exception
    at.switch_page("views/chat.py").run()
    assert at.slider(key="temperature").value == 0.85
    assert at.text_area(key="system_prompt").value == "Be brief."


def test_an_unreachable_history_database_gets_a_plain_message(app_env, monkeypatch):
    monkeypatch.setenv("EGP_PLAYGROUND_DB_URL", "postgresql://someone:hunter2@127.0.0.1:1/history")
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    assert not at.exception
    assert "conversation history database" in at.error[0].value
    shown = " ".join(c.value for c in at.code)
    assert "hunter2" not in shown and "127.0.0.1:1" in shown


def test_presets_set_the_parameters_in_plain_words(app_env):
    app_env.reply(text="Precise answer.")
    at = start()
    at.radio(key="preset").set_value("Precise").run()
    assert at.slider(key="temperature").value == 0.1
    assert any("Focused and repeatable" in c.value for c in at.sidebar.caption)
    send(at, "Be precise")
    assert generation_bodies(app_env)[-1]["model_parameters"]["temperature"] == 0.1
    at.slider(key="temperature").set_value(0.35).run()
    assert at.radio(key="preset").value == "Custom"  # not "Precise" any more: the style says so
    assert any("Your own settings, from Advanced below." in c.value for c in at.sidebar.caption)
    send(at, "Again")
    assert generation_bodies(app_env)[-1]["model_parameters"]["temperature"] == 0.35


def test_questions_are_shown_as_typed_and_answers_keep_their_line_breaks(app_env):
    app_env.reply(text="Roses are red\nViolets are blue\n\n- one\n- two\n\n```\nx = 1\ny = 2\n```")
    at = send(start(), "2*3*4\n# My heading")
    assert [t.value for t in at.text] == ["2*3*4\n# My heading"]  # st.text: no Markdown at all
    assert not any("2*3*4" in m.value for m in at.markdown)
    answer = next(m.value for m in at.markdown if "Roses" in m.value)
    assert answer == "Roses are red  \nViolets are blue\n\n- one  \n- two\n\n```\nx = 1\ny = 2\n```"
    assert open_store().list_conversations("local")[0].title == "2*3*4 # My heading"


def copy_texts(at: AppTest) -> list[tuple[str, str]]:
    return [(json.loads(e.proto.json)["help"], json.loads(e.proto.json)["text"])
            for e in at.get("bidi_component") if e.proto.component_name == "egp_copy_button"]


def test_every_question_and_answer_has_a_copy_button_with_its_exact_text(app_env):
    app_env.reply(text="**Bold** answer\nwith a break.")
    at = send(start(), "First *question*")
    app_env.reply(text="Second.")
    at = send(at, "Second question")
    assert copy_texts(at) == [
        ("Copy the question", "First *question*"), ("Copy the answer (as Markdown)", "**Bold** answer\nwith a break."),
        ("Copy the question", "Second question"), ("Copy the answer (as Markdown)", "Second."),
    ]


def test_a_long_answer_is_drawn_in_the_blocks_of_the_live_view(app_env):
    from ui.text import blocks, keep_line_breaks

    text = "\n\n".join(f"Paragraph {i}: " + "words and more words " * 12 for i in range(40))
    app_env.reply(text=text)
    at = send(start(), "Write a lot")
    shown = [m.value for m in at.markdown if m.value.startswith("Paragraph")]
    assert len(shown) > 3
    assert shown == [keep_line_breaks(b).strip() for b in blocks(text)]  # st.markdown strips each


def test_view_code_shows_the_last_answer_of_the_open_conversation_after_a_reload(app_env):
    app_env.reply(text="Hi Ann.")
    at = start()
    at.text_area(key="system_prompt").set_value("Be brief.").run()
    at = send(at, "My name is Ann.")
    app_env.reply(text="Ann.")
    at = send(at, "What is my name?")
    sent = generation_bodies(app_env)[-1]
    conv = at.query_params["c"][0] if isinstance(at.query_params["c"], list) else at.query_params["c"]
    again = AppTest.from_file(APP, default_timeout=60)  # a reload: a new session, nothing in memory
    again.query_params["c"] = conv
    again.run()
    assert not again.code  # drawn only when opened
    again.session_state["chat-code-open"] = True
    again.run()
    snippet = next(c.value for c in again.code if c.value.startswith("curl"))
    body = json.loads(snippet.split("-d '", 1)[1].split("' \\\n", 1)[0])
    assert body["prompt"] == sent["prompt"] and "System: Be brief." in body["prompt"]
    assert body["model_parameters"] == sent["model_parameters"]
    assert app_env.base_url in snippet


def test_continue_carries_on_an_answer_cut_off_by_the_length_limit(app_env):
    app_env.reply(text="The first half", finish_reason="length", usage={"prompt": 5, "completion": 3, "total": 8})
    at = send(start(), "Tell me a long story")
    assert [b.label for b in at.button if b.label == "Continue"] == ["Continue"]
    app_env.reply(text=" and the end.", usage={"prompt": 12, "completion": 4, "total": 16})
    click(at, "Continue")
    prompt = generation_bodies(app_env)[-1]["prompt"]
    assert prompt == "User: Tell me a long story\n\nAssistant: The first half"  # the model carries on from there
    answer = [m for m in open_store().messages(open_store().list_conversations("local")[0].id) if m.role == "assistant"]
    assert len(answer) == 1 and answer[0].text == "The first half and the end."
    assert answer[0].finish_reason == "stop" and answer[0].usage == {"prompt": 17, "completion": 7, "total": 24}
    assert "The first half and the end." in markdown(at)
    assert not [b for b in at.button if b.label == "Continue"]  # finished now


def test_starter_prompts_cannot_be_clicked_while_no_model_answers(app_env):
    from tests.fake_egp import MODEL_PATHS

    app_env.fail(status=401, times=50, paths=list(MODEL_PATHS.values()))  # the workspace refuses the key
    at = start()
    starters = [b for b in at.button if b.key and b.key.startswith("starter-")]
    assert starters and all(b.disabled for b in starters)  # a click would send nowhere and be lost
    assert at.chat_input[0].disabled
