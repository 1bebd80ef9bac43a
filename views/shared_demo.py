"""A shared demo, read-only (?demo_share=<token>): its rounds, the votes in each, the reveals and the
leaderboard. The only page a signed-out visitor reaches with such a link; nothing on it can change.

It shows what the demo's JSON export holds (DemoDay.export_demo): a round whose names are not
revealed yet keeps them hidden here too.
"""

from __future__ import annotations

import streamlit as st

from egp_core.voting import LETTERS, DemoDay, short_names, verdict_sentence
from ui import services
from ui.demo_panel import SHARE_QUERY, standings_table, tally_chart

STATUS_WORDS = {"open": "voting now", "closed": "voting closed, names not revealed yet", "revealed": "revealed"}


def show_round(r: dict) -> None:
    st.subheader(f"Round {r['number']}", anchor=False)
    st.caption(STATUS_WORDS.get(r["status"], r["status"]))
    if r["status"] == "revealed":
        names = short_names(r["contestants"] or [])
        st.markdown(verdict_sentence(r["outcome"], names))
        st.markdown("  \n".join(f"**{letter}**: {name}" for letter, name in zip(LETTERS, names, strict=False)))
    tally_chart(r["tally"], r["panes"])


def main() -> None:
    token = (st.query_params.get(SHARE_QUERY) or "").strip()
    day = DemoDay(services.store())
    demo = day.rounds.demo_for_share(token)
    if demo is None:
        st.error("This share link is not valid (or its demo is no longer shared).", icon=":material/link:")
        return
    st.title(demo.title, anchor=False)
    st.caption("A read-only copy of a demo, shared with you: its rounds, the room's votes and the results.")
    exported = day.export_demo(demo.id)
    st.header("Leaderboard", anchor=False)
    rows = day.demo_leaderboard(demo.id)
    if rows:
        standings_table(rows)
    else:
        st.caption("No round of this demo is revealed yet.")
    st.header("Rounds", anchor=False)
    if not exported["rounds"]:
        st.caption("This demo has no rounds yet.")
    for r in exported["rounds"]:
        show_round(r)


main()
