"""Demo day rules on SQLite and PostgreSQL: codes, one vote per browser, verdicts, leaderboard."""

from __future__ import annotations

import threading

import sqlalchemy as sa

from egp_core.store.migrations import migrate
from egp_core.voting import (
    DemoDay,
    describe,
    identical_panes,
    outcome_from_tally,
    short_names,
    verdict_sentence,
)

SPEC_A = {"model": "SmolLM2", "connection": "Local model", "parameters": {"temperature": 0.5, "max_tokens": 512}}
SPEC_B = {"model": "SmolLM2", "connection": "Local model", "parameters": {"temperature": 0.9, "max_tokens": 512}}
SPEC_C = {"model": "Llama", "connection": "Local model", "parameters": {"temperature": 0.5, "max_tokens": 512}}


def test_panes_are_named_by_what_differs():
    labels = [describe(SPEC_A), describe(SPEC_B), describe(SPEC_C)]
    assert short_names(labels) == ["SmolLM2 · temperature 0.5", "SmolLM2 · temperature 0.9", "Llama"]
    assert identical_panes([SPEC_A, SPEC_A]) and not identical_panes([SPEC_A, SPEC_B])


def test_verdict_from_tally():
    assert outcome_from_tally({}, 2) is None
    assert outcome_from_tally({"A": 3, "B": 1}, 2)["winner"] == 0
    draw = outcome_from_tally({"A": 2, "B": 2}, 2)
    assert draw["winner"] is None and draw["verdict"] == "draw"
    assert outcome_from_tally({"A": 1, "tie": 3}, 2)["winner"] is None
    assert outcome_from_tally({"bad": 2, "B": 1}, 3)["verdict"] == "bad"
    assert outcome_from_tally({"C": 5}, 2) is None  # a pane that is not there does not count
    assert "B (Llama) with 3 of 4 votes" in verdict_sentence(outcome_from_tally({"A": 1, "B": 3}, 2),
                                                              ["x", "Llama"])
    assert "1 vote)" in verdict_sentence(outcome_from_tally({"tie": 1}, 2))


def test_one_vote_per_browser_and_only_while_open(store):
    day = DemoDay(store)
    demo = day.start_demo("presenter")
    assert day.vote(demo.code, "browser-1", "A", "ip").message.startswith("Voting is closed")
    conv = store.create_conversation("presenter", "q", kind="compare")
    rnd = day.open_round(demo, conv, [SPEC_A, SPEC_C])
    assert day.vote(demo.code.lower(), "browser-1", "A", "ip").counted  # codes are case-insensitive
    second = day.vote(demo.code, "browser-1", "B", "ip")
    assert not second.counted and "already voted" in second.message and second.choice == "A"
    assert not day.vote(demo.code, "browser-2", "C", "ip").counted  # only two panes
    assert not day.vote("NOPE", "browser-2", "A", "ip").counted
    assert not day.vote(demo.code, "", "A", "ip").counted
    assert not day.vote("", "browser-2", "A", "ip").counted
    assert day.vote(demo.code, "browser-2", "tie", "ip").counted
    assert day.rounds.tally(rnd.id) == {"A": 1, "tie": 1}
    outcome = day.close(rnd.id)
    assert outcome["verdict"] == "draw"
    assert not day.vote(demo.code, "browser-3", "A", "ip").counted
    # nothing reaches the leaderboard before the names are revealed
    assert day.leaderboard() == []
    day.reveal(rnd.id)
    board = {s.contestant: s for s in day.leaderboard()}
    assert board[describe(SPEC_A)].ties == 1 and board[describe(SPEC_C)].ties == 1


def test_votes_are_never_stored_with_the_browser_id(store):
    day = DemoDay(store)
    demo = day.start_demo("p")
    day.open_round(demo, store.create_conversation("p", "q", kind="compare"), [SPEC_A, SPEC_C])
    assert day.vote(demo.code, "secret-browser-id", "A", "10.1.2.3").counted
    with store.engine.connect() as conn:
        rows = [tuple(map(str, r)) for r in conn.execute(sa.text("SELECT * FROM round_votes"))]
    assert rows and not any("secret-browser-id" in v or "10.1.2.3" in v for r in rows for v in r)


