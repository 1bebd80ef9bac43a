"""Fixtures and helpers for AppTest: a fresh app state, the app pointed at the fake EGP server.

`fresh_app` gives a clean slate (own history folder, no configuration from the
environment, empty Streamlit caches, no answer left streaming) and yields the
monkeypatch to configure it; `app_env` is that, pointed at a FakeEGP (model
"fake-model"). `start()`, `send()`, `markdown()`, `captions()` drive and read
an AppTest of app.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

SECRET = "sk-test-secret-key-98765"
APP = str(Path(__file__).resolve().parents[2] / "app.py")


CONFIGURATION = (
    "EGP_ENDPOINT_URL", "EGP_API_KEY", "EGP_ACCOUNT_ID", "EGP_PLAYGROUND_DB_URL", "EGP_PLAYGROUND_LOCAL",
    "EGP_LOCAL_MODELS", "EGP_LOCAL_API_KEY", "OPENAI_API_KEY", "OPENAI_BASE_URL", "SGP_API_KEY",
    "SGP_ACCOUNT_ID", "SGP_CLIENT_BASE_URL",
)
"""Environment variables the app reads its connections and storage from."""


@pytest.fixture
def fresh_app(tmp_path, monkeypatch):
    """A clean app state in this process; yields the monkeypatch to configure it."""
    for name in CONFIGURATION:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("EGP_PLAYGROUND_DATA", str(tmp_path))
    st.cache_resource.clear()
    st.cache_data.clear()
    yield monkeypatch
    from ui import services

    for gen in services.registry().running():  # never leave a stalled stream behind
        gen.cancel()
    st.cache_resource.clear()
    st.cache_data.clear()


@pytest.fixture
def app_env(fresh_app, fake_egp):
    """The app pointed at the fake EGP server, with the key in the environment."""
    fresh_app.setenv("EGP_ENDPOINT_URL", fake_egp.base_url)
    fresh_app.setenv("EGP_API_KEY", SECRET)
    fake_egp.models(["fake-model"])
    return fake_egp


def start(page: str = APP) -> AppTest:
    at = AppTest.from_file(page, default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    return at


def send(at: AppTest, text: str) -> AppTest:
    at.chat_input[0].set_value(text).run()
    assert not at.exception, at.exception
    return at


def markdown(at: AppTest) -> list[str]:
    """The text of every Markdown element and of every `st.text` (questions are shown as typed)."""
    return [m.value for m in at.markdown] + [t.value for t in at.text]


def captions(at: AppTest) -> list[str]:
    return [c.value for c in at.caption] + [c.value for c in at.sidebar.caption]


def generation_bodies(fake) -> list[dict]:
    return [r.body for r in fake.requests if r.path.endswith("completions")]
