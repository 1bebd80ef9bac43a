"""Demo day under AppTest: the room votes on a blind round, the presenter closes and reveals,
the presenter view, identical panes, and the phone page's link handling."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from egp_core.prompts import PromptContent
from egp_core.store import open_store
from egp_core.store.prompts import PromptLibrary
from egp_core.voting import DemoDay
from tests import test_app_compare
from tests.plugins.apptest import APP
from tests.test_app_compare import (
    COMPARE,
    blind_comparison,
    click,
    compare_page,
    headers,
    letters_of,
    saved,
    texts,
)
from ui.services import LOCAL_OWNER, VOTE_POLL_SECONDS, vote_poll_seconds

env = test_app_compare.env  # the compare page's fixtures
fakes = test_app_compare.fakes


def test_the_room_votes_then_the_presenter_closes_and_reveals(env, fakes):
    at, said = blind_comparison(env, fakes)
    letter = letters_of(at, said)
    click(at, "Let the room vote from their phones")
    shown = texts(at)
    day = DemoDay(open_store())
    demo = day.rounds.demo(at.session_state["demo_id"])
    assert demo is not None and f"?vote={demo.code}" in shown and demo.code in shown
    assert at.query_params["demo"] in (demo.id, [demo.id])
    assert [img.captions for img in at.main.get("image")] == [["Scan to vote"]]  # the QR code
    assert headers(at) == ["Model A", "Model B", "Model C"]  # still blind while the room votes

    # ten phones: seven for beta, two for a tie, one for gamma; one phone tries twice
    votes = [letter["beta"]] * 7 + ["tie"] * 2 + [letter["gamma"]]
    for i, choice in enumerate(votes):
        assert day.vote(demo.code, f"phone-{i}", choice, "10.0.0.1").counted
    assert not day.vote(demo.code, "phone-0", letter["alpha"], "10.0.0.1").counted
    at.run()
    assert "**10 votes**" in texts(at)

    click(at, "Close voting")
    assert f"The room picked {letter['beta']} with 7 of 10 votes." in texts(at)
    assert headers(at) == ["Model A", "Model B", "Model C"]  # closed, not yet revealed
    assert not day.vote(demo.code, "late-phone", letter["beta"], "10.0.0.1").counted

    click(at, "Reveal the names")
    assert any(h.startswith(f"{letter['beta']} · beta") and h.endswith(":material/trophy:") for h in headers(at))
    assert any("The room picked" in s.value and "(beta)" in s.value for s in at.main.success)
    rows = {r["Contestant"]: r for r in at.table[0].value.to_dict("records")}
    assert (rows["beta"]["Wins"], rows["alpha"]["Losses"], rows["gamma"]["Losses"]) == (1, 1, 1)
    assert " ± " in rows["beta"]["Rating"]
    exported = day.export_demo(demo.id)
    assert exported["rounds"][0]["tally"][letter["beta"]] == 7


def test_no_follow_up_or_regenerate_while_the_room_votes(env, fakes):
    """What the room votes on must not change mid-vote: the prompt box is gone (the saved-prompt Send, every
    Regenerate and Next round are off), with the reason, until the round is closed; in the presenter view too.
    A send or a Regenerate from a page drawn before the round opened (another tab of the presenter
    opened it) changes nothing either."""
    at, _said = blind_comparison(env, fakes)
    conv = at.session_state["compare_run"]

    def turns() -> tuple[int, int]:
        msgs = saved().messages(conv)
        return sum(m.role == "user" for m in msgs), sum(m.role == "assistant" for m in msgs)

    assert turns() == (1, 3) and not at.chat_input(key="compare-input").proto.disabled
    night = PromptLibrary(saved()).create(LOCAL_OWNER, PromptContent(name="Night", template="And at night?"))
    at.run()
    at.selectbox(key="picker-compare-prompt").set_value(night.prompt_id).run()
    send = at.button(key="send-prompt-compare")
    assert not send.disabled
    day = DemoDay(saved())
    specs = saved().get_conversation(conv).settings["panes"]
    day.open_round(day.start_demo(LOCAL_OWNER, "Another tab's demo"), conv, specs)
    at.chat_input(key="compare-input").set_value("And at night?")  # this page still shows them enabled
    next(b for b in at.button if b.label == "Regenerate").click()
    send.click()
    at.run()
    assert not at.exception, at.exception
    assert turns() == (1, 3)
    assert any("Your follow-up was not sent" in w.value for w in at.main.warning)  # the saved prompt's
    assert any(b.label == "Close voting" for b in at.button)

    for presenting in (False, True):
        if presenting:
            at.toggle(key="presenter_view").set_value(True).run()
            assert any(b.label == "Leave presenter view" for b in at.button)
        # no prompt box to type into (letters typed into a disabled one would reach the presenter's keys),
        # the reason in its place, and Next round off until the room's vote is closed
        assert not [c for c in at.chat_input if c.key == "compare-input"]
        assert "Voting is open: close the round to ask a follow-up." in [i.value for i in at.info]
        assert at.button(key="next-round").disabled and "Close voting first" in at.button(key="next-round").help
        regen = [b for b in at.button if b.label == "Regenerate"]
        assert len(regen) == 3 and all(b.disabled and "Voting is open" in b.help for b in regen)
        assert at.button(key="send-prompt-compare").disabled
        assert headers(at) == ["Model A", "Model B", "Model C"]

    click(at, "Close voting")
    box = at.chat_input(key="compare-input")
    assert not box.proto.disabled and "Voting is open" not in box.placeholder
    assert not at.button(key="next-round").disabled
    assert any(b.label == "Leave presenter view" for b in at.button)  # still presenting
    assert not any(b.disabled for b in at.button if b.label == "Regenerate")
    assert not at.button(key="send-prompt-compare").disabled
    box.set_value("And at night?").run()
    assert not at.exception, at.exception
    assert turns() == (2, 6) and headers(at) == ["Model A", "Model B", "Model C"] * 2  # still blind


def shared_demo(token: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["demo_share"] = token
    at.run()
    assert not at.exception, at.exception
    return at


def test_a_demo_is_shared_read_only_then_the_link_revoked(env, fakes):
    at, said = blind_comparison(env, fakes)
    letter = letters_of(at, said)
    click(at, "Let the room vote from their phones")
    day = DemoDay(open_store())
    demo = day.rounds.demo(at.session_state["demo_id"])
    for i, choice in enumerate([letter["gamma"]] * 2 + [letter["alpha"]]):
        assert day.vote(demo.code, f"phone-{i}", choice, "10.0.0.1").counted
    click(at, "Close voting")
    click(at, "Reveal the names")
    click(at, "Share this demo (read-only link)")
    (link,) = [c.value for c in at.main.code if "?demo_share=" in c.value]
    token = link.split("?demo_share=")[1]
    assert token == day.rounds.demo(demo.id).share_token

    seen = shared_demo(token)
    shown = texts(seen)
    assert [t.value for t in seen.title] == [demo.title] and headers(seen) == ["Round 1"]
    assert f"The room picked {letter['gamma']} (gamma) with 2 of 3 votes." in shown  # the reveal
    assert "**3 votes**" in shown and f"{letter['gamma']} is best" not in shown  # votes, no voting
    assert [p.proto.text for p in seen.main.get("progress")] == [
        f"{x}: {2 if x == letter['gamma'] else 1 if x == letter['alpha'] else 0}"
        for x in ("A", "B", "C", "It's a tie", "All are bad")]  # the votes, per answer
    rows = {r["Contestant"]: r for r in seen.table[0].value.to_dict("records")}  # the demo's leaderboard
    assert (rows["gamma"]["Wins"], rows["alpha"]["Losses"], rows["beta"]["Losses"]) == (1, 1, 1)
    assert not seen.button and not seen.chat_input and not seen.sidebar.selectbox  # read-only, nothing else

    click(at, "Stop sharing the link")
    assert day.rounds.demo(demo.id).share_token is None
    gone = shared_demo(token)
    assert any("This share link is not valid" in e.value for e in gone.error) and not gone.table
    click(at, "Share this demo (read-only link)")  # a new link is a new token: the old one stays dead
    assert day.rounds.demo(demo.id).share_token not in (None, token)
    assert not shared_demo(token).table


def test_a_tie_counts_as_a_tie_for_every_pane(env, fakes):
    at, _said = blind_comparison(env, fakes)
    click(at, "It's a tie")
    rows = {r["Contestant"]: r for r in at.table[0].value.to_dict("records")}
    assert all(r["Ties"] == 1 and r["Wins"] == 0 for r in rows.values())
    assert any("No clear winner" in s.value for s in at.main.success)


def test_identical_blind_panes_are_warned_about(env, fakes):
    server = fakes(["alpha"], "Same.")
    env.setenv("EGP_ENDPOINT_URL", server.base_url)
    at = compare_page(panes=2)
    at.toggle(key="compare_blind").set_value(True).run()
    assert any("tells nothing" in w.value for w in at.main.warning)
    at.number_input(key="pane1-max_tokens").set_value(256).run()
    assert not any("tells nothing" in w.value for w in at.main.warning)


def test_presenter_view_from_the_address(env, fakes):
    server = fakes(["alpha"], "Same.")
    env.setenv("EGP_ENDPOINT_URL", server.base_url)
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["present"] = "1"
    at.run()
    at.switch_page(COMPARE).run()
    assert not at.exception, at.exception
    assert any(b.label == "Leave presenter view" for b in at.button)
    assert "Compare models" not in [t.value for t in at.title]
    click(at, "Leave presenter view")
    assert "Compare models" in [t.value for t in at.title]


def test_vote_links_that_lead_nowhere(env):
    for code in ("NOPE42", "%20", "<script>"):
        at = AppTest.from_file(APP, default_timeout=60)
        at.query_params["vote"] = code
        at.run()
        assert not at.exception, at.exception
        assert any("This voting link is not valid" in e.value for e in at.error)
        assert not at.sidebar.selectbox  # the phone page shows nothing of the app
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["vote"] = ""  # a link cut short: told so, not the app (tests/test_app_links.py)
    at.run()
    assert any("This voting link is not valid" in e.value for e in at.error) and not at.chat_input


def test_the_phones_pace_is_one_setting(monkeypatch):
    """The phone page looks for the next round every VOTE_POLL_SECONDS (3 s, measured with bench/votes.py);
    $EGP_PLAYGROUND_VOTE_POLL_SECONDS overrides it, at least 1 s; a value that is not a number is ignored."""
    monkeypatch.delenv("EGP_PLAYGROUND_VOTE_POLL_SECONDS", raising=False)
    assert vote_poll_seconds() == VOTE_POLL_SECONDS == 3.0
    for value, seconds in (("5", 5.0), ("2.5", 2.5), ("0", 1.0), ("-4", 1.0), ("soon", 3.0), ("inf", 3.0),
                           ("nan", 3.0), ("", 3.0)):
        monkeypatch.setenv("EGP_PLAYGROUND_VOTE_POLL_SECONDS", value)
        assert vote_poll_seconds() == seconds, value
