"""The compare page under AppTest: several panes streaming at once over real HTTP.

Backends: fake EGP servers (each pane may have its own, added as session
connections), the real bundled model (`local_server`), and fakes that fail.
Concurrency is proven without timing: the fakes stall after a few tokens and
keep the stream open until the client leaves, so a pane can only have text
while the others' requests are also open if the panes really run at once.
AppTest cannot click while a script run is still watching the streams, so the
"Stop all" of these tests is what its callback does (cancel every running
Generation of the process); the browser test clicks the real button.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from egp_core.connections import Connection
from egp_core.store.exchange import export_conversation_markdown
from egp_core.voting import DemoDay
from tests.fake_egp import FakeEGP
from tests.plugins.apptest import APP, SECRET

COMPARE = "views/compare.py"
LOCAL_MODEL = "SmolLM2-135M-Instruct"


@pytest.fixture
def env(fresh_app):
    """A fresh app state; the env connection is set by each test."""
    fresh_app.setenv("EGP_API_KEY", SECRET)
    return fresh_app


@pytest.fixture
def fakes() -> Iterator[Callable[..., FakeEGP]]:
    """make(models, text) -> a running FakeEGP serving `models`, answering `text`."""
    started: list[FakeEGP] = []

    def make(models: list[str], text: str = "Hello", pace: float | None = None) -> FakeEGP:
        fake = FakeEGP().start()
        started.append(fake)
        return fake.models(models).reply(text=text, pace=pace)

    yield make
    for fake in started:
        fake.stop()


def session_connection(name: str, fake: FakeEGP) -> Connection:
    return Connection(id=f"session-{name.lower()}", name=name, kind="egp", base_url=fake.base_url,
                      api_key=SECRET, source="session")


def compare_page(connections: list[Connection] = (), panes: int = 3) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=90)
    at.session_state["session_connections"] = list(connections)
    at.run()
    at.switch_page(COMPARE).run()
    assert not at.exception, at.exception
    if panes != 2:
        at.segmented_control(key="compare_panes").set_value(panes).run()
    return at


def choose(at: AppTest, pane: int, connection_id: str, model: str | None = None) -> None:
    at.selectbox(key=f"pane{pane}-connection_id").set_value(connection_id).run()
    if model is not None:
        at.selectbox(key=f"pane{pane}-model").set_value(model).run()
    assert not at.exception, at.exception


def ask(at: AppTest, prompt: str) -> AppTest:
    at.chat_input(key="compare-input").set_value(prompt).run()
    assert not at.exception, at.exception
    return at


def click(at: AppTest, label: str) -> AppTest:
    at.button(key=next(b.key for b in at.button if b.label == label)).click().run()
    assert not at.exception, at.exception
    return at


def headers(at: AppTest) -> list[str]:
    return [s.value for s in at.main.subheader if s.value != "Leaderboard"]


def texts(at: AppTest) -> str:
    """Everything the main area shows as text (markdown, captions, alerts, code)."""
    found = []
    for kind in ("markdown", "caption", "subheader", "error", "warning", "info", "success", "code"):
        found += [str(e.value) for e in getattr(at.main, kind)]
    return "\n".join(found)


def saved():
    """The app's own store (one per process, as the page uses it): reading it opens nothing new."""
    from ui import services

    return services.store()


def answers(conv_id: str):
    return sorted((m for m in saved().messages(conv_id) if m.role == "assistant"), key=lambda m: m.pane)


def generation_requests(fake: FakeEGP) -> list:
    return [r for r in fake.requests if r.path.endswith("completions")]


def stop_all_when(condition: Callable[[], bool], patience: float = 60) -> dict:
    """In the background: once `condition()` holds, do what "Stop all" does (cancel every running
    answer). `result["held"]` says whether the condition was met (False: it gave up)."""
    from ui import services

    result = {"held": False}

    def run() -> None:
        deadline = time.monotonic() + patience
        while time.monotonic() < deadline:
            try:
                if condition():
                    result["held"] = True
                    break
            except Exception:  # the page may not have created everything yet
                pass
            time.sleep(0.05)
        for gen in services.registry().running():
            gen.cancel()

    threading.Thread(target=run, daemon=True).start()
    return result


