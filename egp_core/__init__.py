"""egp_core: plain-Python access to EGP completions. Never imports Streamlit."""
