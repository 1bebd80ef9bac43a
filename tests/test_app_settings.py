"""The settings page under AppTest: connections (list, add, test, remove) and the price table.

Real HTTP on 127.0.0.1: the fake EGP server, the fake OpenAI-compatible server, and a closed port.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from egp_core.pricing import DEFAULT_PRICES
from egp_core.store import open_store
from tests.fake_openai import FakeOpenAI

APP = str(Path(__file__).resolve().parents[1] / "app.py")
SETTINGS = "views/settings.py"
EGP_KEY = "egp-env-key-0123456789-WXYZ"
SECRET_KEY = "sk-secrets-toml-key-abcdef-QRST"
OPENAI_KEY = "sk-typed-in-page-key-9876-LMNO"
REJECTED = "The server was reached but rejected the API key. Check the key (and the account id)."


@pytest.fixture
def fake_openai():
    with FakeOpenAI() as server:
        yield server


@pytest.fixture
def app_env(fresh_app, fake_egp):
    """The app pointed at the fake EGP server (key from the environment), its own history folder."""
    fresh_app.setenv("EGP_ENDPOINT_URL", fake_egp.base_url)
    fresh_app.setenv("EGP_API_KEY", EGP_KEY)
    fake_egp.require_key(EGP_KEY).models(["fake-model", "fake-model-large"])
    return fake_egp


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def settings_page(secrets: dict | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    if secrets:
        at.secrets.update(secrets)
    at.run()
    at.switch_page(SETTINGS).run()
    assert not at.exception, at.exception
    return at


def texts(at: AppTest) -> list[str]:
    """Every text the page shows (main area and sidebar)."""
    found = []
    for kind in ("markdown", "caption", "success", "error", "warning", "info", "code", "title", "subheader"):
        found += [str(e.value) for e in getattr(at, kind)]
    for kind in ("text_input",):
        found += [str(e.value) for e in getattr(at, kind)]
    return found


def click(at: AppTest, label: str, key_part: str = "") -> AppTest:
    button = next(b for b in at.button if b.label == label and key_part in (b.key or ""))
    button.click().run()
    assert not at.exception, at.exception
    return at


def add(at: AppTest, kind: str, name: str, url: str, key: str = "", account: str = "") -> AppTest:
    at.radio(key="add-kind").set_value(kind)
    at.text_input(key="add-name").input(name)
    at.text_input(key="add-url").input(url)
    at.text_input(key="add-key").input(key)
    at.text_input(key="add-account").input(account)
    return click(at, "Test and add")


def cards(at: AppTest) -> list[str]:
    return [m.value for m in at.markdown if m.value.startswith("**") and "`" in m.value]


# ---- the list ------------------------------------------------------------------------------------


def test_connections_from_env_and_secrets_are_listed_with_masked_keys(app_env, fake_openai):
    secrets = {"connections": {"vllm": {"kind": "openai", "base_url": fake_openai.base_url + "/v1",
                                        "api_key": SECRET_KEY, "name": "Team vLLM"},
                               "broken": {"kind": "openai", "base_url": "gpu-box:8000"}}}
    at = settings_page(secrets)
    shown = cards(at)
    assert any("**Team vLLM**" in c and fake_openai.base_url in c for c in shown)
    assert any("**EGP workspace**" in c and app_env.base_url in c for c in shown)
    caps = [c.value for c in at.caption]
    assert any("key: ••••QRST" in c and "from: set up by whoever runs this app" in c for c in caps)
    assert any("key: ••••WXYZ" in c and "from: set up by whoever runs this app" in c for c in caps)
    assert any("connections.broken" in w.value and "http://" in w.value for w in at.warning)
    everything = " ".join(texts(at))
    assert SECRET_KEY not in everything and EGP_KEY not in everything
    assert SECRET_KEY[:-4] not in everything and EGP_KEY[:-4] not in everything


def test_a_bad_url_is_refused_with_a_friendly_sentence(app_env):
    at = settings_page()
    before = len(cards(at))
    at = add(at, "openai", "My server", "localhost:8000")
    assert [e.value for e in at.error] == [
        "The address must start with http:// or https:// and name a server, for example http://localhost:8000."
    ]
    assert len(cards(at)) == before
    assert at.text_input(key="add-url").value == "localhost:8000"  # kept, so it can be corrected
    at = add(at, "egp", "Empty", "  ")
    assert at.error[0].value.startswith("Enter the server address")


def test_add_a_server_test_it_and_remove_it(app_env, fake_openai):
    fake_openai.require_key(OPENAI_KEY).models(["served-a", "served-b", "served-c"])
    at = settings_page()
    at = add(at, "openai", "My vLLM", fake_openai.base_url + "/v1", OPENAI_KEY)
    assert not at.error
    assert any(s.value.startswith("Added My vLLM (OpenAI-compatible server, kept in this browser session): "
                                  "it answered with 3 models.") for s in at.success)
    assert any("**My vLLM**" in c for c in cards(at))
    assert any("key: ••••LMNO" in c.value and "added here" in c.value for c in at.caption)
    # The form is emptied: the key is not kept in a widget.
    assert at.text_input(key="add-key").value == "" and at.text_input(key="add-url").value == ""
    assert OPENAI_KEY not in " ".join(texts(at))

    at = click(at, "Test connection", "session-my-vllm")
    ok = [s.value for s in at.success]
    assert any(s.startswith("Connected in ") and s.endswith(" ms · 3 models found.") for s in ok), ok
    assert any("served-a, served-b, served-c" in c.value for c in at.caption)
    assert fake_openai.requests[-1]["path"] == "/v1/models"
    assert fake_openai.requests[-1]["headers"].get("Authorization") == f"Bearer {OPENAI_KEY}"

    at = click(at, "Remove", "session-my-vllm")
    assert not any("**My vLLM**" in c for c in cards(at))


def test_test_connection_against_the_fake_egp_server(app_env):
    at = click(settings_page(), "Test connection", "env-egp")
    assert not at.error
    assert any(s.value.endswith(" ms · 2 models found.") for s in at.success)
    assert app_env.requests[-1].headers.get("x-api-key") == EGP_KEY


def test_a_wrong_key_gives_the_friendly_error_and_detail(app_env, fake_openai):
    fake_openai.require_key(OPENAI_KEY)
    wrong = "sk-wrong-key-typed-here-0000"
    at = add(settings_page(), "openai", "Wrong key", fake_openai.base_url, wrong)
    assert [e.value for e in at.error] == ["Not added: " + REJECTED]  # tested before it is added
    assert not any("**Wrong key**" in c for c in cards(at))
    assert any(x.label == "Technical detail" for x in at.expander)
    assert any("AuthenticationError" in c.value and "401" in c.value for c in at.code)
    assert wrong not in " ".join(texts(at))


def test_a_wrong_key_on_the_egp_workspace(app_env, monkeypatch):
    monkeypatch.setenv("EGP_API_KEY", "egp-not-the-right-key-1234")
    at = click(settings_page(), "Test connection", "env-egp")
    assert [e.value for e in at.error] == [REJECTED]


def test_an_unreachable_host(app_env):
    port = free_port()
    at = add(settings_page(), "egp", "Nowhere", f"http://127.0.0.1:{port}", "some-key-abcdefgh")
    assert len(at.error) == 1 and f"127.0.0.1 refused the connection on port {port}" in at.error[0].value
    assert any(x.label == "Technical detail" for x in at.expander)
    assert not any("**Nowhere**" in c for c in cards(at))
    assert at.text_input(key="add-url").value == f"http://127.0.0.1:{port}"  # kept, to be corrected


def test_the_kind_is_found_from_the_address(app_env, fake_openai):
    at = add(settings_page(), "auto", "", fake_openai.base_url + "/v1")  # an OpenAI-style address
    assert any("(OpenAI-compatible server, " in s.value for s in at.success)
    at = add(at, "auto", "Mine", app_env.base_url, EGP_KEY)  # says nothing: tried as a workspace first
    assert any(s.value.startswith("Added Mine (EGP workspace, ") for s in at.success)


def test_a_connection_kept_for_next_time_is_in_a_file_only_its_owner_reads(app_env, fake_openai, tmp_path):
    fake_openai.require_key(OPENAI_KEY)
    at = settings_page()
    at.checkbox(key="add-keep").check()
    at = add(at, "openai", "Kept vLLM", fake_openai.base_url, OPENAI_KEY)
    assert any("kept on this computer for next time" in s.value for s in at.success)
    saved = tmp_path / "connections.toml"
    assert saved.stat().st_mode & 0o777 == 0o600
    assert OPENAI_KEY in saved.read_text()
    later = settings_page()  # another session, another day
    assert any("**Kept vLLM**" in c for c in cards(later))
    assert any("kept on this computer" in c.value and "••••LMNO" in c.value for c in later.caption)
    assert OPENAI_KEY not in " ".join(texts(later))
    history = (tmp_path / "history.db").read_bytes()
    assert OPENAI_KEY.encode() not in history  # never in the history database
    click(later, "Remove", "saved-kept-vllm")
    assert not saved.exists() and not any("**Kept vLLM**" in c for c in cards(later))


def test_in_team_mode_nothing_is_kept_on_disk(app_env):
    at = AppTest.from_file(APP, default_timeout=60)
    at.secrets["auth"] = {"redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "s" * 32,
                          "client_id": "id", "client_secret": "x",
                          "server_metadata_url": "https://example.com/.well-known/openid-configuration"}
    at.user = {"is_logged_in": True, "email": "ann@example.com"}
    at.run()
    at.switch_page(SETTINGS).run()
    assert not at.exception, at.exception
    assert at.text_input(key="add-url") is not None
    assert not [c for c in at.checkbox if c.key == "add-keep"]


def test_a_connection_added_here_is_used_in_the_chat_sidebar(app_env, fake_openai):
    fake_openai.reply("Hi from vLLM.")
    at = add(settings_page(), "openai", "My vLLM", fake_openai.base_url, "")
    at.switch_page("views/chat.py").run()
    at.selectbox(key="connection_id").set_value("session-my-vllm").run()
    assert at.selectbox(key="model").value == "fake-gpt"
    at.chat_input[0].set_value("Hello?").run()
    assert not at.exception, at.exception
    assert "Hi from vLLM." in [m.value for m in at.markdown]
    assert fake_openai.requests[-1]["path"] == "/v1/chat/completions"


# ---- each connection remembers its model and parameters -------------------------------------------


def test_switching_connections_restores_their_model_and_parameters(app_env, fake_openai, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", fake_openai.base_url)
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    assert at.selectbox(key="connection_id").value == "env-egp"
    at.selectbox(key="model").set_value("fake-model-large").run()
    at.slider(key="temperature").set_value(0.2).run()
    at.number_input(key="max_tokens").set_value(100).run()

    at.selectbox(key="connection_id").set_value("env-openai").run()
    assert at.selectbox(key="model").value == "fake-gpt"
    at.selectbox(key="model").set_value("fake-llama-3-8b").run()
    at.slider(key="temperature").set_value(0.9).run()
    at.number_input(key="max_tokens").set_value(300).run()

    at.selectbox(key="connection_id").set_value("env-egp").run()
    assert not at.exception, at.exception
    assert at.selectbox(key="model").value == "fake-model-large"
    assert at.slider(key="temperature").value == pytest.approx(0.2)
    assert at.number_input(key="max_tokens").value == 100

    at.selectbox(key="connection_id").set_value("env-openai").run()
    assert at.selectbox(key="model").value == "fake-llama-3-8b"
    assert at.slider(key="temperature").value == pytest.approx(0.9)
    assert at.number_input(key="max_tokens").value == 300


# ---- prices ---------------------------------------------------------------------------------------


def price_table(at: AppTest):
    (editor,) = [d for d in at.dataframe if (d.key or "").startswith("prices-editor-")]
    return editor.value


def edit_prices(at: AppTest, edited=None, added=None, deleted=None) -> AppTest:
    """Seed the data editor's edit state (as the browser would send it), then Save."""
    (editor,) = [d for d in at.dataframe if (d.key or "").startswith("prices-editor-")]
    at.session_state[editor.key] = {"edited_rows": edited or {}, "added_rows": added or [],
                                    "deleted_rows": deleted or []}
    at.run()
    return click(at, "Save prices")


