"""egp_core.snippets: the generated code is executed and must print the model's answer.

Python snippets run with the project's interpreter (scale-egp and requests
installed), the curl snippet with bash (curl and jq). Against the real local
model, the printed text must equal the answer the server gives directly at
temperature 0; against the fake EGP server we check keys, chat requests and errors.
"""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from egp_core.client import EGPClient
from egp_core.openai_compat import OpenAIClient
from egp_core.snippets import (
    OPENAI_SNIPPET_NAMES,
    SNIPPET_NAMES,
    all_snippets,
    curl,
    py_str,
    python_requests,
    python_sdk,
    sh_quote,
)
from egp_core.types import CompletionRequest, Message, ModelParameters
from tests.fake_egp import FakeEGP
from tests.fake_openai import LLAMA_CPP_MODEL, FakeOpenAI, llama_cpp_server

SECRET = "sk-test-Zq9$'\"x"
TRICKY = 'Reply with one word. Quote: "hi" it\'s $HOME `date` \\n \\ back\\slash\nsecond line: café 日本語 ✓'


def run_snippet(name: str, code: str, tmp_path: Path, api_key: str | None = None,
                extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("EGP_", "SGP_", "OPENAI_")) and "proxy" not in k.lower()}
    env.update(extra_env or {})
    env.update(PYTHONUTF8="1", LANG="C.UTF-8", LC_ALL="C.UTF-8", NO_PROXY="*")
    if api_key is not None:
        env["EGP_API_KEY"] = api_key
    tmp_path.mkdir(parents=True, exist_ok=True)
    if name == "curl":
        path = tmp_path / "snippet.sh"
        path.write_text(code, encoding="utf-8")
        cmd = ["bash", str(path)]
    else:
        path = tmp_path / "snippet.py"
        path.write_text(code, encoding="utf-8")
        cmd = [sys.executable, str(path)]
    return subprocess.run(cmd, capture_output=True, env=env, timeout=120, cwd=tmp_path)


def printed(proc: subprocess.CompletedProcess) -> str:
    """What the snippet printed, less the one newline each snippet ends with."""
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    out = proc.stdout.decode("utf-8")
    assert out.endswith("\n"), out
    return out[:-1]


# ---- pure text checks -----------------------------------------------------------------------


def test_literals_round_trip():
    import ast
    import shlex

    for text in (TRICKY, "", "'", "\u2028\x00\t", "a\ud800b"):
        assert ast.literal_eval(py_str(text)) == text
        assert shlex.split("x " + sh_quote(text)) == ["x", text] or "\x00" in text


def test_key_never_in_snippets_and_read_from_env():
    req = CompletionRequest(model="m", prompt="p", account_id="acct-9",
                            model_parameters=ModelParameters(temperature=0, top_p=0.5))
    for stream in (False, True):
        snippets = all_snippets("https://api.example.workspace.egp.scale.com", req, stream=stream)
        assert list(snippets) == list(SNIPPET_NAMES)
        for code in snippets.values():
            assert "EGP_API_KEY" in code
            assert "acct-9" in code
    sdk = python_sdk("https://x", req, stream=False)
    assert "top_p" in sdk  # the note says the SDK cannot send it
    assert "/v2/completions" in python_requests("https://x/", req, stream=False)
    assert "'https://x/v2/completions'" in curl("https://x", req, stream=True)
    assert " -N " in curl("https://x", req, stream=True)
    assert " -N " not in curl("https://x", req, stream=False)


# ---- against the fake EGP server ------------------------------------------------------------


