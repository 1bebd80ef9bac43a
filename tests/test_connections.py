"""egp_core.connections: where connections come from, keys kept out of sight, Test connection."""

from __future__ import annotations

import json
import pickle
import socket

import pytest

from egp_core import errors
from egp_core.client import EGPClient
from egp_core.connections import (
    DEFAULT_EGP_URL,
    Connection,
    ConnectionTest,
    check_base_url,
    connections_from,
    new_connection,
    test_connection,
)
from egp_core.openai_compat import OpenAIClient
from egp_core.types import CompletionRequest, ModelParameters
from tests.fake_openai import FakeOpenAI

KEY = "egp-key-0123456789-wxyz"
OKEY = "sk-openai-abcdefghijk-5678"


@pytest.fixture()
def fake_openai():
    with FakeOpenAI() as server:
        yield server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- the Connection value ----------------------------------------------------------------------


def test_key_is_masked_and_never_shown():
    conn = Connection(id="x", name="Work", kind="egp", base_url="https://api.egp.scale.com", api_key=KEY,
                      source="env")
    assert conn.masked_key() == "••••wxyz"
    assert KEY not in repr(conn) and KEY not in str(conn)
    assert KEY not in json.dumps(conn.to_dict())
    assert conn.to_dict()["has_key"] is True and conn.to_dict()["masked_key"] == "••••wxyz"
    assert Connection(id="y", name="n", kind="openai", base_url="http://h", api_key="abc12").masked_key() == "••••"
    assert Connection(id="z", name="n", kind="openai", base_url="http://h").masked_key() == ""
    assert pickle.loads(pickle.dumps(conn)).api_key == KEY  # an in-memory copy keeps working


def test_make_client_kinds():
    egp = Connection(id="e", name="E", kind="egp", base_url="http://h:1", account_id="acct", api_key=KEY)
    client = egp.make_client(max_retries=0)
    assert type(client) is EGPClient and client.account_id == "acct" and client.base_url == "http://h:1"
    assert KEY not in repr(client)
    local = Connection(id="local", name="Local model", kind="local", base_url="http://127.0.0.1:9")
    assert type(local.make_client()) is EGPClient
    oai = Connection(id="o", name="O", kind="openai", base_url="http://h:2/v1", api_key=OKEY)
    client = oai.make_client(read_timeout=3)
    assert isinstance(client, OpenAIClient) and client.base_url == "http://h:2" and client.timeout == (5, 3)


# ---- where connections come from -----------------------------------------------------------------


def test_local_model_always_first_and_env_workspace():
    env = {"EGP_API_KEY": KEY, "EGP_ENDPOINT_URL": "https://api.w1.workspace.egp.scale.com/", "EGP_ACCOUNT_ID": "a1"}
    conns = connections_from(env, None, "http://127.0.0.1:5000/")
    assert [c.kind for c in conns] == ["local", "egp"]
    local, egp = conns
    assert (local.id, local.name, local.source, local.base_url) == ("local", "Local model (offline)", "builtin",
                                                                    "http://127.0.0.1:5000")
    assert local.api_key is None
    assert (egp.name, egp.source, egp.base_url, egp.account_id, egp.api_key) == (
        "EGP workspace", "env", "https://api.w1.workspace.egp.scale.com", "a1", KEY)


def test_no_local_and_nothing_configured():
    assert connections_from({}, None, None) == []
    assert connections_from({"PATH": "/bin"}, {}, None) == []


def test_key_without_url_uses_the_public_endpoint_and_sgp_names_work():
    (conn,) = connections_from({"SGP_API_KEY": KEY, "SGP_ACCOUNT_ID": "a2"}, None, None)
    assert conn.base_url == DEFAULT_EGP_URL and conn.account_id == "a2" and conn.api_key == KEY


def test_local_server_key_from_env():
    (local,) = connections_from({"EGP_LOCAL_API_KEY": "local-secret-1234"}, None, "http://127.0.0.1:1")
    assert local.api_key == "local-secret-1234"