def row_of(table, model: str) -> int:
    return int(table.index[table["Model"] == model][0])


def test_the_price_table_shows_the_defaults_and_local_model_is_free(app_env):
    table = price_table(settings_page())
    assert set(DEFAULT_PRICES) <= set(table["Model"])
    gpt = table[table["Model"] == "gpt-4o"].iloc[0]
    assert (gpt["Prompt $ / 1K"], gpt["Completion $ / 1K"]) == (0.0025, 0.01)
    local = table[table["Model"] == "SmolLM2-135M-Instruct"].iloc[0]
    assert (local["Prompt $ / 1K"], local["Completion $ / 1K"]) == (0.0, 0.0)


def test_edit_add_and_remove_prices(app_env, tmp_path):
    at = settings_page()
    table = price_table(at)
    at = edit_prices(at, edited={row_of(table, "gpt-4o"): {"Prompt $ / 1K": 0.5}},
                     added=[{"Model": "fake-model", "Prompt $ / 1K": 1.0, "Completion $ / 1K": 2.0}])
    assert any(s.value.startswith("Prices saved.") for s in at.success)
    store = open_store()
    try:
        assert store.get_prices() == {"gpt-4o": (0.5, 0.01), "fake-model": (1.0, 2.0)}
        table = price_table(at)
        assert table[table["Model"] == "fake-model"].iloc[0]["Completion $ / 1K"] == 2.0

        # Deleting a default's row puts the default back; deleting an added row forgets it.
        at = edit_prices(at, deleted=[row_of(table, "gpt-4o"), row_of(table, "fake-model")])
        assert store.get_prices() == {}
        table = price_table(at)
        assert table[table["Model"] == "gpt-4o"].iloc[0]["Prompt $ / 1K"] == 0.0025
        assert "fake-model" not in set(table["Model"])
    finally:
        store.close()


