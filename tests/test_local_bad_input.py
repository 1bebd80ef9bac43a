"""Bad input gets a 4xx JSON answer, never a 500, and the server keeps serving."""

from __future__ import annotations

import pytest
import requests

from egp_core.local import DEFAULT_MODEL_ID
from tests.plugins.local_model import start_local_server, stop_local_server

pytestmark = pytest.mark.model

MODEL = DEFAULT_MODEL_ID
GOOD = {"model": MODEL, "prompt": "Hi", "model_parameters": {"temperature": 0, "max_tokens": 2}}


def raw_post(url: str, data: bytes, content_type: str | None = "application/json") -> requests.Response:
    headers = {"Content-Type": content_type} if content_type else {}
    return requests.post(url, data=data, headers=headers, timeout=60)


def params(**kw) -> dict:
    return {"model": MODEL, "prompt": "Hi", "model_parameters": {"max_tokens": 2, **kw}}


CASES = {
    "invalid JSON": (b'{"model": "x", "prompt": ', "application/json", 400),
    "empty body": (b"", "application/json", 400),
    "body is a list": (b"[1, 2]", "application/json", 422),
    "missing prompt": (b'{"model": "SmolLM2-135M-Instruct"}', "application/json", 422),
    "missing model": (b'{"prompt": "Hi"}', "application/json", 422),
    "empty model": (b'{"model": "", "prompt": "Hi"}', "application/json", 422),
    "prompt is a number": (b'{"model": "SmolLM2-135M-Instruct", "prompt": 5}', "application/json", 422),
    "wrong content type": (b"model=x&prompt=hi", "application/x-www-form-urlencoded", 415),
    "text content type": (b'{"model": "SmolLM2-135M-Instruct", "prompt": "Hi"}', "text/plain", 415),
    "2 MB prompt": (None, "application/json", 413),
    "deeply nested JSON": (b'{"model": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "application/json", 400),
    "not UTF-8": (b'{"model": "\xff\xfe", "prompt": "Hi"}', "application/json", 400),
    "temperature NaN": (
        b'{"model": "SmolLM2-135M-Instruct", "prompt": "Hi", "model_parameters": {"temperature": NaN}}',
        "application/json",
        422,
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_bodies_get_a_4xx_json_answer(local_server, case):
    data, content_type, status = CASES[case]
    if data is None:
        data = requests.models.complexjson.dumps({"model": MODEL, "prompt": "x" * 2_000_000}).encode()
    r = raw_post(local_server.base_url + "/v2/completions", data, content_type)
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    assert r.json()["detail"]
    assert requests.post(local_server.base_url + "/v2/completions", json=GOOD, timeout=60).status_code == 200


@pytest.mark.parametrize(
    "model_parameters",
    [
        {"temperature": 5},
        {"temperature": -1},
        {"stop_sequences": [f"s{i}" for i in range(10)]},
        {"max_tokens": 0},
        {"top_p": 0},
        {"topK": -3},
        {"frequency_penalty": 9},
        {"temperature": "hot"},
    ],
)
@pytest.mark.parametrize("path", ["/v2/completions", "/v4/chat-completions"])
def test_out_of_range_parameters_are_422_with_fastapi_detail(local_server, model_parameters, path):
    (field,) = model_parameters
    body = {
        "model": MODEL,
        "prompt": "Hi",
        "messages": [{"role": "user", "content": "Hi"}],
        "model_parameters": model_parameters,
    }
    r = requests.post(local_server.base_url + path, json=body, timeout=60)
    assert r.status_code == 422, r.text
    (error,) = r.json()["detail"]
    assert error["loc"] == ["body", "model_parameters", field]
    assert error["msg"] and error["type"]


def test_a_lone_surrogate_in_the_prompt_is_survived(local_server):
    data = b'{"model": "SmolLM2-135M-Instruct", "prompt": "Hi \\ud800 there", "model_parameters": {"max_tokens": 2}}'
    r = raw_post(local_server.base_url + "/v2/completions", data)
    assert r.status_code == 200, r.text


def test_unknown_model_is_404_listing_the_known_ones(local_server):
    for path, body in [
        ("/v2/completions", {"model": "gpt-4", "prompt": "Hi"}),
        ("/v4/chat-completions", {"model": "gpt-4", "messages": [{"role": "user", "content": "Hi"}]}),
    ]:
        r = requests.post(local_server.base_url + path, json=body, timeout=60)
        assert r.status_code == 404
        assert "gpt-4" in r.json()["detail"] and MODEL in r.json()["detail"]


def test_prompt_longer_than_the_context_is_400_with_the_counts(local_server):
    r = requests.post(
        local_server.base_url + "/v2/completions",
        json={"model": MODEL, "prompt": "hello " * 9000},
        timeout=60,
    )
    assert r.status_code == 400
    detail = r.json()["detail"]
    assert detail.startswith("The prompt has ") and detail.endswith(" tokens but the model fits 8191.")
    n = int(detail.split()[3])
    assert n > 9000
    local_server.wait_idle()


def test_chat_needs_messages_with_known_roles(local_server):
    url = local_server.base_url + "/v4/chat-completions"
    assert requests.post(url, json={"model": MODEL, "messages": []}, timeout=60).status_code == 422
    assert requests.post(url, json={"model": MODEL, "prompt": "Hi"}, timeout=60).status_code == 422
    bad_role = {"model": MODEL, "messages": [{"role": "wizard", "content": "Hi"}]}
    assert requests.post(url, json=bad_role, timeout=60).status_code == 422


def test_images_are_refused_with_400(local_server):
    body = {**GOOD, "images": [{"image_url": "http://example.com/cat.png"}]}
    r = requests.post(local_server.base_url + "/v2/completions", json=body, timeout=60)
    assert r.status_code == 400
    assert "images" in r.json()["detail"]


def test_wrong_method_and_unknown_path_are_json_4xx(local_server):
    r = requests.get(local_server.base_url + "/v2/completions", timeout=10)
    assert r.status_code == 405 and r.json()["detail"]
    r = requests.post(local_server.base_url + "/v9/nothing", json=GOOD, timeout=10)
    assert r.status_code == 404 and r.json()["detail"]


def test_server_still_healthy_after_all_that(local_server):
    assert local_server.process.poll() is None
    assert "Traceback" not in local_server.log()
    assert local_server.health()["ready"]


# ---- API key -------------------------------------------------------------------------------------

KEY = "sk-local-test-5f1c9a"


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory):
    server = start_local_server(
        tmp_path_factory.mktemp("keyed"), "--threads", "1", env={"EGP_LOCAL_API_KEY": KEY}
    )
    yield server
    stop_local_server(server)


@pytest.mark.parametrize(
    "method, path, body",
    [
        ("post", "/v2/completions", GOOD),
        ("post", "/egp/v1/completions", GOOD),
        ("post", "/v4/chat-completions", {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}]}),
        ("get", "/v3/models", None),
        ("get", "/v4/models", None),
        ("get", "/v5/chat/completions/models", None),
        ("get", "/user-info", None),
    ],
)
def test_api_key_is_required_when_set(keyed_server, method, path, body):
    url = keyed_server.base_url + path
    for headers in ({}, {"x-api-key": "wrong"}, {"x-api-key": KEY.upper()}):
        r = requests.request(method, url, json=body, headers=headers, timeout=60)
        assert r.status_code == 401, r.text
        assert "API key" in r.json()["detail"]
    r = requests.request(method, url, json=body, headers={"x-api-key": KEY}, timeout=60)
    assert r.status_code == 200, r.text


def test_api_key_never_logged(keyed_server):
    requests.post(
        keyed_server.base_url + "/v2/completions", json=GOOD, headers={"x-api-key": KEY}, timeout=60
    )
    requests.post(
        keyed_server.base_url + "/v2/completions", json=GOOD, headers={"x-api-key": KEY + "x"}, timeout=60
    )
    logs = keyed_server.log() + (keyed_server.log_path.parent / "local-server.out").read_text()
    assert "POST /v2/completions" in logs  # the access log is on, and still holds no key
    assert KEY not in logs


def test_health_needs_no_key(keyed_server):
    assert requests.get(keyed_server.base_url + "/health", timeout=10).json()["ready"] is True
