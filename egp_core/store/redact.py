"""Keeps secrets out of stored data: drops key-like fields from dicts before they are saved."""

from __future__ import annotations

from typing import Any

_SECRET_PARTS = ("api_key", "apikey", "secret", "password", "passwd", "authorization",
                 "credential", "private_key", "bearer", "cookie")


def is_secret_key(name: str) -> bool:
    """True for field names that may hold a credential (api_key, client_secret, access_token...).

    Token *counts* (max_tokens, prompt_tokens, token_usage...) are not secrets.
    """
    n = str(name).lower().replace("-", "_").replace(" ", "_")
    if any(part in n for part in _SECRET_PARTS):
        return True
    if "token" in n:
        return not ("tokens" in n or "token_usage" in n or "token_count" in n)
    return n in {"key", "auth"}


def strip_secrets(value: Any) -> Any:
    """A copy of `value` (dicts and lists, recursively) without secret-named fields."""
    if isinstance(value, dict):
        return {k: strip_secrets(v) for k, v in value.items() if not is_secret_key(k)}
    if isinstance(value, (list, tuple)):
        return [strip_secrets(v) for v in value]
    return value
