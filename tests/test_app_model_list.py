"""The sidebar's model list under AppTest (fake EGP server): a hanging endpoint costs one short
wait, said plainly; a failure is remembered, with "Try again"; lists never cross credentials."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from tests.fake_egp import MODEL_PATHS
from tests.plugins.apptest import APP, start
from ui import services


def listings(fake) -> int:
    return sum(1 for r in fake.requests if r.path in MODEL_PATHS.values())


def sidebar_errors(at: AppTest) -> str:
    return " ".join(e.value for e in at.sidebar.error)


def test_a_failed_model_list_is_remembered_and_try_again_reads_it_again(app_env):
    services.model_catalog().keep_failure = 3600  # "15 s" must not run out between two slow runs
    app_env.require_key("another-key")  # our key is refused: no models
    at = start()
    assert "rejected the API key" in sidebar_errors(at)
    assert at.chat_input[0].disabled
    asked = listings(app_env)
    app_env.require_key(None)  # fixed on the server side
    at.run()
    assert listings(app_env) == asked  # remembered: not asked again on every run
    assert any("Asked again in" in c.value for c in at.sidebar.caption)
    at.sidebar.button(key="models-retry-").click().run()
    assert not at.sidebar.error
    assert at.sidebar.selectbox(key="model").value == "fake-model"


def test_a_hanging_endpoint_costs_one_short_wait_for_the_whole_compare_page(app_env):
    app_env.delay_first_byte(30, times=1)  # longer than the 10 s read timeout
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page("views/compare.py").run()
    assert not at.exception, at.exception
    assert "127.0.0.1 did not answer in time." in sidebar_errors(at)
    assert listings(app_env) == 1  # the sidebar and both panes: one wait, not three
    at.run()
    assert listings(app_env) == 1


def test_a_different_key_never_gets_the_list_read_with_another_key(app_env, fresh_app):
    app_env.require_key("sk-test-secret-key-98765")
    first = start()
    assert first.sidebar.selectbox(key="model").value == "fake-model"
    fresh_app.setenv("EGP_API_KEY", "someone-elses-key")  # same connection id and address, other key
    other = start()
    assert "rejected the API key" in sidebar_errors(other)
    assert other.chat_input[0].disabled
