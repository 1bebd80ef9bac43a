"""EGP Playground: the entry point. Page config, sign-in (team mode) and navigation.

Each page is a file in views/ (not `pages/`: a folder of that name switches
Streamlit into its old automatic multipage mode, and a first visit straight to
/usage would then run that page alone, without this file's page config and
sign-in). Personal mode (default): no sign-in, one local owner. Team mode: when
`[auth]` is configured in .streamlit/secrets.toml, people sign in with st.login
and each sees only their own conversations.

A link opens one page alone: ?share=<token> a read-only conversation
(views/shared.py), ?eval_share=<token> a read-only evaluation,
?shared_prompt=<token> a read-only prompt, ?demo_share=<token> a read-only demo (its
rounds, votes, reveals and leaderboard: views/shared_demo.py), ?vote=<code> a demo's voting page.
A signed-out visitor gets past the sign-in page only with such a link that
leads to something real (the store is asked); with anything else, on any path,
they see the sign-in page and nothing more. Signed in (or in personal mode), a link
with an empty or blank value opens its page too, which says the link is not valid: a
link cut short on its way (a chat app, a mail) is told apart from no link at all, and
the visitor (a phone in the room) does not land in the app instead. A shared
evaluation or prompt opens at the root address, in its page, with the navigation.
"""

import logging
import re

import streamlit as st

from egp_core.errors import EGPError
from egp_core.evaluate.records import Records
from egp_core.store.errors import StoreError
from egp_core.voting import DemoDay
from ui import services, style

log = logging.getLogger("egp_playground")

st.set_page_config(page_title="EGP Playground", page_icon="💬", layout="wide")
style.apply()

# Query parameters of links a signed-out visitor may open, and the one page each shows.
# (A comment, not a docstring: Streamlit's "magic" would draw a bare string on the page.)
LINKS = {
    "vote": st.Page("views/vote.py", title="Vote", icon=":material/how_to_vote:", default=True),
    "share": st.Page("views/shared.py", title="Shared conversation", icon=":material/link:", default=True),
    "eval_share": st.Page("views/evaluate.py", title="Shared evaluation", icon=":material/fact_check:", default=True),
    "shared_prompt": st.Page("views/prompts.py", title="Shared prompt", icon=":material/library_books:",
                             default=True),
    "demo_share": st.Page("views/shared_demo.py", title="Shared demo", icon=":material/how_to_vote:", default=True),
}

# Links that open, for a signed-in person (or in personal mode), in their page with the navigation.
# (A comment, not a string under the name: Streamlit's "magic" would draw a bare string on every page.)
WITH_NAVIGATION = {"eval_share": "views/evaluate.py", "shared_prompt": "views/prompts.py"}


def link_in_url() -> tuple[str, str] | None:
    """(parameter, value stripped) of the link in the URL (one of LINKS), if any: the first one with a
    value, else the first one present (blank)."""
    found = [(name, (st.query_params.get(name) or "").strip()) for name in LINKS if name in st.query_params]
    return next((f for f in found if f[1]), found[0] if found else None)


def link_is_real(name: str, value: str) -> bool:
    """Whether the link leads to something that exists: a demo's voting code, a shared conversation,
    evaluation, prompt or demo (the store is asked)."""
    if not value:
        return False
    try:
        store = services.store()
        if name == "vote":
            return DemoDay(store).rounds.demo_by_code(value) is not None
        if name == "share":
            return store.conversation_for_share(value) is not None
        if name == "eval_share":
            return Records(store).run_for_share(value) is not None
        if name == "demo_share":
            return DemoDay(store).rounds.demo_for_share(value) is not None
        return services.prompts().for_share(value) is not None
    except Exception:  # the database is down or failing (a StoreError, or the driver's own): no way in;
        log.exception("Could not look up a %s link", name)  # the log says why, never the page
        return False


# A cookie with the voting code a signed-out phone came with: the sign-in's redirect returns to the app's
# root and forgets the link, so the first page after it opens that vote page (once). (Comments, not a
# string under the name: Streamlit's "magic" would draw it.)
AFTER_SIGN_IN = "egp_vote_after_sign_in"
AFTER_SIGN_IN_SCRIPT = '<script>document.cookie = "VALUE; path=/; SameSite=Lax";</script>'


def plain_code(text: str) -> str:
    """A voting code as it may go into the cookie's script: capital letters and digits only."""
    return re.sub(r"[^A-Z0-9]", "", text.upper())


def vote_after_sign_in() -> str | None:
    """The voting code remembered across the sign-in, if any (then forgotten: it opens once)."""
    code = plain_code((st.context.cookies or {}).get(AFTER_SIGN_IN) or "")
    if code:
        st.html(AFTER_SIGN_IN_SCRIPT.replace("VALUE", f"{AFTER_SIGN_IN}=; max-age=0"), unsafe_allow_javascript=True)
    return code or None


