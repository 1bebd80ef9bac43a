"""Demo day on the Compare page: the room votes from their phones, the presenter view, the leaderboard.

The presenter opens voting on a blind comparison; the page shows a QR code and a
short link to the phone page (views/vote.py), and the votes as they arrive.
Closing the round settles the room's verdict; revealing shows the names.
"""

from __future__ import annotations

import io
import json
import logging
from datetime import datetime
from urllib.parse import urlsplit

import segno
import streamlit as st

from egp_core.ratings import Standing
from egp_core.store.rounds import Demo, RoundRow
from egp_core.voting import BAD, LETTERS, TIE, DemoDay, choice_word, short_names, verdict_sentence
from ui import services, state
from ui.copy_button import copy_button
from ui.history import share_url

log = logging.getLogger(__name__)

DEMO_QUERY = "demo"  # ?demo=<id>: the presenter's demo survives a refresh
SHARE_QUERY = "demo_share"  # ?demo_share=<token>: the demo, read-only (views/shared_demo.py)
PRESENT_QUERY = "present"  # ?present=1: the presenter view

PRESENTER_CSS = """
<style>
[data-testid="stSidebar"], [data-testid="stSidebarCollapsedControl"], [data-testid="stHeader"],
.st-key-compare-controls { display: none !important; }
[data-testid="stAppViewContainer"], [data-testid="stMain"] { background: #ffffff !important; }
[data-testid="stMain"] { color: #000000 !important; }
[data-testid="stMain"] .stMarkdown p, [data-testid="stMain"] .stMarkdown li {
  font-size: 1.55rem !important; line-height: 1.45 !important; color: #000000 !important; }
[data-testid="stMain"] h1, [data-testid="stMain"] h2, [data-testid="stMain"] h3 {
  font-size: 2.2rem !important; color: #000000 !important; font-weight: 800 !important; }
[data-testid="stMain"] [data-testid="stCaptionContainer"] {
  font-size: 1.1rem !important; color: #1a1a1a !important; white-space: nowrap; overflow: hidden;
  text-overflow: ellipsis; }
[data-testid="stMain"] button p { font-size: 1.3rem !important; }
[data-testid="stMainBlockContainer"] { max-width: 100% !important; padding-top: 1rem !important; }
</style>
"""


def day() -> DemoDay:
    return DemoDay(services.store())


# ----- presenter view ----------------------------------------------------------------------------


def presenting() -> bool:
    if st.query_params.get(PRESENT_QUERY) in ("1", "true", "yes"):
        st.session_state[state.PRESENT] = True
    return bool(st.session_state.get(state.PRESENT))


def set_presenting(on: bool) -> None:
    st.session_state[state.PRESENT] = on
    if on:
        st.query_params[PRESENT_QUERY] = "1"
    elif PRESENT_QUERY in st.query_params:
        del st.query_params[PRESENT_QUERY]


def apply_presenter_view() -> None:
    """Large type and high contrast for a projector; settings and sidebar hidden."""
    st.html(PRESENTER_CSS)
    st.button("Leave presenter view", key="present-off", on_click=set_presenting, args=(False,),
              icon=":material/close_fullscreen:")
    st.caption("Keys: Enter sends · Esc stops · V opens voting · X closes it · S shows the names · N next round")


# ----- the demo and its link ---------------------------------------------------------------------


def current_demo() -> Demo | None:
    wanted = st.session_state.get(state.DEMO) or st.query_params.get(DEMO_QUERY)
    demo = day().rounds.demo(wanted, owner=services.owner()) if wanted else None
    st.session_state[state.DEMO] = demo.id if demo else None
    return demo


def ensure_demo() -> Demo:
    demo = current_demo()
    if demo is None:
        demo = day().start_demo(services.owner(), f"Demo of {datetime.now():%d %B %Y, %H:%M}")
    st.session_state[state.DEMO] = demo.id
    st.query_params[DEMO_QUERY] = demo.id
    return demo


def vote_link(code: str) -> str:
    """The full address of the phone page, as the presenter's browser reaches this app."""
    parts = urlsplit(st.context.url or "")
    base = f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""
    return f"{base}/?vote={code}"


def qr_png(text: str) -> bytes:
    buf = io.BytesIO()
    segno.make(text, error="m").save(buf, kind="png", scale=10, border=2)
    return buf.getvalue()


# ----- actions -----------------------------------------------------------------------------------


def open_voting(conv_id: str, specs: list[dict]) -> None:
    demo = ensure_demo()
    day().open_round(demo, conv_id, specs)


def presenter_choice(conv_id: str, specs: list[dict], choice: str) -> None:
    day().presenter_vote(services.owner(), conv_id, specs, choice)


def close_voting(round_id: str) -> None:
    day().close(round_id)


def reveal(round_id: str) -> None:
    day().reveal(round_id)


# ----- the panel under a blind comparison --------------------------------------------------------


def blind_round(conv_id: str) -> RoundRow | None:
    return day().rounds.round_for_conversation(conv_id)


VOTING_OPEN = "Voting is open: close the round to ask a follow-up"
"""Why the prompt box and Regenerate are off while the room votes (what they vote on must not change)."""


def voting_open(conv_id: str | None) -> bool:
    return day().voting_open(conv_id)


