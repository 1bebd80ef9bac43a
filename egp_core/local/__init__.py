"""The embedded local model: an EGP-compatible server on llama.cpp.

- `engine`: one model, its chat template, a FIFO queue and token streaming.
- `server`: the FastAPI app speaking ../shared/PROTOCOL.md.
- `launcher`: `ensure_local_server()` for the app (background thread, free port).
- `python -m egp_core.local --help`: the standalone server.
"""

from egp_core.local.engine import DEFAULT_MODEL_ID

__all__ = ["DEFAULT_MODEL_ID"]
