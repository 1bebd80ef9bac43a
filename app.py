import streamlit as st

st.set_page_config(page_title="EGP Playground", page_icon="💬")
st.title("EGP Playground")
st.write("The chat page is coming soon.")
