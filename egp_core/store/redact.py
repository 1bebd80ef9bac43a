"""Keeps secrets out of stored data: drops key-like fields from dicts before they are saved."""

from __future__ import annotations

import re
from typing import Any

_SECRET_PARTS = ("api_key", "apikey", "secret", "password", "passwd", "authorization",
                 "credential", "private_key", "bearer", "cookie")
# Names with "token" in them that are counts or timings, not credentials.
_TOKEN_NOT_SECRET = ("tokens", "token_usage", "token_count", "token_limit", "time_to_", "per_token",
                     "first_token", "last_token")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def is_secret_key(name: str) -> bool:
    """True for field names that may hold a credential (api_key, client_secret, access_token...).

    Token counts and timings (max_tokens, prompt_tokens, time_to_first_token...) are not secrets.
    """
    n = _CAMEL.sub("_", str(name)).lower().replace("-", "_").replace(" ", "_")
    if any(part in n for part in _SECRET_PARTS):
        return True
    if "token" in n:
        return not any(part in n for part in _TOKEN_NOT_SECRET)
    return n in {"key", "auth"}


def strip_secrets(value: Any) -> Any:
    """A copy of `value` (dicts and lists, recursively) without secret-named fields."""
    if isinstance(value, dict):
        return {k: strip_secrets(v) for k, v in value.items() if not is_secret_key(k)}
    if isinstance(value, (list, tuple)):
        return [strip_secrets(v) for v in value]
    return value