@pytest.fixture()
def fake(fake_egp: FakeEGP) -> FakeEGP:
    return fake_egp


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("name", SNIPPET_NAMES)
def test_snippets_send_key_from_env_and_print_answer(fake, tmp_path, name, stream):
    answer = 'Bonjour "monde" — it\'s 日本 $HOME\nline two'
    fake.reply(text=answer).require_key(SECRET)
    req = CompletionRequest(model="fake-model", prompt=TRICKY,
                            model_parameters=ModelParameters(temperature=0, max_tokens=8, stop_sequences=["\n\n"]))
    code = all_snippets(fake.base_url, req, stream=stream)[name]
    assert SECRET not in code
    assert printed(run_snippet(name, code, tmp_path, api_key=SECRET)) == answer
    sent = [r for r in fake.requests if r.method == "POST"][-1]
    assert sent.headers.get("x-api-key") == SECRET
    assert sent.path == "/v2/completions"
    assert sent.body["prompt"] == TRICKY
    assert sent.body["model"] == "fake-model"
    assert bool(sent.body["stream"]) is stream
    assert sent.body["model_parameters"]["stop_sequences"] == ["\n\n"]
    assert sent.body["model_parameters"]["max_tokens"] == 8


@pytest.mark.parametrize("name", ["Python (requests)", "curl"])
def test_chat_requests_use_chat_path(fake, tmp_path, name):
    fake.reply(text="chat answer ✓")
    req = CompletionRequest(model="fake-model", messages=[Message(role="system", content="Be 'brief'"),
                                                          Message(role="user", content=TRICKY)])
    for stream in (False, True):
        code = all_snippets(fake.base_url, req, stream=stream)[name]
        assert printed(run_snippet(name, code, tmp_path)) == "chat answer ✓"
        sent = fake.requests[-1]
        assert sent.path == "/v4/chat-completions"
        assert sent.body["messages"][1]["content"] == TRICKY


def test_sdk_snippet_sends_a_chat_request_as_transcript(fake, tmp_path):
    fake.reply(text="ok")
    req = CompletionRequest(model="fake-model", messages=[Message(role="user", content="Hi"),
                                                          Message(role="assistant", content="Hello"),
                                                          Message(role="user", content="Again")])
    assert printed(run_snippet("Python (scale-egp SDK)", python_sdk(fake.base_url, req, stream=False), tmp_path)) == "ok"
    assert fake.requests[-1].body["prompt"] == "User: Hi\n\nAssistant: Hello\n\nUser: Again\n\nAssistant:"


@pytest.mark.parametrize("name", ["Python (requests)", "curl"])
def test_streamed_error_and_noise_events(fake, tmp_path, name):
    fake.reply(chunks=["one ", "two ", "three"]).comments()
    req = CompletionRequest(model="fake-model", prompt="x")
    assert printed(run_snippet(name, all_snippets(fake.base_url, req, stream=True)[name], tmp_path)) == "one two three"
    fake.reset()
    fake.reply(chunks=["one ", "two ", "three"]).error_event(after=2, detail="The model crashed.")
    proc = run_snippet(name, all_snippets(fake.base_url, req, stream=True)[name], tmp_path)
    out = (proc.stdout + proc.stderr).decode()
    assert "one two " in out and "The model crashed." in out


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("name", ["Python (requests)", "curl"])
def test_http_error_is_printed(fake, tmp_path, name, stream):
    fake.require_key("right")
    req = CompletionRequest(model="fake-model", prompt="x")
    proc = run_snippet(name, all_snippets(fake.base_url, req, stream=stream)[name], tmp_path, api_key="wrong")
    assert "Invalid API key" in (proc.stdout + proc.stderr).decode()
    assert b"Traceback" not in proc.stderr


# ---- against the real local model --------------------------------------------------------------

LOCAL_CASES = {
    "plain": CompletionRequest(model="MODEL", prompt="What is the capital of France?",
                               model_parameters=ModelParameters(temperature=0, max_tokens=12)),
    "stop-sequences": CompletionRequest(model="MODEL", prompt="List three colours, one per line.",
                                        model_parameters=ModelParameters(temperature=0, max_tokens=24,
                                                                         stop_sequences=["\n", "."])),
    "tricky-prompt": CompletionRequest(model="MODEL", prompt=TRICKY,
                                       model_parameters=ModelParameters(temperature=0, max_tokens=12, top_p=0.9)),
}


@pytest.fixture(scope="module")
def local_model(local_server) -> str:
    with EGPClient(local_server.base_url) as client:
        return client.list_models()[0]