def test_secrets_sections_and_top_level_keys():
    secrets = {
        "EGP_API_KEY": KEY,
        "EGP_ACCOUNT_ID": "acct-s",
        "connections": {
            "vllm_box": {"kind": "openai", "base_url": "http://gpu-box:8000/v1", "api_key": OKEY,
                         "name": "vLLM on the GPU box"},
            "team": {"kind": "egp", "base_url": "https://api.team.workspace.egp.scale.com", "api_key": "team-key-99999",
                     "account_id": "acct-team"},
            "ollama": {"kind": "ollama", "url": "http://localhost:11434"},
            "broken": {"kind": "egp", "base_url": "ftp://nope"},
            "nokind": {"base_url": "http://x"},
        },
    }
    problems: list[str] = []
    conns = connections_from({}, secrets, "http://127.0.0.1:1", problems=problems)
    assert [(c.id, c.kind, c.source) for c in conns] == [
        ("local", "local", "builtin"),
        ("secrets-vllm-box", "openai", "secrets"),
        ("secrets-team", "egp", "secrets"),
        ("secrets-ollama", "openai", "secrets"),
        ("secrets-egp", "egp", "secrets"),
    ]
    assert conns[1].name == "vLLM on the GPU box" and conns[1].api_key == OKEY
    assert conns[2].account_id == "acct-team"
    assert conns[3].api_key is None and conns[3].base_url == "http://localhost:11434"
    assert conns[4].base_url == DEFAULT_EGP_URL and conns[4].account_id == "acct-s"
    assert len(problems) == 2
    assert any("connections.broken" in p and "http://" in p for p in problems)
    assert any("connections.nokind" in p and "kind" in p for p in problems)
    assert all(KEY not in p and OKEY not in p for p in problems)


def test_same_workspace_from_secrets_and_env_is_listed_once():
    # Streamlit copies top-level secrets into the environment: the same workspace appears twice.
    same = {"EGP_API_KEY": KEY, "EGP_ENDPOINT_URL": "https://api.egp.scale.com"}
    conns = connections_from(same, dict(same), None)
    assert len(conns) == 1 and conns[0].source == "secrets"
    other = connections_from({"EGP_API_KEY": "another-key-0000"}, dict(same), None)
    assert [c.id for c in other] == ["secrets-egp", "env-egp"]


def test_openai_from_env():
    (conn,) = connections_from({"OPENAI_API_KEY": OKEY}, None, None)
    assert conn.kind == "openai" and conn.base_url == "https://api.openai.com" and conn.api_key == OKEY
    (conn,) = connections_from({"OPENAI_BASE_URL": "http://localhost:11434/v1"}, None, None)
    assert conn.api_key is None and conn.base_url == "http://localhost:11434/v1"


def test_new_connection_from_the_page():
    conn = new_connection("openai", "  My vLLM ", " http://gpu:8000/v1/ ", api_key=" " + OKEY + " ")
    assert (conn.id, conn.name, conn.kind, conn.base_url, conn.api_key, conn.source) == (
        "session-my-vllm", "My vLLM", "openai", "http://gpu:8000/v1", OKEY, "session")
    again = new_connection("egp", "My vLLM", "https://x", taken_ids={"session-my-vllm", "session-my-vllm-2"})
    assert again.id == "session-my-vllm-3" and again.name == "My vLLM" and again.api_key is None
    assert new_connection("workspace", "", "https://x").name == "EGP workspace"
    for kind, url in (("local", "http://x"), ("egp", ""), ("egp", "localhost:8000"), ("openai", "http://u:p@h")):
        with pytest.raises(ValueError) as info:
            new_connection(kind, "n", url)
        assert str(info.value)[0].isupper()
    assert check_base_url("https://api.egp.scale.com") is None


# ---- Test connection against real servers --------------------------------------------------------


def test_connection_to_fake_egp(fake_egp):
    fake_egp.require_key(KEY).models(["m1", "m2", "m3"])
    good = Connection(id="e", name="E", kind="egp", base_url=fake_egp.base_url, api_key=KEY)
    result = test_connection(good)
    assert isinstance(result, ConnectionTest)
    assert result.ok and result.models == ["m1", "m2", "m3"] and result.error is None
    assert result.seconds > 0
    assert result.summary.startswith("Connected in ") and result.summary.endswith("3 models found.")
    assert fake_egp.requests[-1].headers.get("x-api-key") == KEY

    wrong = Connection(id="w", name="W", kind="egp", base_url=fake_egp.base_url, api_key="wrong-key-1111")
    result = test_connection(wrong)
    assert not result.ok and isinstance(result.error, errors.AuthenticationError)
    assert result.reason == "key" and "rejected the API key" in result.summary
    assert "wrong-key-1111" not in result.error.detail


def test_connection_to_fake_openai(fake_openai):
    fake_openai.require_key(OKEY).models(["gpt-x"])
    conn = Connection(id="o", name="O", kind="openai", base_url=fake_openai.base_url + "/v1", api_key=OKEY)
    result = test_connection(conn)
    assert result.ok and result.models == ["gpt-x"]
    assert result.summary.endswith("1 model found.")
    conn.api_key = "sk-wrong-zzzzzzzzzzzz"
    result = test_connection(conn)
    assert isinstance(result.error, errors.AuthenticationError)
    assert "zzzz" not in result.error.detail and "sk-" not in result.error.detail


