"""Property: any mutation of a valid export either imports exactly what the file says, or is refused
with a plain message and writes nothing. (SQLite; the store's own tests cover PostgreSQL.)"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from egp_core.store import ImportFailed, export_all_json, import_json, open_store
from egp_core.store.store import clean_text, clean_title
from tests.test_store import dump_database
from tests.test_store_exchange import _fill


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    store = open_store(f"sqlite:///{tmp_path_factory.mktemp('mutations') / 'history.db'}")
    _fill(store, owner="source")
    yield store, json.loads(export_all_json(store, "source"))
    store.close()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**20, 10**20) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20) | st.sampled_from(["", "user", "assistant", "streaming", "2024-02-30T25:00:00",
                                               "2024-01-01T10:00:00+05:00", "compare", "\u0000"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)


def _paths(value: Any, path: tuple = ()) -> list[tuple]:
    """Every place in a JSON document, as a tuple of keys and indexes."""
    out = [path]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*path, i))
    return out


def _mutate(doc: Any, path: tuple, action: str, new: Any) -> Any:
    if not path:
        return new
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    last = path[-1]
    if action == "delete":
        del parent[last]
    elif action == "replace":
        parent[last] = new
    elif isinstance(parent, dict):  # "add": a key the format does not know
        parent[f"extra-{last}"] = new
    else:
        parent.insert(last, new)
    return doc


@st.composite
def mutated_files(draw, original: dict) -> bytes:
    kind = draw(st.sampled_from(["tree", "tree", "tree", "truncate", "byte"]))
    raw = json.dumps(original).encode()
    if kind == "truncate":
        return raw[: draw(st.integers(0, len(raw) - 1))]
    if kind == "byte":
        pos = draw(st.integers(0, len(raw) - 1))
        return raw[:pos] + bytes([draw(st.integers(0, 255))]) + raw[pos + 1:]
    doc = json.loads(raw)
    path = draw(st.sampled_from(_paths(doc)))
    action = draw(st.sampled_from(["replace", "delete", "add"] if path else ["replace"]))
    return json.dumps(_mutate(doc, path, action, draw(json_values))).encode()


def _expected(conv: dict) -> tuple:
    """What an imported conversation must hold, from the file's own words (as the import cleans them)."""
    return (clean_title(conv["title"]), clean_text(conv.get("kind", "chat")) or "chat", tuple(
        (m["role"], clean_text(m["text"]), "interrupted" if m.get("status") == "streaming" else m.get("status", "complete"),
         clean_text(m.get("model")), m.get("pane"))
        for m in conv["messages"]))


def _imported(store, owner: str) -> list[tuple]:
    return [(c.title, c.kind, tuple((m.role, m.text, m.status, m.model, m.pane) for m in store.messages(c.id)))
            for c in store.list_conversations(owner, limit=10**6)]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_mutated_export_imports_exactly_or_writes_nothing(db, data):
    store, original = db
    file = data.draw(mutated_files(original))
    owner = f"mutant-{uuid.uuid4().hex}"
    before = dump_database(store)
    try:
        count = import_json(store, file, owner)
    except ImportFailed as refused:
        assert refused.user_message.endswith("Nothing was imported.")
        assert dump_database(store) == before
        return
    doc = json.loads(file.decode("utf-8-sig"))
    assert count == len(doc["conversations"])
    assert sorted(_imported(store, owner), key=repr) == sorted((_expected(c) for c in doc["conversations"]), key=repr)