# ----- concurrency, stop, and a failing pane ---------------------------------------------------


def test_three_panes_stream_at_once_a_failing_pane_does_not_stop_the_others_and_stop_all(env, fakes):
    one = fakes(["alpha"], "Alpha answers first and then keeps going for a while.").stall_after(3)
    two = fakes(["beta"], "Beta answers second and also keeps going for a while.").stall_after(3)
    broken = fakes(["gamma"]).fail(status=404, times=5)
    env.setenv("EGP_ENDPOINT_URL", one.base_url)
    conns = [session_connection("Two", two), session_connection("Broken", broken)]
    at = compare_page(conns)
    choose(at, 1, "session-two")
    choose(at, 2, "session-broken")
    from ui import services

    def all_at_once() -> bool:
        # Both stalled streams are open and have sent text, and the broken pane has already
        # failed: only possible when the three requests run at the same time.
        live = services.registry().running()
        conv = at.session_state["compare_run"]
        saved = {m.model: m for m in answers(conv)}
        return (len(live) == 2 and all(g.text for g in live)
                and saved["gamma"].status == "error" and one.streams_finished == two.streams_finished == 0)

    result = stop_all_when(all_at_once)
    ask(at, "Tell me everything")
    assert result["held"], "the panes did not run at the same time"

    # Stop closed both streams: the servers saw the clients leave.
    assert one.wait_disconnect(10) and two.wait_disconnect(10)
    assert len(generation_requests(one)) == len(generation_requests(two)) == 1
    saved = {m.model: m for m in answers(at.session_state["compare_run"])}
    assert saved["alpha"].status == saved["beta"].status == "stopped"
    assert saved["alpha"].text.startswith("Alpha answers") and saved["beta"].text.startswith("Beta answers")
    assert saved["gamma"].status == "error"

    assert headers(at) == ["A · alpha", "B · beta", "C · gamma"]
    shown = texts(at)
    assert saved["alpha"].text in shown and saved["beta"].text in shown
    assert shown.count("Stopped by you") == 2
    assert [e.value for e in at.main.error] == [
        "The model or address was not found. Pick another model or check the endpoint URL in Settings."
    ]
    assert not any(b.label == "Stop all" for b in at.button)  # nothing runs any more


def test_local_model_fake_server_and_a_failing_pane(env, fakes, local_server):
    local_server.wait_idle()
    env.setenv("EGP_ENDPOINT_URL", local_server.base_url)
    fake = fakes(["fake-model"], "The fake server says hello to the room.", pace=200)
    broken = fakes(["broken-model"]).fail(status=500, retry_after=0, times=5)
    at = compare_page([session_connection("Fake", fake), session_connection("Broken", broken)])
    at.number_input(key="pane0-max_tokens").set_value(8).run()
    choose(at, 1, "session-fake")
    choose(at, 2, "session-broken")
    ask(at, "Name a colour.")

    conv = at.session_state["compare_run"]
    local, faked, failed = answers(conv)
    assert (local.model, local.status, local.pane) == (LOCAL_MODEL, "complete", 0)
    assert local.text.strip() and local.usage["completion"] <= 8
    assert (faked.text, faked.status) == ("The fake server says hello to the room.", "complete")
    assert failed.status == "error"
    assert len(generation_requests(broken)) == 3  # the first try and two retries, then the error

    assert headers(at) == [f"A · {LOCAL_MODEL}", "B · fake-model", "C · broken-model"]
    shown = texts(at)
    assert local.text.strip()[:20] in shown and faked.text in shown
    receipts = [c.value for c in at.main.caption if "tokens" in c.value]
    details = [c.proto.help for c in at.main.caption if "tokens" in c.value]
    assert len(receipts) == 2  # the failed pane has its error instead
    usage = local.usage
    assert receipts[0].startswith(f"**{LOCAL_MODEL}** · {usage['total']} tokens")
    assert receipts[1].startswith("**fake-model**")
    assert "first token" in details[1] and "tokens/s" in details[1]
    assert f"{usage['prompt']} prompt + {usage['completion']} completion" in details[0]
    assert [e.value for e in at.main.error] == ["The server had a problem answering. Try again in a moment."]
    assert any(x.label == "Technical detail" for x in at.main.expander)
    # each pane sent its own request, with its own parameters
    body = generation_requests(fake)[0].body
    assert body["model"] == "fake-model" and body["prompt"] == "Name a colour." and body["stream"] is True


