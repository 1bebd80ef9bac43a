"""The naive baseline for bench/ui_stream.py: a minimal Streamlit chat.

    EGP_ENDPOINT_URL=http://127.0.0.1:8765 streamlit run bench/naive_app.py

What most tutorials do: the script itself iterates the stream and hands it to
`st.write_stream` chunk by chunk (one Markdown redraw of the whole text per
token), using egp_core's client. When BENCH_NAIVE_RESULTS names a file, the
consumer's timing of each answer (egp_core's stream metrics) is appended to it
as one JSON line, for the benchmark to read.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import streamlit as st  # noqa: E402

from egp_core.client import EGPClient  # noqa: E402
from egp_core.types import CompletionRequest  # noqa: E402

MODEL = os.environ.get("BENCH_NAIVE_MODEL", "fake-model")

st.title("Naive chat")
prompt = st.chat_input("Ask anything")
if prompt:
    with st.chat_message("user"):
        st.markdown(prompt)
    client = EGPClient(os.environ["EGP_ENDPOINT_URL"], os.environ.get("EGP_API_KEY") or "k", max_retries=0)
    stream = client.stream(CompletionRequest(model=MODEL, prompt=prompt))
    with st.chat_message("assistant"):
        st.write_stream(chunk.text for chunk in stream)
    ended = time.time()
    client.close()
    results = os.environ.get("BENCH_NAIVE_RESULTS")
    if results:
        with open(results, "a", encoding="utf-8") as f:
            f.write(json.dumps({"ended": ended, "chars": len(stream.text), **asdict(stream.metrics)}) + "\n")
