"""Vote: the phone-sized page behind a demo's `?vote=<code>` link. No sidebar, no sign-in.

Each browser votes once per round. The page follows the demo by itself: it asks
every 3 s while this browser can vote in an open round, and every 10 s while it
only waits (no round open, or its vote is in), so a room of idle phones costs
the app little. A change of state reruns the page once, to poll at the new pace.
"""

from __future__ import annotations

import streamlit as st

from egp_core.store.rounds import RoundRow
from egp_core.voting import BAD, LETTERS, TIE, DemoDay, choice_word, short_names, verdict_sentence
from ui import services
from ui.browser_id import browser_id

NOTICE = "vote-notice"  # (round id, counted, message) of this session's last vote attempt
FAST_POLL, SLOW_POLL = 3.0, 10.0  # seconds between looks: while this browser can vote / while it waits


def cast(code: str, voter: str | None, choice: str) -> None:
    result = DemoDay(services.store()).vote(code, voter, choice, st.context.ip_address or "local")
    st.session_state[NOTICE] = (result.round_id, result.counted, result.message)


def pace(rnd: RoundRow | None, mine: str | None) -> float:
    """How often the page looks again: often only while this browser has a vote to cast."""
    return FAST_POLL if rnd is not None and rnd.status == "open" and not mine else SLOW_POLL


def look(demo_id: str, voter: str | None) -> tuple[RoundRow | None, str | None]:
    """The demo's current round, and this browser's vote in it."""
    day = DemoDay(services.store())
    rnd = day.rounds.current_round(demo_id)  # the demo was found once by its code, not on every poll
    return rnd, (day.my_vote(rnd.id, voter) if rnd is not None else None)


def round_view(code: str, demo_id: str, voter: str | None, every: float) -> None:
    rnd, mine = look(demo_id, voter)
    if pace(rnd, mine) != every:
        st.rerun(scope="app")  # a round opened, or this browser voted: poll at the other pace
    if rnd is None:
        st.info("Waiting for the presenter to open the first round…", icon=":material/hourglass_top:")
        return
    st.subheader(f"Round {rnd.number}", anchor=False)
    notice = st.session_state.get(NOTICE)
    if notice and notice[0] == rnd.id:
        (st.success if notice[1] else st.warning)(notice[2])
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
            st.button(f"Answer {letter}", key=f"vote-{rnd.id}-{letter}", on_click=cast, args=(code, voter, letter),
                      type="primary", use_container_width=True)
        st.button(choice_word(TIE), key=f"vote-{rnd.id}-tie", on_click=cast, args=(code, voter, TIE),
                  use_container_width=True)
        st.button(choice_word(BAD), key=f"vote-{rnd.id}-bad", on_click=cast, args=(code, voter, BAD),
                  use_container_width=True)
        return
    if rnd.status == "closed":
        st.info("Voting is closed. The names come next, on the big screen.", icon=":material/lock:")
        return
    names = short_names(rnd.contestants)
    st.success(verdict_sentence(rnd.outcome, names), icon=":material/how_to_vote:")
    for letter, name in zip(LETTERS, names, strict=False):
        st.write(f"**{letter}**: {name}")
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
    voter = browser_id()
    every = pace(*look(demo.id, voter))
    (often if every == FAST_POLL else seldom)(demo.code, demo.id, voter, every)


often = st.fragment(run_every=FAST_POLL)(round_view)  # (one fragment: the page switches its pace)
seldom = st.fragment(run_every=SLOW_POLL)(round_view)


main()