@pytest.mark.parametrize("kind", ["egp", "openai", "local"])
def test_connection_to_unreachable_host(kind):
    conn = Connection(id="u", name="U", kind=kind, base_url=f"http://127.0.0.1:{free_port()}", api_key=KEY)
    result = test_connection(conn)
    assert not result.ok and isinstance(result.error, errors.ConnectionFailed)
    assert result.reason == "refused" and "refused the connection on port" in result.summary
    assert KEY not in result.error.detail


def test_local_model_connection_lists_models_and_answers(local_server):
    (local,) = connections_from({}, None, local_server.base_url)
    result = test_connection(local)
    assert result.ok and result.models, result.error
    with local.make_client() as client:
        done = client.complete(CompletionRequest(model=result.models[0], prompt="Say hi",
                                                 model_parameters=ModelParameters(temperature=0, max_tokens=3)))
    assert done.text and done.usage.completion <= 3


def test_openai_connection_streams_like_egp(fake_openai):
    fake_openai.reply(chunks=["a", "b", "c"])
    conn = new_connection("openai", "Fake", fake_openai.base_url)
    with conn.make_client() as client, client.stream(CompletionRequest(model="fake-gpt", prompt="x")) as stream:
        assert [c.text for c in stream] == ["a", "b", "c"]
    assert stream.usage.completion == 3 and stream.finish_reason == "stop"


# ---- connections that explain themselves --------------------------------------------------------


def test_the_kind_is_read_from_the_address():
    from egp_core.connections import kind_from_url

    assert kind_from_url("https://api.abc123.workspace.egp.scale.com") == "egp"
    assert kind_from_url("https://api.egp.scale.com") == "egp"
    assert kind_from_url("http://gpu-box:8000/v1") == "openai"
    assert kind_from_url("https://api.openai.com") == "openai"
    assert kind_from_url("http://localhost:11434") == "openai"  # Ollama
    assert kind_from_url("http://gpu-box:8000") is None  # the address does not say
    assert kind_from_url("not an address") is None
    assert new_connection("auto", "", "https://api.x.workspace.egp.scale.com").kind == "egp"


def test_a_name_that_does_not_resolve_is_said_so():
    conn = Connection(id="d", name="D", kind="egp", base_url="http://no-such-host.invalid:8000", api_key=KEY)
    result = test_connection(conn, connect_timeout=3)
    assert result.reason == "dns", result.error.detail
    assert result.summary.startswith("The name no-such-host.invalid does not exist")
    assert KEY not in result.summary and KEY not in result.error.detail


def test_a_tls_problem_is_said_so(fake_egp):
    fake_egp.models(["m"])
    https = fake_egp.base_url.replace("http://", "https://")  # it speaks plain http on that port
    result = test_connection(Connection(id="t", name="T", kind="egp", base_url=https, api_key=KEY))
    assert result.reason == "tls", result.error.detail
    assert "secure connection (TLS)" in result.summary and f"port {fake_egp.port}" in result.summary


def test_add_tests_first_and_tries_both_kinds_when_the_address_does_not_say(fake_openai):
    from egp_core.connections import test_new_connection

    fake_openai.models(["gpt-x"])
    conn, result = test_new_connection("auto", "", fake_openai.base_url)  # not an EGP workspace: then OpenAI
    assert result.ok and conn.kind == "openai" and result.models == ["gpt-x"]
    assert conn.name.startswith("OpenAI-compatible server at 127.0.0.1")
    conn, result = test_new_connection("auto", "X", f"http://127.0.0.1:{free_port()}")
    assert not result.ok and result.reason == "refused"


def test_connections_kept_for_next_time_are_readable_by_their_owner_only(tmp_path):
    from egp_core.connections import forget_saved, load_saved, save_connection

    path = tmp_path / "sub" / "connections.toml"
    conn = new_connection("openai", 'My "quoted" box', "http://gpu-box:8000/v1", api_key=OKEY)
    saved = save_connection(path, conn)
    assert path.stat().st_mode & 0o777 == 0o600
    (again,) = load_saved(path)
    assert (again.id, again.name, again.kind, again.base_url, again.api_key, again.source) == (
        saved.id, 'My "quoted" box', "openai", "http://gpu-box:8000/v1", OKEY, "saved")
    assert OKEY not in repr(again) and OKEY not in json.dumps(again.to_dict())
    save_connection(path, new_connection("egp", "Work", "https://api.x.workspace.egp.scale.com", api_key=KEY,
                                         account_id="acct"))
    assert [c.name for c in load_saved(path)] == ['My "quoted" box', "Work"]
    assert path.stat().st_mode & 0o777 == 0o600
    forget_saved(path, saved.id)
    assert [c.name for c in load_saved(path)] == ["Work"]
    forget_saved(path, "saved-work")
    assert not path.exists() and load_saved(path) == []
    path.write_text("[connections\nbroken")
    problems: list[str] = []
    assert load_saved(path, problems) == [] and "could not be read" in problems[0]