def test_a_negative_price_is_refused_and_nothing_is_saved(app_env):
    at = settings_page()
    table = price_table(at)
    at = edit_prices(at, edited={row_of(table, "gpt-4"): {"Prompt $ / 1K": 0.1}},
                     added=[{"Model": "cheap", "Prompt $ / 1K": -1.0, "Completion $ / 1K": 0.0}])
    assert [e.value for e in at.error] == ["The prices for cheap cannot be negative."]
    store = open_store()
    try:
        assert store.get_prices() == {}
    finally:
        store.close()


def test_the_chat_receipt_uses_the_saved_price(app_env):
    app_env.reply(text="Priced answer.", usage={"prompt": 1000, "completion": 2000, "total": 3000})
    store = open_store()
    try:
        store.set_price("fake-model", 1.0, 2.0)
    finally:
        store.close()
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.chat_input[0].set_value("How much?").run()
    receipt = next(c.value for c in at.caption if "Priced" not in c.value and "3,000 tokens" in c.value)
    assert "cost $5.00" in receipt  # 1 x $1 + 2 x $2


@pytest.mark.parametrize("page", [SETTINGS, "views/usage.py"])
def test_a_visit_to_settings_or_usage_keeps_the_sidebar_choices(app_env, fake_openai, monkeypatch, page):
    monkeypatch.setenv("OPENAI_BASE_URL", fake_openai.base_url)
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.selectbox(key="connection_id").set_value("env-openai").run()
    at.selectbox(key="model").set_value("fake-llama-3-8b").run()
    at.slider(key="temperature").set_value(0.2).run()
    at.switch_page(page).run()
    at.switch_page("views/chat.py").run()
    assert not at.exception, at.exception
    assert at.selectbox(key="connection_id").value == "env-openai"
    assert at.selectbox(key="model").value == "fake-llama-3-8b"
    assert at.slider(key="temperature").value == pytest.approx(0.2)


def test_the_built_in_local_model_is_listed_and_tested(app_env, monkeypatch):
    from egp_core.local.launcher import ensure_local_server

    monkeypatch.setenv("EGP_PLAYGROUND_LOCAL", "1")
    at = settings_page()
    assert any(c.startswith("**Local model") for c in cards(at)), [m.value for m in at.markdown]
    assert any(c.value.startswith("Kind: Local model") and "from: built in" in c.value for c in at.caption)
    defaults = [c.value for c in at.caption if c.value.startswith("Settings a request leaves out:")]
    assert len(defaults) == 1 and "repetition penalty of 1.18" in defaults[0] and "allowed length 3" in defaults[0]
    assert ensure_local_server().wait_ready(120)  # the app's own server (one per process)
    at = click(at, "Test connection", "test-local")
    assert not at.error, [e.value for e in at.error]
    assert any(s.value.startswith("Connected in ") and " model" in s.value for s in at.success)
    assert any("SmolLM2" in c.value or "smollm2" in c.value.lower() for c in at.caption)
