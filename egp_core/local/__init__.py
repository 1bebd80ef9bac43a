"""The embedded local model: an EGP-compatible server on llama.cpp.

Modules:
- `engine`: one model (`Engine`): chat template, FIFO queue, worker thread, cancel.
- `batch`: several sequences decoded together in one llama.cpp context, prefix reuse.
- `sampling`: the parameters, their defaults (anti-loop penalties), a sampler per sequence.
- `threads`: how many threads to use: the machine's cores minus the ones others keep busy.
- `kvcache`: a bounded RAM cache of KV state per token prefix.
- `jobs`: a request (`Job`) and its events.
- `textstream`: stop sequences across tokens, whole UTF-8 characters only.
- `registry`: the models served, by id (bundled SmolLM2 first, then $EGP_LOCAL_MODELS).
- `server`: `create_app()`, the FastAPI app speaking ../shared/PROTOCOL.md.
- `launcher`: `ensure_local_server()` for the app: background thread, free loopback port.

Standalone: `python -m egp_core.local --host 127.0.0.1 --port 8765` (see --help).

In the app:

    from egp_core.local.launcher import ensure_local_server
    server = ensure_local_server()        # returns at once; same object on every rerun
    server.base_url                       # "http://127.0.0.1:<port>"
    server.is_ready(); server.wait_ready(timeout=30); server.error  # friendly text or None

While the model loads, completions requests wait for it (then 503 + Retry-After: 1
after 120 s); `GET /health` answers at once with
`{"status": "loading"|"ok"|"error", "ready", "busy", "active", "slots", "queue_length", "error",
"models": [...]}` (`active`: requests generating now, at most `slots`; `queue_length`: waiting).

Environment: EGP_LOCAL_MODELS (extra GGUF files, comma-separated; model id = file
name without .gguf), EGP_LOCAL_API_KEY (required x-api-key when set; /health is open).
"""

from egp_core.local.engine import DEFAULT_MODEL_ID

__all__ = ["DEFAULT_MODEL_ID"]
