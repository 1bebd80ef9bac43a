"""Keys never survive an error: one scrubbing step (egp_core.errors.scrub) for every client, applied
before an error is stored or shown. A proxy that echoes the request (headers, keys included) in its
error body is played by the fake EGP server (`fail(echo=...)`)."""

from __future__ import annotations

import json

import pytest

from egp_core.client import EGPClient
from egp_core.errors import EGPError, error_from_dict, error_to_dict, scrub
from egp_core.generation import Generation
from egp_core.openai_compat import OpenAIClient, sgp_v5_client
from egp_core.store import export_conversation_json, export_conversation_markdown
from egp_core.types import CompletionRequest, Message
from tests.plugins.apptest import SECRET, send, start

KEY = "sk-live-0123456789abcdefSECRET"
OTHER = "zz9-plural-z-alpha-42-secret"  # not ours, but sent in a header a proxy echoes


def request(chat: bool = False) -> CompletionRequest:
    if chat:
        return CompletionRequest(model="fake-model", messages=[Message(role="user", content="Hi")])
    return CompletionRequest(model="fake-model", prompt="Hi")


def everything_shown(error: EGPError) -> str:
    """Every text of an error a person, a log or the store can see."""
    return "\n".join([str(error), error.user_message, error.detail, error.body, *getattr(error, "messages", []),
                      json.dumps(error_to_dict(error))])


def test_scrub_removes_keys_headers_and_bearer_tokens():
    assert scrub(f"x-api-key: {OTHER}\r\nHost: example", None) == "x-api-key: [key]\r\nHost: example"
    assert scrub(json.dumps({"X-Api-Key": OTHER, "Authorization": f"Bearer {OTHER}"})) == (
        '{"X-Api-Key": "[key]", "Authorization": "[key]"}')
    assert scrub(f"{{'api_key': '{OTHER}', 'User-Agent': 'egp'}}") == "{'api_key': '[key]', 'User-Agent': 'egp'}"
    assert scrub(f"token Bearer {OTHER} in a sentence") == "token Bearer [key] in a sentence"
    assert scrub(f"GET /v1/x?api_key={OTHER}&page=2") == "GET /v1/x?api_key=[key]&page=2"
    assert scrub("Incorrect API key provided: sk-ab***1234. More") == "Incorrect API key provided: [key]. More"
    assert scrub("key=SECRET123 and sk-live-abcdef", "SECRET123") == "key=[key] and [key]"
    # Ordinary words, field errors and URLs stay readable.
    for plain in ("The API key was rejected. Check it in Settings.", "api_key: Field required",
                  "https://api-dev.example.com/v2/completions", "max_tokens: 512"):
        assert scrub(plain) == plain


def test_every_error_is_scrubbed_when_made_and_when_read_back():
    error = EGPError("Failed", body=f'{{"headers": {{"x-api-key": "{OTHER}"}}}}', detail=f"Authorization: Bearer {OTHER}")
    assert OTHER not in everything_shown(error)
    # An error saved before scrubbing existed is scrubbed when it is read back for the page.
    legacy = json.dumps({"kind": "ServerError", "message": "Failed", "detail": f"x-api-key: {OTHER}"})
    assert OTHER not in error_from_dict(legacy).detail


@pytest.mark.parametrize("echo", ["json", "text"])
@pytest.mark.parametrize("chat", [False, True], ids=["v2-completions", "v4-chat"])
@pytest.mark.parametrize("status", [400, 502])
def test_egp_errors_echoing_the_request_lose_the_key(fake_egp, echo, chat, status):
    fake_egp.fail(status=status, echo=echo, times=20)
    client = EGPClient(fake_egp.base_url, KEY, account_id="acct-1", api="chat" if chat else "completions",
                       retry_initial_delay=0.01, on_retry=lambda e, d: seen.append(everything_shown(e)))
    seen: list[str] = []
    with pytest.raises(EGPError) as streamed:
        list(client.stream(request(chat)))
    with pytest.raises(EGPError) as whole:
        client.complete(request(chat))
    assert KEY in json.dumps(fake_egp.requests[0].headers)  # the proxy did see (and echo) the key
    for error in (streamed.value, whole.value):
        shown = everything_shown(error)
        assert "Proxy error" in shown and "x-selected-account-id" in shown.lower()  # the rest stays
        assert KEY not in shown and KEY[:12] not in shown
    assert all(KEY not in text for text in seen)  # nor in the "trying again" notice


def test_model_listing_errors_lose_the_key(fake_egp):
    fake_egp.fail(status=401, echo="json", times=9, paths=["/v5/chat/completions/models", "/v4/models", "/v3/models"])
    client = EGPClient(fake_egp.base_url, KEY, retry_initial_delay=0.01)
    with pytest.raises(EGPError) as info:
        client.list_models()
    assert KEY not in everything_shown(info.value)
    assert client.last_list_error is info.value


def test_openai_and_v5_errors_lose_the_key(fake_egp):
    fake_egp.fail(status=500, echo="json", times=10, paths=["/v1/chat/completions", "/v5/chat/completions"])
    for client in (OpenAIClient(fake_egp.base_url, KEY, max_retries=0),
                   sgp_v5_client(fake_egp.base_url, KEY, max_retries=0)):
        with pytest.raises(EGPError) as info:
            list(client.stream(request(chat=True)))
        assert "Proxy error" in everything_shown(info.value)
        assert KEY not in everything_shown(info.value)
    assert any(f"Bearer {KEY}" in json.dumps(r.headers) for r in fake_egp.requests)


def test_saved_message_exports_and_share_copy_hold_no_key(fake_egp, store):
    fake_egp.fail(status=400, echo="text", times=5)
    conv = store.create_conversation("me", "Echo")
    store.add_message(conv, "user", "Hi")
    mid = store.add_message(conv, "assistant", "", status="streaming", model="fake-model")
    client = EGPClient(fake_egp.base_url, KEY, retry_initial_delay=0.01)
    gen = Generation(client, request(), sink=store, message_id=mid).start()
    assert gen.wait(20)
    saved = store.get_message(mid)
    assert saved.status == "error" and "Proxy error" in saved.error
    token = store.create_share(conv, "me")
    shown = [saved.error, error_from_dict(saved.error).detail, export_conversation_json(store, conv),
             export_conversation_markdown(store, conv), repr(store.messages(store.conversation_for_share(token).id))]
    for text in shown:
        assert KEY not in text


def test_the_page_shows_the_error_and_its_technical_detail_without_the_key(app_env):
    app_env.fail(status=400, echo="json", times=5)
    at = send(start(), "Hello?")
    detail = "\n".join(c.value for c in at.code)
    assert "Proxy error 400" in detail and "x-api-key" in detail.lower()
    everything = "\n".join([detail, *(e.value for e in at.error), *(m.value for m in at.markdown)])
    assert SECRET not in everything