# ----- parameters and defaults --------------------------------------------------------------------


def test_panes_default_to_the_sidebar_and_send_their_own_parameters(env, fakes):
    fake = fakes(["fake-model", "fake-model-large"], "Same answer.")
    env.setenv("EGP_ENDPOINT_URL", fake.base_url)
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.selectbox(key="model").set_value("fake-model-large").run()
    at.slider(key="temperature").set_value(0.2).run()
    at.switch_page(COMPARE).run()
    assert [at.selectbox(key=f"pane{i}-model").value for i in range(2)] == ["fake-model-large"] * 2
    assert [at.slider(key=f"pane{i}-temperature").value for i in range(2)] == [0.2, 0.2]
    at.slider(key="pane1-temperature").set_value(0.9).run()
    at.number_input(key="pane1-max_tokens").set_value(77).run()
    at.selectbox(key="pane1-model").set_value("fake-model").run()
    ask(at, "Hi")
    bodies = sorted((r.body for r in generation_requests(fake)), key=lambda b: b["model"])
    assert [b["model"] for b in bodies] == ["fake-model", "fake-model-large"]
    assert bodies[0]["model_parameters"]["temperature"] == 0.9
    assert bodies[0]["model_parameters"]["max_tokens"] == 77
    assert bodies[1]["model_parameters"]["temperature"] == 0.2


def test_at_least_two_panes_need_a_model(env):
    with socket.socket() as s:  # a port where nothing listens: no model can be listed
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    env.setenv("EGP_ENDPOINT_URL", f"http://127.0.0.1:{closed}")
    at = compare_page(panes=2)
    ask(at, "Hi")
    assert "Pick a model in at least two panes first." in [e.value for e in at.main.error]
    assert at.session_state["compare_run"] is None


# ----- blind mode, votes, leaderboard -------------------------------------------------------------


def blind_comparison(env, fakes) -> tuple[AppTest, dict[str, str]]:
    """Three panes on three servers, blind; returns the page and {model: its answer}."""
    said = {"alpha": "Alpha thinks the sky is blue.", "beta": "Beta thinks the sky is grey.",
            "gamma": "Gamma thinks the sky is green."}
    servers = {name: fakes([name], text) for name, text in said.items()}
    env.setenv("EGP_ENDPOINT_URL", servers["alpha"].base_url)
    at = compare_page([session_connection("Beta", servers["beta"]), session_connection("Gamma", servers["gamma"])])
    choose(at, 1, "session-beta")
    choose(at, 2, "session-gamma")
    at.toggle(key="compare_blind").set_value(True).run()
    return ask(at, "What colour is the sky?"), said


def letters_of(at: AppTest, said: dict[str, str]) -> dict[str, str]:
    """{model: its letter}, found by the answer each blind pane shows."""
    found = {}
    for col in at.main.columns:
        md = [m.value for m in col.markdown]
        heads = [s.value for s in col.subheader]
        for model, answer in said.items():
            if answer in md and heads:
                found[model] = heads[0].removeprefix("Model ")
    return found