def test_concurrent_votes_are_counted_exactly(store):
    day = DemoDay(store)
    demo = day.start_demo("p")
    rnd = day.open_round(demo, store.create_conversation("p", "q", kind="compare"), [SPEC_A, SPEC_B, SPEC_C])
    results = []

    def voter(i: int) -> None:
        for attempt in range(2):  # every browser tries twice: only one counts
            results.append(day.vote(demo.code, f"browser-{i}", "ABC"[i % 3], f"ip-{i % 4}").counted)
            del attempt

    threads = [threading.Thread(target=voter, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(results) == 20
    assert sum(day.rounds.tally(rnd.id).values()) == 20


def test_a_new_round_closes_the_open_one_and_numbers_go_up(store):
    day = DemoDay(store)
    demo = day.start_demo("p")
    r1 = day.open_round(demo, store.create_conversation("p", "q1", kind="compare"), [SPEC_A, SPEC_C])
    day.vote(demo.code, "b1", "B", "ip")
    r2 = day.open_round(demo, store.create_conversation("p", "q2", kind="compare"), [SPEC_A, SPEC_C])
    assert (r1.number, r2.number) == (1, 2)
    assert day.rounds.get_round(r1.id).status == "closed"
    assert day.rounds.get_round(r1.id).outcome["winner"] == 1
    assert day.vote(demo.code, "b1", "A", "ip").counted  # a new round: a new vote
    exported = day.export_demo(demo.id)
    assert [r["number"] for r in exported["rounds"]] == [1, 2]
    assert exported["rounds"][0]["contestants"] is None  # not revealed: names stay hidden


def test_a_demo_share_link_is_its_owners_to_make_and_revoke(store):
    rounds = DemoDay(store).rounds
    demo, other = rounds.create_demo("ann"), rounds.create_demo("ann")
    assert rounds.demo_for_share("") is None and rounds.demo_for_share(None) is None
    try:
        rounds.create_share(demo.id, "bob")  # not Bob's demo
        raise AssertionError("Bob made a link to Ann's demo")
    except LookupError:
        pass
    token = rounds.create_share(demo.id, "ann")
    assert rounds.create_share(demo.id, "ann") == token  # the same link each time
    assert rounds.create_share(other.id, "ann") != token
    assert rounds.demo_for_share(token).id == demo.id and rounds.demo_for_share(f" {token} ").id == demo.id
    assert not rounds.delete_share(demo.id, "bob") and rounds.demo_for_share(token) is not None
    assert rounds.delete_share(demo.id, "ann") and not rounds.delete_share(demo.id, "ann")
    assert rounds.demo_for_share(token) is None and rounds.demo(demo.id).share_token is None


def test_presenter_vote_counts_once(store):
    day = DemoDay(store)
    conv = store.create_conversation("p", "q", kind="compare")
    assert day.presenter_vote("p", conv, [SPEC_A, SPEC_C], "B") is not None
    assert day.presenter_vote("p", conv, [SPEC_A, SPEC_C], "A") is None
    board = {s.contestant: s for s in day.leaderboard()}
    assert board[describe(SPEC_C)].wins == 1 and board[describe(SPEC_A)].losses == 1


def test_rate_limit_per_network(store, monkeypatch):
    import egp_core.voting as voting

    monkeypatch.setattr(voting, "RATE_LIMIT_PER_SOURCE", 3)
    day = DemoDay(store)
    demo = day.start_demo("p")
    day.open_round(demo, store.create_conversation("p", "q", kind="compare"), [SPEC_A, SPEC_C])
    assert all(day.vote(demo.code, f"b{i}", "A", "one-ip").counted for i in range(3))
    refused = day.vote(demo.code, "b9", "A", "one-ip")
    assert not refused.counted and "Too many votes" in refused.message
    assert day.vote(demo.code, "b9", "A", "other-ip").counted


def test_old_one_click_votes_become_rounds(db_url):
    from egp_core.store.engine import make_engine

    engine = make_engine(db_url)
    try:
        migrate(engine, target=4)
        with engine.begin() as conn:
            conn.execute(sa.text(
                "INSERT INTO votes (id, conversation_id, owner, winner_model, models, created_at) "
                "VALUES ('v1', NULL, 'me', 'b', :models, CURRENT_TIMESTAMP)"), {"models": '["a", "b"]'})
        migrate(engine)
        from egp_core.store.store import Store

        board = {s.contestant: s for s in DemoDay(Store(engine)).leaderboard()}
        assert board["b"].wins == 1 and board["a"].losses == 1
    finally:
        engine.dispose()


def test_a_tap_on_an_earlier_rounds_answers_does_not_count_in_the_next_round(store):
    """A phone still showing round 1 (it looks every 10 s) taps "Answer A" after the presenter opened
    round 2: the vote was for round 1's answers, so it must not land in round 2."""
    day = DemoDay(store)
    demo = day.start_demo("p")
    r1 = day.open_round(demo, store.create_conversation("p", "q1", kind="compare"), [SPEC_A, SPEC_C])
    r2 = day.open_round(demo, store.create_conversation("p", "q2", kind="compare"), [SPEC_A, SPEC_C])
    stale = day.vote(demo.code, "b1", "A", "ip", round_id=r1.id)
    assert not stale.counted and "round 1 is over" in stale.message.lower() and stale.round_id == r2.id
    assert day.rounds.tally(r2.id) == {} and day.rounds.tally(r1.id) == {}
    assert day.vote(demo.code, "b1", "A", "ip", round_id=r2.id).counted  # the round on screen counts
    other = day.start_demo("p")  # a round of another demo is no round of this one
    r3 = day.open_round(other, store.create_conversation("p", "q3", kind="compare"), [SPEC_A, SPEC_C])
    assert not day.vote(demo.code, "b2", "A", "ip", round_id=r3.id).counted
    assert day.rounds.tally(r3.id) == {} and day.rounds.tally(r2.id) == {"A": 1}
