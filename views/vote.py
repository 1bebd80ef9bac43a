"""Vote: the phone-sized page behind a demo's `?vote=<code>` link. No sidebar, no sign-in.

Each browser votes once per round (each signed-in person, when voting needs signing in). The page
follows the demo by itself: it looks again every 3 s (ui/services.py VOTE_POLL_SECONDS;
$EGP_PLAYGROUND_VOTE_POLL_SECONDS overrides it), so it shows the next round within about 3 s of the presenter
opening it. After a reveal it shows the names and the demo's leaderboard so far
(after the last round: the final one). Why 3 s (bench/votes.py, one app process,
2 CPUs): with Streamlit's full garbage collection after every script run (its
default), 30 phones at 3 s saturated the process, so the page asked every 10 s;
with it off (.streamlit/config.toml), 50 phones at 3 s all showed the next round
by themselves (median 1.7 s, at most 3.0 s after it opened), 50 votes counted
exactly, the app's process at 0.13 of a core while they waited (about 7 ms of
CPU a look), and a presenter's click took 1.44x its time alone with the 50
phones waiting. The margin: 80 phones at 3 s were all served too (0.20 of a
core; counted exactly). Shorter would cost every room proportionally more for little.
"""

from __future__ import annotations

import logging

import streamlit as st

from egp_core.voting import BAD, LETTERS, TIE, DemoDay, choice_word, short_names, verdict_sentence
from ui import services
from ui.browser_id import browser_id
from ui.demo_panel import standings_table

log = logging.getLogger("egp_playground")
NOTICE = "vote-notice"  # (round id, counted, message) of this session's last vote attempt


def cast(code: str, voter: str | None, choice: str, round_id: str) -> None:
    """A tap on an answer of round `round_id` (the one this page showed: never counted in a later one)."""
    try:
        result = DemoDay(services.store()).vote(code, voter, choice, st.context.ip_address or "local", round_id)
    except Exception:  # the store fails (a database restarting): say so; the log has the details
        log.exception("A vote could not be saved")
        st.session_state[NOTICE] = (round_id, False, "Your vote could not be counted just now. Tap your answer "
                                                     "again in a moment.")
        return
    st.session_state[NOTICE] = (result.round_id, result.counted, result.message)


@st.fragment(run_every=services.vote_poll_seconds())
def round_view(code: str, demo_id: str, voter: str | None) -> None:
    """The demo's current round, looked at again every few seconds. A store that fails for a moment gets a
    sentence (a fragment's error would show the app's error box on every phone) and the next look again."""
    try:
        show_round(code, demo_id, voter)
    except Exception:
        log.exception("The vote page could not read the demo %s", demo_id)
        st.warning("The votes can't be reached right now. This page tries again by itself in a few seconds.",
                   icon=":material/cloud_off:")


def show_round(code: str, demo_id: str, voter: str | None) -> None:
    day = DemoDay(services.store())
    rnd = day.rounds.current_round(demo_id)  # the demo was found once by its code, not on every poll
    if rnd is None:
        st.info("Waiting for the presenter to open the first round…", icon=":material/hourglass_top:")
        return
    st.subheader(f"Round {rnd.number}", anchor=False)
    notice = st.session_state.get(NOTICE)
    if notice and notice[0] == rnd.id:
        (st.success if notice[1] else st.warning)(notice[2])
    mine = day.my_vote(rnd.id, voter)
    if rnd.status == "open":
        if mine:
            if not (notice and notice[0] == rnd.id):
                st.success(f"You voted: {choice_word(mine)}. Thank you! The results come when the presenter "
                           "closes the round.")
            return
        if voter is None:
            st.caption("Getting ready… If this message stays, your browser refuses cookies: allow them for "
                       "this site and reload, so your vote can be counted once.")
            return
        st.write("Which answer is best?")
        for letter in LETTERS[: len(rnd.contestants)]:
            st.button(f"Answer {letter}", key=f"vote-{rnd.id}-{letter}", on_click=cast,
                      args=(code, voter, letter, rnd.id),
                      type="primary", use_container_width=True)
        st.button(choice_word(TIE), key=f"vote-{rnd.id}-tie", on_click=cast, args=(code, voter, TIE, rnd.id),
                  use_container_width=True)
        st.button(choice_word(BAD), key=f"vote-{rnd.id}-bad", on_click=cast, args=(code, voter, BAD, rnd.id),
                  use_container_width=True)
        return
    if rnd.status == "closed":
        st.info("Voting is closed. The names come next, on the big screen.", icon=":material/lock:")
        return
    names = short_names(rnd.contestants)
    st.success(verdict_sentence(rnd.outcome, names), icon=":material/how_to_vote:")
    for letter, name in zip(LETTERS, names, strict=False):
        st.write(f"**{letter}**: {name}")
    standings = day.demo_leaderboard(demo_id)  # the demo's so far: after its last round, the result
    if standings:
        st.subheader("Leaderboard", anchor=False)
        standings_table(standings)
    st.caption("Waiting for the next round…")


def main() -> None:
    code = (st.query_params.get("vote") or "").strip()
    st.title("Vote", anchor=False)
    demo = DemoDay(services.store()).rounds.demo_by_code(code)
    if demo is None:
        st.error("This voting link is not valid. Check the code on the screen and try again.",
                 icon=":material/link_off:")
        return
    st.caption(f"{demo.title} · code {demo.code}")
    round_view(demo.code, demo.id, voter())


def voter() -> str | None:
    """Who votes: the signed-in person when voting needs signing in (one vote per person, from any of
    their browsers), else this browser (one vote per browser)."""
    if services.vote_needs_sign_in() and st.user.is_logged_in:
        return f"person:{services.owner()}"
    return browser_id()


main()