def test_blind_mode_hides_the_names_until_the_vote_then_reveals_them(env, fakes):
    at, said = blind_comparison(env, fakes)
    assert headers(at) == ["Model A", "Model B", "Model C"]
    shown = texts(at)
    for model, answer in said.items():
        assert answer in shown
        assert model not in shown  # not in headers, receipts, code or messages
    assert not any(x.label == "View code" for x in at.main.expander)
    assert not at.main.get("download_button")  # an export would give the names away
    assert "The model names are revealed after the vote." in shown
    receipts = [c.value for c in at.main.caption if "tokens" in c.value]
    assert [r.split(" · ")[0] for r in receipts] == ["**Model A**", "**Model B**", "**Model C**"]

    # Which letter got which model is the page's secret; find the letter of "beta" by its answer.
    letter_of = letters_of(at, said)
    assert sorted(letter_of.values()) == ["A", "B", "C"]
    click(at, f"{letter_of['beta']} is best")

    revealed = headers(at)
    assert sorted(revealed) == sorted(
        [f"{letter_of[m]} · {m}" + (" :material/trophy:" if m == "beta" else "") for m in said]
    )
    assert any("The room picked" in s.value and "beta" in s.value for s in at.main.success)
    assert not any(b.label.endswith(" is best") for b in at.button)
    assert sum(x.label == "View code" for x in at.main.expander) == 3
    assert len(at.main.get("download_button")) == 2
    board = at.table[0].value
    rows = {r["Contestant"]: (r["Wins"], r["Rounds"]) for r in board.to_dict("records")}
    assert rows == {"beta": (1, 1), "alpha": (0, 1), "gamma": (0, 1)}


def test_votes_and_the_reveal_persist_across_a_restart(env, fakes):
    at, said = blind_comparison(env, fakes)
    conv = at.session_state["compare_run"]
    click(at, next(b.label for b in at.button if b.label.endswith(" is best")))
    winner = next(r["Contestant"] for r in at.table[0].value.to_dict("records") if r["Wins"] == 1)

    # A restart: a new process state (caches cleared), a new session, the same data folder.
    st.cache_resource.clear()
    st.cache_data.clear()
    again = AppTest.from_file(APP, default_timeout=60)
    again.session_state["session_connections"] = at.session_state["session_connections"]
    again.run()
    again.switch_page(COMPARE).run()
    rows = {r["Contestant"]: (r["Wins"], r["Rounds"]) for r in again.table[0].value.to_dict("records")}
    assert rows[winner] == (1, 1) and sorted(rows) == sorted(said)
    # the comparison reopens from the list, revealed, and cannot be voted on twice
    click(again, next(b.label for b in again.sidebar.button if b.label == "What colour is the sky?"))
    assert again.query_params["cmp"] in (conv, [conv])
    assert not any(h.startswith("Model ") for h in headers(again))
    assert any(h.endswith(":material/trophy:") and winner in h for h in headers(again))
    assert not any(b.label.endswith(" is best") for b in again.button)
    assert sum(s.wins for s in DemoDay(saved()).leaderboard()) == 1


def test_a_vote_needs_two_answers(env, fakes):
    good = fakes(["alpha"], "Only I answered.")
    broken = fakes(["beta"]).fail(status=404, times=5)
    env.setenv("EGP_ENDPOINT_URL", good.base_url)
    at = compare_page([session_connection("Broken", broken)], panes=2)
    choose(at, 1, "session-broken")
    at.toggle(key="compare_blind").set_value(True).run()
    ask(at, "Anyone?")
    assert not any(b.label.endswith(" is best") for b in at.button)
    assert "A vote needs at least two answers" in texts(at)
    assert sorted(h.split(" · ")[1] for h in headers(at)) == ["alpha", "beta"]
    assert DemoDay(saved()).leaderboard() == []


# ----- history, export, code --------------------------------------------------------------------