def sign_in_page(bad_link: bool, to_vote: str | None = None) -> None:
    st.title("EGP Playground")
    if bad_link:
        st.warning("This link is not valid (or what it shared was deleted).", icon=":material/link:")
    if to_vote:  # a real voting link, and voting here needs signing in: remembered across the sign-in
        st.info("Voting here is for signed-in people: sign in, and this page opens again to vote.",
                icon=":material/how_to_vote:")
        st.html(AFTER_SIGN_IN_SCRIPT.replace("VALUE", f"{AFTER_SIGN_IN}={plain_code(to_vote)}; max-age=600"),
                unsafe_allow_javascript=True)
    else:
        st.write("Sign in to see your conversations.")
    st.button("Sign in", type="primary", on_click=st.login, icon=":material/login:")


def owners_computer_only_page(bad_link: bool) -> None:
    """Personal mode, seen from another computer: no conversations, keys or settings; links still work."""
    st.title("EGP Playground")
    if bad_link:
        st.warning("This link is not valid (or what it shared was deleted).", icon=":material/link:")
    st.info("This playground is in personal mode: it opens only on the computer it runs on. Voting and "
            "share links from its owner work on any device.", icon=":material/lock:")
    st.caption("Its owner can open it to the network with `open_to_network = true` under `[playground]` "
               "in `.streamlit/secrets.toml`, or give everyone their own sign-in (team mode).")


IDS = ("c", "cmp", "run", "p", "demo", *LINKS)  # every query parameter that names something in the store
for name in IDS:  # a link pasted with a space around its value (%20) still finds it
    if name in st.query_params and st.query_params[name] != st.query_params[name].strip():
        st.query_params[name] = st.query_params[name].strip()

link = link_in_url()
team_mode = not services.personal_mode()
signed_out = team_mode and not st.user.is_logged_in
outsider = services.from_another_machine()  # personal mode, and a visitor from another computer
if signed_out or outsider:
    real = link is not None and link_is_real(*link)
    to_vote = link[1] if real and link[0] == "vote" and services.vote_needs_sign_in() else None
    if not real or to_vote:
        if outsider:
            owners_computer_only_page(bad_link=link is not None and not real)
        else:
            sign_in_page(bad_link=link is not None and not real, to_vote=to_vote)
        st.stop()
    only = LINKS[link[0]]  # a signed-out (or other computer's) visitor sees that one page, and nothing else
elif not st.query_params and team_mode and (code := vote_after_sign_in()):
    st.query_params["vote"] = code  # just signed in from a voting link: its page, as if opened again
    only = LINKS["vote"]
elif link is not None and (link[0] not in WITH_NAVIGATION or not link[1]):
    only = LINKS[link[0]]  # the audience's phone page, a shared conversation or demo (or "not valid")
else:
    only = None  # (a shared evaluation or prompt opens in its page, with the navigation)

if team_mode and st.user.is_logged_in and only is not LINKS["vote"]:
    st.sidebar.caption(f"Signed in as {st.user.get('email') or st.user.get('name') or 'you'}")
    st.sidebar.button("Sign out", on_click=st.logout, icon=":material/logout:")

home = WITH_NAVIGATION.get(link[0], "views/chat.py") if link is not None else "views/chat.py"
pages = [only] if only is not None else [
    st.Page(path, title=title, icon=icon, default=path == home) for path, title, icon in (
        ("views/chat.py", "Chat", ":material/chat:"),
        ("views/compare.py", "Compare", ":material/compare:"),
        ("views/evaluate.py", "Evaluate", ":material/fact_check:"),
        ("views/prompts.py", "Prompts", ":material/library_books:"),
        ("views/usage.py", "Usage", ":material/bar_chart:"),
        ("views/settings.py", "Settings", ":material/settings:"),
    )
]
page = st.navigation(pages, position="hidden" if only is not None else "sidebar")
try:
    page.run()
except (StoreError, EGPError) as exc:  # a person's message, never a traceback
    st.error(exc.user_message, icon=":material/warning:")
    with st.expander("Technical detail"):
        st.code(getattr(exc, "detail", "") or type(exc).__name__, language=None, wrap_lines=True)
except Exception:  # a bug of ours: say so plainly; the traceback goes to the server log only
    log.exception("Unexpected error on page %s", page.title)
    st.error(
        "Something went wrong on this page. Your conversations are saved; reload the page "
        "to carry on. If it happens again, the app's log has the details.",
        icon=":material/warning:",
    )
