"""EGP Playground: the entry point. Page config, sign-in (team mode) and navigation.

Each page is a file in views/ (not `pages/`: a folder of that name switches
Streamlit into its old automatic multipage mode, and a first visit straight to
/usage would then run that page alone, without this file's page config and
sign-in). Personal mode (default): no sign-in, one local
owner. Team mode: when `[auth]` is configured in .streamlit/secrets.toml, people
sign in with st.login and each sees only their own conversations; a share link
(?share=<token>) opens a read-only copy without signing in.
"""

import logging

import streamlit as st

from egp_core.errors import EGPError
from egp_core.store.errors import StoreError
from ui import style

log = logging.getLogger("egp_playground")

st.set_page_config(page_title="EGP Playground", page_icon="💬", layout="wide")
style.apply()


def auth_configured() -> bool:
    try:
        return "auth" in st.secrets
    except Exception:  # no secrets.toml at all
        return False


def vote_needs_sign_in() -> bool:
    """Team mode can keep audience voting to signed-in people: `[playground] vote_requires_sign_in = true`."""
    try:
        return bool(st.secrets.get("playground", {}).get("vote_requires_sign_in", False))
    except Exception:  # no secrets.toml at all
        return False


signed_out = auth_configured() and not st.user.is_logged_in
shared = any(k in st.query_params for k in ("share", "eval_share", "shared_prompt"))  # read-only links
# ?vote=<code>: the audience's phone page, and nothing else (no sidebar, no sign-in unless configured)
voting = bool((st.query_params.get("vote") or "").strip()) and not (signed_out and vote_needs_sign_in())
if signed_out and not voting and not shared:
    st.title("EGP Playground")
    st.write("Sign in to see your conversations.")
    st.button("Sign in", type="primary", on_click=st.login, icon=":material/login:")
    st.stop()

if auth_configured() and st.user.is_logged_in and not voting:
    st.sidebar.caption(f"Signed in as {st.user.get('email') or st.user.get('name') or 'you'}")
    st.sidebar.button("Sign out", on_click=st.logout, icon=":material/logout:")

pages = [
    st.Page("views/chat.py", title="Chat", icon=":material/chat:", default=True),
    st.Page("views/compare.py", title="Compare", icon=":material/compare:"),
    st.Page("views/evaluate.py", title="Evaluate", icon=":material/fact_check:"),
    st.Page("views/prompts.py", title="Prompts", icon=":material/library_books:"),
    st.Page("views/usage.py", title="Usage", icon=":material/bar_chart:"),
    st.Page("views/settings.py", title="Settings", icon=":material/settings:"),
]
if voting:
    pages = [st.Page("views/vote.py", title="Vote", icon=":material/how_to_vote:", default=True)]
elif signed_out:  # only the read-only view of a shared conversation, evaluation or prompt
    pages = ([pages[2]] if "eval_share" in st.query_params else [pages[3]] if "shared_prompt" in st.query_params
             else pages[:1])
page = st.navigation(pages, position="hidden" if signed_out or voting else "sidebar")
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
