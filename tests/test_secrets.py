"""No configured API key ever shows up: not in a page, a log line, an export or a database row.

Three keys, one per way of configuring a connection: the environment (EGP workspace on the fake
EGP server), a secrets.toml section (OpenAI-compatible, the fake OpenAI server) and one typed in
the settings page (another fake OpenAI server). The app chats through each, then every page,
every log record, every export and every byte of the database is searched for the keys.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from egp_core.store import open_store
from egp_core.store.exchange import export_all_json, export_conversation_json, export_conversation_markdown
from tests.fake_openai import FakeOpenAI
from tests.plugins.app import wait_idle

APP = str(Path(__file__).resolve().parents[1] / "app.py")
PAGES = ("views/chat.py", "views/compare.py", "views/usage.py", "views/settings.py")
ENV_KEY = "egp-env-SECRET-key-1111-aaaa-ENVK"
TOML_KEY = "sk-toml-SECRET-key-2222-bbbb-TOML"
TYPED_KEY = "sk-typed-SECRET-key-3333-cccc-TYPD"
KEYS = (ENV_KEY, TOML_KEY, TYPED_KEY)
OWNER = "local"


def leaks(text: str) -> list[str]:
    """The keys (or their secret part: all but the last 4 characters) found in `text`."""
    return [k for k in KEYS if k in text or k[:-4] in text]


def element_texts(node) -> Iterator[str]:
    """Everything an element tree holds: each element's protobuf, in text form, recursively."""
    proto = getattr(node, "proto", None)
    if proto is not None:
        yield str(proto)
        yield repr(proto.SerializeToString())
    for child in getattr(node, "children", {}).values():
        yield from element_texts(child)


def page_text(at: AppTest) -> str:
    return "\n".join([*element_texts(at.main), *element_texts(at.sidebar)])


@pytest.fixture
def servers(fake_egp) -> Iterator[tuple]:
    with FakeOpenAI() as toml_server, FakeOpenAI() as typed_server:
        fake_egp.require_key(ENV_KEY).models(["egp-model"])
        toml_server.require_key(TOML_KEY).models(["toml-model"])
        typed_server.require_key(TYPED_KEY).models(["typed-model"])
        yield fake_egp, toml_server, typed_server


@pytest.fixture
def app_env(fresh_app, servers):
    fresh_app.setenv("EGP_ENDPOINT_URL", servers[0].base_url)
    fresh_app.setenv("EGP_API_KEY", ENV_KEY)
    return servers


def chat_through(at: AppTest, connection_id: str, prompt: str) -> None:
    at.switch_page("views/chat.py").run()
    at.selectbox(key="connection_id").set_value(connection_id).run()
    at.chat_input[0].set_value(prompt).run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]


def database_text(path: Path) -> str:
    """Every row of every table, plus the raw bytes of the database files."""
    parts = []
    with sqlite3.connect(path) as db:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        assert {"conversations", "messages", "prices"} <= set(tables)
        for table in tables:
            parts += [repr(row) for row in db.execute(f'SELECT * FROM "{table}"')]  # noqa: S608 - names from sqlite
    for file in path.parent.glob(path.name + "*"):  # history.db, -wal, -shm
        parts.append(file.read_bytes().decode("latin-1"))
    return "\n".join(parts)


def test_no_page_log_export_or_row_holds_a_key(app_env, tmp_path, caplog):
    fake_egp, toml_server, typed_server = app_env
    caplog.set_level(logging.DEBUG)  # every logger, every level
    fake_egp.reply(text="From the workspace.")
    toml_server.reply("From the toml server.")
    typed_server.reply("From the typed server.")

    at = AppTest.from_file(APP, default_timeout=60)
    at.secrets["connections"] = {"toml_vllm": {"kind": "openai", "base_url": toml_server.base_url,
                                               "api_key": TOML_KEY, "name": "Toml vLLM"}}
    at.run()
    at.switch_page("views/settings.py").run()
    at.radio(key="add-kind").set_value("openai")
    at.text_input(key="add-name").input("Typed server")
    at.text_input(key="add-url").input(typed_server.base_url)
    at.text_input(key="add-key").input(TYPED_KEY)
    at.button(key=next(b.key for b in at.button if b.label == "Test and add")).click().run()
    assert not at.error and not at.exception
    for b in [b for b in at.button if b.label == "Test connection"]:
        at.button(key=b.key).click().run()
        assert not at.error, [e.value for e in at.error]
    assert len([s for s in at.success if s.value.startswith("Connected in ")]) == 1
    shown = {"settings after tests": page_text(at)}

    chat_through(at, "env-egp", "Hello workspace")
    chat_through(at, "secrets-toml-vllm", "Hello toml server")
    chat_through(at, "session-typed-server", "Hello typed server")
    assert "From the typed server." in [m.value for m in at.markdown]
    # Each server got its own key, so each key was really used.
    assert fake_egp.requests[-1].headers.get("x-api-key") == ENV_KEY
    assert toml_server.requests[-1]["headers"]["Authorization"] == f"Bearer {TOML_KEY}"
    assert typed_server.requests[-1]["headers"]["Authorization"] == f"Bearer {TYPED_KEY}"
    # A wrong key's error (and its technical detail) does not echo the key either.
    typed_server.require_key("sk-some-other-key-entirely-0000")
    at.chat_input[0].set_value("Now with a refused key").run()
    assert [e.value for e in at.error] == ["The API key was rejected. Check it in Settings."]

    shown["chat, with the error"] = page_text(at)
    for page in PAGES:
        at.switch_page(page).run()
        assert not at.exception, at.exception
        shown[page] = page_text(at)
    for where, text in shown.items():
        found = leaks(text)
        assert text and not found, f"{found} shown on {where}"
    # The page did show the masked forms, so the check above looked at the right text.
    assert "••••ENVK" in shown["views/settings.py"] and "••••TOML" in shown["views/settings.py"]
    assert "••••TYPD" in shown["views/settings.py"]

    logged = "\n".join(f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in caplog.records) + caplog.text
    assert "/v1/chat/completions" in logged, "the HTTP requests' debug lines were captured"
    assert not leaks(logged)

    store = open_store()
    try:
        conversations = store.list_conversations(OWNER)
        assert sum(len(store.messages(c.id)) for c in conversations) >= 8
        exports = [export_all_json(store, OWNER)]
        for conv in conversations:
            exports += [export_conversation_json(store, conv.id), export_conversation_markdown(store, conv.id)]
        assert any("From the toml server." in e for e in exports)
        assert not leaks("\n".join(exports))
    finally:
        store.close()

    rows = database_text(tmp_path / "history.db")
    assert "From the typed server." in rows
    assert not leaks(rows)


