"""A NUL character in a looked-up id, token or search (a link's `%00`) finds nothing on SQLite and on
PostgreSQL alike; PostgreSQL cannot hold the character and used to fail the whole page with an error."""

from __future__ import annotations

from egp_core.evaluate.records import Records
from egp_core.prompts import PromptContent
from egp_core.store.prompts import PromptLibrary
from egp_core.voting import DemoDay


def test_lookups_with_a_nul_find_nothing_and_raise_nothing(store):
    conv = store.create_conversation("ann", "Ann's chat")
    token = store.create_share(conv, "ann")
    day = DemoDay(store)
    demo = day.start_demo("ann", "Ann's demo")
    library = PromptLibrary(store)
    prompt = library.create("ann", PromptContent(name="Ann's prompt", template="Hi"))
    odd = "\x00"
    assert store.get_conversation(conv + odd, owner="ann") is None
    assert store.get_conversation(odd) is None
    assert store.conversation_for_share(token + odd) is None and store.conversation_for_share(odd) is None
    assert store.list_conversations("ann", query="Ann" + odd) == [] and store.list_conversations("ann" + odd) == []
    assert Records(store).run_for_share(odd) is None and Records(store).get_run(odd, owner="ann") is None
    assert day.rounds.demo_for_share(odd) is None and day.rounds.demo(demo.id + odd, owner="ann") is None
    assert library.for_share(odd) is None and library.get(prompt.prompt_id + odd, "ann") is None
    assert store.get_conversation(conv, owner="ann").title == "Ann's chat"  # the connection still works
