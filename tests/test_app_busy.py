"""The cap on live answers per process, as the chat page shows it (AppTest + fake EGP server)."""

from __future__ import annotations

from egp_core.client import EGPClient
from egp_core.generation import Generation
from egp_core.types import CompletionRequest
from tests.plugins.apptest import markdown, send, start


def test_past_the_cap_a_new_answer_says_the_app_is_busy(app_env, fresh_app):
    from ui import services

    fresh_app.setenv("EGP_PLAYGROUND_MAX_ANSWERS", "1")
    app_env.reply(text="Still going").stall_after(1)
    store = services.store()
    other = store.create_conversation("someone-else", "Elsewhere")
    store.add_message(other, "user", "Long one")
    mid = store.add_message(other, "assistant", "", status="streaming", model="fake-model")
    elsewhere = services.registry().start(Generation(
        EGPClient(app_env.base_url, "key"), CompletionRequest(model="fake-model", prompt="Long one"),
        sink=store, message_id=mid))
    try:
        at = send(start(), "Is there room for me?")
        errors = [e.value for e in at.error]
        assert any("The app is busy" in e for e in errors), errors
        assert not elsewhere.done  # the running answer was not disturbed
        assert "Is there room for me?" in markdown(at)
    finally:
        elsewhere.cancel()
        assert elsewhere.wait(10)