def test_a_comparison_is_saved_exported_and_shows_each_request_as_code(env, fakes):
    one = fakes(["alpha"], "Answer from alpha.")
    two = fakes(["beta"], "Answer from beta.")
    env.setenv("EGP_ENDPOINT_URL", one.base_url)
    at = compare_page([session_connection("Two", two)], panes=2)
    choose(at, 1, "session-two")
    ask(at, 'Say "hi" in Français')
    conv_id = at.session_state["compare_run"]

    store = saved()
    conv = store.get_conversation(conv_id)
    assert conv.kind == "compare" and conv.title == 'Say "hi" in Français'
    assert [p["model"] for p in conv.settings["panes"]] == ["alpha", "beta"]
    assert [(m.pane, m.model, m.text) for m in answers(conv_id)] == [
        (0, "alpha", "Answer from alpha."), (1, "beta", "Answer from beta.")
    ]
    assert [c.id for c in store.list_conversations("local", kind="compare")] == [conv_id]
    assert not store.list_conversations("local", kind="chat")  # not mixed into the chat history

    labels = [d.label for d in at.main.get("download_button")]
    assert labels == ["Export as Markdown", "Export as JSON"]
    md = export_conversation_markdown(store, conv_id)
    assert "Answer from alpha." in md and "Answer from beta." in md and "(beta)" in md

    code = [c.value for c in at.main.code]
    assert len([c for c in code if "alpha" in c]) == 3 and len([c for c in code if "beta" in c]) == 3
    assert any(one.base_url in c for c in code) and any(two.base_url in c for c in code)
    assert all(SECRET not in c for c in code)
    assert any("EGP_API_KEY" in c for c in code)
    page = json.dumps([str(e.proto) for e in at.main] + [str(e.proto) for e in at.sidebar])
    assert SECRET not in page

    # a refresh (a new session) reopens it from the URL
    again = AppTest.from_file(APP, default_timeout=60)
    again.session_state["session_connections"] = at.session_state["session_connections"]
    again.run()
    again.switch_page(COMPARE)
    again.query_params["cmp"] = conv_id
    again.run()
    assert headers(again) == ["A · alpha", "B · beta"]
    assert "Answer from beta." in texts(again)


def test_a_panes_code_runs_and_prints_the_answer_the_pane_got(env, fakes, local_server, tmp_path):
    from tests.test_snippets import printed, run_snippet

    local_server.wait_idle()
    env.setenv("EGP_ENDPOINT_URL", local_server.base_url)
    at = compare_page([session_connection("Fake", fakes(["fake-model"], "Fake."))], panes=2)
    at.slider(key="pane0-temperature").set_value(0.0).run()
    at.number_input(key="pane0-max_tokens").set_value(8).run()
    ask(at, 'Name a fruit, "quoted" & spelled in français.')
    local = answers(at.session_state["compare_run"])[0]
    assert local.model == LOCAL_MODEL and local.text.strip()

    # both panes run the local model: each is named by what differs ("… · temperature 0 · max 8 tokens")
    column = next(c for c in at.main.columns
                  if [s.value for s in c.subheader][:1] == [f"A · {LOCAL_MODEL} · temperature 0 · max 8 tokens"])
    snippets = {tab.label: [c.value for c in tab.code] for tab in column.tabs}
    assert len(snippets) == 3 and all(len(code) == 1 for code in snippets.values())
    for n, (name, (code,)) in enumerate(snippets.items()):
        proc = run_snippet("curl" if "curl" in name.lower() else "python", code, tmp_path / str(n),
                           api_key="unused-local-key")
        expected = local.text
        if "scale-egp" in name:  # no chat call there: it sends the chat as one transcript prompt, another question
            expected = _local_answer(local_server.base_url, _snippet_prompt(code))
        assert printed(proc).strip() == expected.strip(), name


def _snippet_prompt(code: str) -> str:
    import ast

    return next(ast.literal_eval(node.value) for node in ast.parse(code).body
                if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "prompt")


def _local_answer(base_url: str, prompt: str) -> str:
    from egp_core.client import EGPClient
    from egp_core.types import CompletionRequest, ModelParameters

    request = CompletionRequest(model=LOCAL_MODEL, prompt=prompt,
                                model_parameters=ModelParameters(temperature=0, max_tokens=8))
    with EGPClient(base_url) as client:
        return client.complete(request).text


def test_an_openai_compatible_pane_next_to_an_egp_pane(env, fakes):
    from tests.fake_openai import FakeOpenAI

    egp = fakes(["egp-model"], "From the EGP side.")
    env.setenv("EGP_ENDPOINT_URL", egp.base_url)
    with FakeOpenAI() as openai:
        openai.models(["fake-gpt"]).reply("From the OpenAI side.")
        conn = Connection(id="session-oai", name="OAI", kind="openai", base_url=openai.base_url,
                          api_key=SECRET, source="session")
        at = compare_page([conn], panes=2)
        choose(at, 1, "session-oai")
        ask(at, "Who are you?")
        sent = openai.requests[-1]["body"]
    assert headers(at) == ["A · egp-model", "B · fake-gpt"]
    assert [(m.text, m.status) for m in answers(at.session_state["compare_run"])] == [
        ("From the EGP side.", "complete"), ("From the OpenAI side.", "complete")
    ]
    assert sent["model"] == "fake-gpt" and sent["messages"][-1] == {"role": "user", "content": "Who are you?"}
    column = next(c for c in at.main.columns if [s.value for s in c.subheader][:1] == ["B · fake-gpt"])
    assert any("/v1/chat/completions" in c.value and "OPENAI_API_KEY" in c.value for c in column.code)


