"""Candidates and token probabilities are kept with the conversation: in the store, and through a
JSON export and import."""

from __future__ import annotations

from egp_core.store import Store, export_conversation_json, import_json

LOGPROBS = [["Blue", -0.1, [["Blue", -0.1], ["Red", -2.4]]]]


def test_candidates_keep_their_pick_and_probabilities_through_export_and_import(store: Store) -> None:
    conv = store.create_conversation("alice", "Colours")
    store.add_message(conv, "user", "A colour?")
    ids = [store.add_message(conv, "assistant", text, pane=i, details={"chosen": i == 0})
           for i, text in enumerate(["Blue", "Red"])]
    store.update_message(ids[0], details={"logprobs": LOGPROBS})  # merged with what is there
    store.update_message(ids[0], details={"chosen": False})
    store.update_message(ids[1], details={"chosen": True})
    answers = [m for m in store.messages(conv) if m.role == "assistant"]
    assert [m.details for m in answers] == [{"chosen": False, "logprobs": LOGPROBS}, {"chosen": True}]
    assert import_json(store, export_conversation_json(store, conv, owner="alice"), "bob") == 1
    copy = store.list_conversations("bob")[0]
    again = [(m.pane, m.text, m.details) for m in store.messages(copy.id) if m.role == "assistant"]
    assert again == [(0, "Blue", {"chosen": False, "logprobs": LOGPROBS}), (1, "Red", {"chosen": True})]
