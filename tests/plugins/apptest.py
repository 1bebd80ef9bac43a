"""Fixture and helpers for AppTest: the app pointed at the fake EGP server, fresh history.

`app_env` gives the running FakeEGP (its model list: "fake-model"); `start()`,
`send()`, `markdown()`, `captions()` drive and read an AppTest of app.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

SECRET = "sk-test-secret-key-98765"
APP = str(Path(__file__).resolve().parents[2] / "app.py")


@pytest.fixture
def app_env(fake_egp, tmp_path, monkeypatch):
    """A fresh app process state pointed at the fake server, with its own history folder."""
    monkeypatch.setenv("EGP_ENDPOINT_URL", fake_egp.base_url)
    monkeypatch.setenv("EGP_API_KEY", SECRET)
    monkeypatch.setenv("EGP_PLAYGROUND_DATA", str(tmp_path))
    for name in ("EGP_PLAYGROUND_DB_URL", "EGP_ACCOUNT_ID", "EGP_PLAYGROUND_LOCAL", "EGP_LOCAL_MODELS"):
        monkeypatch.delenv(name, raising=False)
    st.cache_resource.clear()
    st.cache_data.clear()
    fake_egp.models(["fake-model"])
    yield fake_egp
    st.cache_resource.clear()
    st.cache_data.clear()


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
    return [m.value for m in at.markdown]


def captions(at: AppTest) -> list[str]:
    return [c.value for c in at.caption] + [c.value for c in at.sidebar.caption]


def generation_bodies(fake) -> list[dict]:
    return [r.body for r in fake.requests if r.path.endswith("completions")]