# ---- the real app: a `streamlit run` process, headless Chromium, every websocket frame -------------


def until(condition, patience: float = 30) -> None:
    """Poll (a patience limit that only stops a hung test, not a timed assertion)."""
    deadline = time.monotonic() + patience
    while not condition():
        assert time.monotonic() < deadline, "gave up waiting"
        time.sleep(0.05)


def ask(page, text: str) -> None:
    box = page.locator("[data-testid='stChatInputTextArea']")
    box.fill(text)
    box.press("Enter")


def pick_connection(page, name: str) -> None:
    page.locator("[data-testid='stSelectbox']").filter(has_text="Connection").click()
    page.get_by_role("option", name=name).click()
    wait_idle(page)


@pytest.mark.browser
def test_the_running_app_never_sends_or_logs_a_key(servers, app_factory, page, tmp_path, monkeypatch):
    fake_egp, toml_server, typed_server = servers
    fake_egp.reply(text="From the workspace.")
    typed_server.reply("From the typed server.")
    secrets = tmp_path / "secrets.toml"
    secrets.write_text(
        f'[connections.toml_vllm]\nkind = "openai"\nname = "Toml vLLM"\n'
        f'base_url = "{toml_server.base_url}"\napi_key = "{TOML_KEY}"\n'
    )
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "EGP_PLAYGROUND_DB_URL", "EGP_PLAYGROUND_LOCAL"):
        monkeypatch.delenv(name, raising=False)
    app = app_factory(env={
        "EGP_ENDPOINT_URL": fake_egp.base_url, "EGP_API_KEY": ENV_KEY,
        "STREAMLIT_SECRETS_FILES": str(secrets), "STREAMLIT_LOGGER_LEVEL": "debug",
    })
    frames: list[str] = []

    def on_socket(ws) -> None:
        ws.on("framereceived", lambda payload: frames.append(
            payload.decode("latin-1") if isinstance(payload, bytes) else payload))
        ws.on("framesent", lambda payload: None)

    page.on("websocket", on_socket)
    page.goto(app.url + "/settings")
    wait_idle(page)
    page.get_by_text("Toml vLLM").wait_for()
    page.get_by_label("OpenAI-compatible server (vLLM, Ollama, llama.cpp)").check(force=True)
    page.get_by_role("textbox", name="Name").fill("Typed server")
    page.get_by_role("textbox", name="Address").fill(typed_server.base_url)
    page.get_by_role("textbox", name="API key").fill(TYPED_KEY)
    page.get_by_role("button", name="Test and add").click()
    page.get_by_text("Added Typed server (").wait_for()
    wait_idle(page)
    def model_listings() -> int:
        return (len([r for r in fake_egp.requests if "models" in r.path]) + len(toml_server.requests)
                + len(typed_server.requests))

    tests = page.get_by_role("button", name="Test connection")
    for i in range(tests.count()):
        before = model_listings()
        tests.nth(i).click()
        until(lambda n=before: model_listings() > n)
        wait_idle(page)
    assert len(toml_server.requests) == 1 and len(typed_server.requests) == 2  # tested when added, and here
    page.get_by_text("Connected in").first.wait_for()

    page.get_by_role("link", name="Chat").click()
    wait_idle(page)
    pick_connection(page, "EGP workspace")
    ask(page, "Hello workspace")
    page.get_by_text("From the workspace.").wait_for()
    wait_idle(page)
    pick_connection(page, "Typed server")
    ask(page, "Hello typed server")
    page.get_by_text("From the typed server.").wait_for()
    wait_idle(page)
    assert typed_server.requests[-1]["headers"]["Authorization"] == f"Bearer {TYPED_KEY}"

    html = {}
    shows = {"Chat": "From the typed server.", "Compare": "Compare models", "Evaluate": "Start with a dataset",
             "Usage": "Busiest conversations",
             "Settings": "••••TYPD"}
    for name, text in shows.items():
        page.get_by_role("link", name=name).click()
        page.get_by_text(text).first.wait_for()
        wait_idle(page)
        html[name] = page.content()
    assert "••••TYPD" in html["Settings"] and "••••TOML" in html["Settings"] and "••••ENVK" in html["Settings"]
    for name, text in html.items():
        assert not leaks(text), f"a key is in the {name} page"
    sent = "\n".join(frames)
    assert "From the typed server." in sent
    assert not leaks(sent), "a key was sent to the browser"

    app.stop()
    log = app.log_path.read_text(errors="replace")
    assert "Runtime state:" in log  # a debug-level line: the process really logged at debug level
    assert not leaks(log)
    rows = database_text(tmp_path / "history.db")
    assert "From the typed server." in rows and not leaks(rows)