def room_panel(conv_id: str, specs: list[dict], n_answers: int) -> None:
    """Under a blind comparison whose answers are in: let the room vote, or decide alone."""
    rnd = blind_round(conv_id)
    if rnd is None:
        st.markdown("**Which answer is best?** The model names are revealed after the vote.")
        st.button("Let the room vote from their phones", key=f"open-vote-{conv_id}", type="primary",
                  icon=":material/qr_code_2:", on_click=open_voting, args=(conv_id, specs), shortcut="V")
        st.caption("Or decide here:")
        options = [*LETTERS[:n_answers], TIE, BAD]
        cols = st.columns(len(options))
        for col, choice in zip(cols, options, strict=True):
            col.button(f"{choice} is best" if choice in LETTERS else choice_word(choice),
                       key=f"pick-{conv_id}-{choice}", on_click=presenter_choice, args=(conv_id, specs, choice),
                       use_container_width=True, icon=":material/how_to_vote:" if choice in LETTERS else None)
        return
    demo = day().rounds.demo(rnd.demo_id) if rnd.demo_id else None
    if rnd.status == "open" and demo is not None:
        link = vote_link(demo.code)
        qr, info = st.columns([1, 2])
        qr.image(qr_png(link), caption="Scan to vote", width=260)
        with info:
            st.markdown(f"### Vote at `{link}`")
            st.markdown(f"Code **{demo.code}** · round {rnd.number}")
            if "://localhost" in link or "://127.0.0.1" in link:
                st.caption("Phones can't reach “localhost”: start the app with `--server.address 0.0.0.0` "
                           "and open it through this machine's network address. (In personal mode, other "
                           "devices then get the voting and share links only, never your conversations.)")
            tally = day().rounds.tally(rnd.id)
            with st.container(key="live-tally"):
                tally_chart(tally, n_answers)
            watch_votes(rnd.id, tally)
            st.button("Close voting", key=f"close-{rnd.id}", type="primary", icon=":material/lock:",
                      on_click=close_voting, args=(rnd.id,), shortcut="X")
        return
    if rnd.status == "closed":
        st.info(verdict_sentence(rnd.outcome), icon=":material/how_to_vote:")
        tally_chart(rnd.outcome.get("tally") if rnd.outcome else {}, n_answers)
        st.button("Reveal the names", key=f"reveal-{rnd.id}", type="primary", icon=":material/visibility:",
                  on_click=reveal, args=(rnd.id,), shortcut="S")


@st.fragment(run_every=1.0)
def watch_votes(round_id: str, shown: dict[str, int]) -> None:
    """Looks every second whether the votes (or the round) changed, and only then redraws the page.

    It draws nothing itself: a fragment run marks every element it draws stale and fresh again
    (the browser changes their attributes), even when the content is the same, so a tally drawn
    by this fragment would change the page every second while nobody votes.
    """
    try:
        rnd = day().rounds.get_round(round_id)
        changed = rnd is None or rnd.status != "open" or day().rounds.tally(round_id) != shown
    except Exception:  # the store fails for a moment (a database restarting): look again in a second
        log.exception("The presenter's page could not read the votes of round %s", round_id)
        return
    if changed:
        st.rerun(scope="app")


def tally_chart(tally: dict, n_answers: int) -> None:
    """The votes as bars: one labelled progress bar per option (cheap to redraw every second)."""
    options = [*LETTERS[:n_answers], TIE, BAD]
    counts = [(choice_word(o), int(tally.get(o, 0))) for o in options]
    total = sum(n for _, n in counts)
    st.markdown(f"**{total} {'vote' if total == 1 else 'votes'}**")
    for word, n in counts:
        st.progress(n / total if total else 0.0, text=f"{word}: {n}")


def revealed_sentence(conv_id: str, names: list[str]) -> str | None:
    rnd = blind_round(conv_id)
    if rnd is None or rnd.status != "revealed":
        return None
    return verdict_sentence(rnd.outcome, names)


# ----- the leaderboard ---------------------------------------------------------------------------


def leaderboard() -> None:
    rows = day().leaderboard(owner=services.owner())  # team mode: your own rounds only
    st.subheader("Leaderboard", anchor=False)
    if not rows:
        st.caption("No rounds yet. Turn on blind mode, compare, and let the room vote.")
        return
    standings_table(rows)
    demo = current_demo()
    if demo is not None:
        st.download_button(
            "Export this demo (JSON)", lambda: json.dumps(day().export_demo(demo.id), indent=2),
            file_name=f"demo-{demo.code}.json", mime="application/json", key="demo-export",
            icon=":material/download:",
        )
        share_controls(demo)


def standings_table(rows: list[Standing]) -> None:
    names = short_names([r.contestant for r in rows])
    st.table([{
        "Contestant": name, "Rating": f"{r.rating:.0f} ± {r.margin:.0f}", "Wins": r.wins, "Ties": r.ties,
        "Losses": r.losses, "Rounds": r.appearances,
    } for name, r in zip(names, rows, strict=True)], hide_index=True)
    st.caption("A contestant is a model with its settings. Rating: Bradley–Terry on the Elo scale "
               "(1000 = average); ± is a 95% interval, wide until there are enough rounds.")


# ----- the demo's read-only link -----------------------------------------------------------------


def share_demo(demo_id: str) -> None:
    day().rounds.create_share(demo_id, services.owner())


def stop_sharing(demo_id: str) -> None:
    day().rounds.delete_share(demo_id, services.owner())


def share_controls(demo: Demo) -> None:
    if demo.share_token:
        url = share_url(demo.share_token, SHARE_QUERY)
        st.caption("Anyone with this link sees this demo's rounds, votes, reveals and leaderboard, read-only:")
        st.code(url, language=None, wrap_lines=True)
        copy_button(url, "Copy link", key="demo-copy-share")
        st.button("Stop sharing the link", key="demo-unshare", icon=":material/link_off:", on_click=stop_sharing,
                  args=(demo.id,))
    else:
        st.button("Share this demo (read-only link)", key="demo-share", icon=":material/link:", on_click=share_demo,
                  args=(demo.id,))
