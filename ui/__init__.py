"""Streamlit helpers shared by the pages: state keys, services, sidebar, message view."""