# ----- follow-ups: each pane a thread of its own ---------------------------------------------------


def two_panes(env, fakes) -> tuple[AppTest, FakeEGP, FakeEGP]:
    alpha = fakes(["alpha"], "Alpha says the sky is blue.")
    beta = fakes(["beta"], "Beta says the sky is grey.")
    env.setenv("EGP_ENDPOINT_URL", alpha.base_url)
    at = compare_page([session_connection("Beta", beta)], panes=2)
    choose(at, 1, "session-beta")
    return at, alpha, beta


def test_a_follow_up_goes_to_every_pane_with_its_own_history(env, fakes):
    at, alpha, beta = two_panes(env, fakes)
    ask(at, "What colour is the sky?")
    conv = at.session_state["compare_run"]
    ask(at, "And at night?")
    assert at.session_state["compare_run"] == conv  # the same comparison, one turn more

    for fake, own, other in ((alpha, "Alpha says", "Beta says"), (beta, "Beta says", "Alpha says")):
        first, second = (json.dumps(r.body) for r in generation_requests(fake))
        assert "What colour is the sky?" in first and "And at night?" not in first
        assert "What colour is the sky?" in second and "And at night?" in second
        assert own in second and other not in second  # its own earlier answer, never the other pane's
    questions = [m.text for m in saved().messages(conv) if m.role == "user"]
    assert questions == ["What colour is the sky?", "And at night?"]
    assert headers(at) == ["A · alpha", "B · beta"] * 2
    shown = [m.value for m in at.main.markdown]
    assert shown.count("Alpha says the sky is blue.") == 2 and shown.count("Beta says the sky is grey.") == 2
    click(at, "Next round")
    assert at.session_state["compare_run"] is None
    ask(at, "A new question")
    assert at.session_state["compare_run"] != conv
    assert "What colour is the sky?" not in json.dumps(generation_requests(alpha)[-1].body)


def test_blind_mode_stays_blind_across_turns(env, fakes):
    at, said = blind_comparison(env, fakes)
    ask(at, "And at night?")
    assert headers(at) == ["Model A", "Model B", "Model C"] * 2
    shown = texts(at)
    for model, answer in said.items():
        assert [m.value for m in at.main.markdown].count(answer) == 2
        assert model not in shown
    assert not at.main.get("download_button")
    click(at, next(b.label for b in at.button if b.label.endswith(" is best")))
    assert not any(h.startswith("Model ") for h in headers(at))
    assert len(headers(at)) == 6


def test_regenerate_replaces_one_panes_last_answer(env, fakes):
    at, alpha, beta = two_panes(env, fakes)
    ask(at, "What colour is the sky?")
    ask(at, "And at night?")
    conv = at.session_state["compare_run"]
    alpha.reply(text="Alpha thinks again: black.")
    at.button(key=f"regen-{conv}-0").click().run()
    assert not at.exception, at.exception

    assert len(generation_requests(alpha)) == 3 and len(generation_requests(beta)) == 2
    again = json.dumps(generation_requests(alpha)[-1].body)
    assert "Alpha says the sky is blue." in again and "And at night?" in again and "Beta says" not in again
    shown = [m.value for m in at.main.markdown]
    assert "Alpha thinks again: black." in shown
    assert shown.count("Alpha says the sky is blue.") == 1  # the first turn's; the second's is replaced
    assert shown.count("Beta says the sky is grey.") == 2
    mine = [m for m in saved().messages(conv) if m.pane == 0]
    assert [(m.text, m.hidden) for m in mine] == [
        ("Alpha says the sky is blue.", False), ("Alpha says the sky is blue.", True),
        ("Alpha thinks again: black.", False),
    ]