def direct_answer(base_url: str, request: CompletionRequest) -> str:
    response = requests.post(base_url + "/v2/completions", json=request.completions_body(stream=False), timeout=120)
    assert response.status_code == 200, response.text
    return response.json()["completion"]["text"]


@pytest.mark.parametrize("case", list(LOCAL_CASES))
def test_snippets_print_the_local_models_answer(local_server, local_model, tmp_path, case):
    local_server.wait_idle()
    request = LOCAL_CASES[case].model_copy(update={"model": local_model})
    expected = direct_answer(local_server.base_url, request)
    assert expected.strip()
    jobs = [(name, stream, code) for stream in (False, True)
            for name, code in all_snippets(local_server.base_url, request, stream=stream).items()]
    with ThreadPoolExecutor(3) as pool:  # a few at once: the server queues them anyway
        outputs = pool.map(lambda i: run_snippet(jobs[i][0], jobs[i][2], tmp_path / str(i)), range(len(jobs)))
        for (name, stream, _code), proc in zip(jobs, outputs, strict=True):
            assert printed(proc) == expected, (case, name, stream)


# ---- OpenAI-compatible servers -------------------------------------------------------------------

OPENAI_KEY = "sk-openai-Q'$\"9876"


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("name", OPENAI_SNIPPET_NAMES)
def test_openai_snippets_against_the_fake(tmp_path, name, stream):
    answer = 'Réponse "citée" — it\'s $HOME\nligne deux'
    with FakeOpenAI() as fake:
        fake.reply(answer).require_key(OPENAI_KEY)
        req = CompletionRequest(model="fake-gpt", messages=[Message(role="system", content="Be 'brief'"),
                                                            Message(role="user", content=TRICKY)],
                                model_parameters=ModelParameters(temperature=0, max_tokens=8, stop_sequences=["\n\n"]))
        snippets = all_snippets(fake.base_url + "/v1", req, stream=stream, kind="openai")
        assert list(snippets) == list(OPENAI_SNIPPET_NAMES)
        code = snippets[name]
        assert OPENAI_KEY not in code and "OPENAI_API_KEY" in code
        env_key = {"OPENAI_API_KEY": OPENAI_KEY}
        assert printed(run_snippet(name, code, tmp_path, extra_env=env_key)) == answer
        sent = fake.requests[-1]
        assert sent["path"] == "/v1/chat/completions"
        assert sent["body"]["messages"][1]["content"] == TRICKY and sent["body"]["stop"] == ["\n\n"]
        # a wrong key: the server's error is printed, not a traceback
        proc = run_snippet(name, code, tmp_path, extra_env={"OPENAI_API_KEY": "sk-wrong-key-0000"})
        assert "Incorrect API key" in (proc.stdout + proc.stderr).decode()
        assert b"Traceback" not in proc.stderr


def test_openai_snippets_print_llama_cpp_servers_answer(tmp_path):
    with llama_cpp_server(tmp_path) as base_url:
        client = OpenAIClient(base_url)
        req = CompletionRequest(model=LLAMA_CPP_MODEL, prompt="Name a fruit.",
                                model_parameters=ModelParameters(temperature=0, max_tokens=8))
        client.complete(req)  # warm-up: this server's first answer can differ from later ones
        expected = client.complete(req).text
        assert expected.strip()
        for stream in (False, True):
            for name, code in all_snippets(base_url, req, stream=stream, kind="openai").items():
                assert printed(run_snippet(name, code, tmp_path / f"{name[:4]}{stream}")) == expected, (name, stream)


@pytest.mark.parametrize("name", SNIPPET_NAMES)
def test_connection_account_id_is_sent(fake, tmp_path, name):
    fake.reply(text="ok")
    req = CompletionRequest(model="fake-model", prompt="x")
    code = all_snippets(fake.base_url, req, stream=False, account_id="acct-42")[name]
    assert printed(run_snippet(name, code, tmp_path)) == "ok"
    assert fake.requests[-1].body["account_id"] == "acct-42"
    assert all(r.path != "/user-info" for r in fake.requests)  # the SDK need not look it up
