"""EGP Playground: the entry point. Page config and navigation; each page is a file in pages/."""

import streamlit as st

st.set_page_config(page_title="EGP Playground", page_icon=":material/chat:", layout="wide")

pages = [
    st.Page("pages/chat.py", title="Chat", icon=":material/chat:", default=True),
    st.Page("pages/compare.py", title="Compare", icon=":material/compare:"),
    st.Page("pages/usage.py", title="Usage", icon=":material/bar_chart:"),
    st.Page("pages/settings.py", title="Settings", icon=":material/settings:"),
]
st.navigation(pages).run()
