"""Prices per 1,000 tokens and cost estimates.

`DEFAULT_PRICES` holds public list prices (USD) of well-known models; a person's
own table (`overrides`) wins over them. Matching is exact, then
case-insensitive, then by family prefix ("gpt-4o-2024-08-06" -> "gpt-4o").
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from egp_core.types import TokenUsage


@dataclass(frozen=True, slots=True)
class Price:
    """USD per 1,000 prompt tokens and per 1,000 completion tokens."""

    prompt_per_1k: float
    completion_per_1k: float

    @property
    def is_free(self) -> bool:
        return self.prompt_per_1k == 0 and self.completion_per_1k == 0


LOCAL_MODEL = "SmolLM2-135M-Instruct"

DEFAULT_PRICES: dict[str, Price] = {
    # OpenAI
    "gpt-4o": Price(0.0025, 0.01),
    "gpt-4o-mini": Price(0.00015, 0.0006),
    "gpt-4.1": Price(0.002, 0.008),
    "gpt-4.1-mini": Price(0.0004, 0.0016),
    "gpt-4.1-nano": Price(0.0001, 0.0004),
    "gpt-4-turbo": Price(0.01, 0.03),
    "gpt-4": Price(0.03, 0.06),
    "gpt-4-32k": Price(0.06, 0.12),
    "gpt-3.5-turbo": Price(0.0005, 0.0015),
    "gpt-3.5-turbo-16k": Price(0.003, 0.004),
    # Anthropic
    "claude-3-5-sonnet": Price(0.003, 0.015),
    "claude-3-7-sonnet": Price(0.003, 0.015),
    "claude-3-5-haiku": Price(0.0008, 0.004),
    "claude-3-opus": Price(0.015, 0.075),
    "claude-3-sonnet": Price(0.003, 0.015),
    "claude-3-haiku": Price(0.00025, 0.00125),
    "claude-2": Price(0.008, 0.024),
    "claude-instant-1": Price(0.0008, 0.0024),
    # Google
    "gemini-1.5-pro": Price(0.00125, 0.005),
    "gemini-1.5-flash": Price(0.000075, 0.0003),
    "gemini-pro": Price(0.0005, 0.0015),
    # Open models at typical hosted prices
    "llama-3-70b": Price(0.00088, 0.00088),
    "llama-3-8b": Price(0.0002, 0.0002),
    "llama-3.1-405b": Price(0.0035, 0.0035),
    "llama-3.1-70b": Price(0.00088, 0.00088),
    "llama-3.1-8b": Price(0.00018, 0.00018),
    "llama-2-70b": Price(0.0009, 0.0009),
    "llama-2-13b": Price(0.00022, 0.00022),
    "llama-2-7b": Price(0.0002, 0.0002),
    "mixtral-8x7b": Price(0.0006, 0.0006),
    "mistral-7b": Price(0.0002, 0.0002),
    # The bundled local model runs on this machine: no charge.
    LOCAL_MODEL: Price(0.0, 0.0),
    "smollm2": Price(0.0, 0.0),
}

_BOUNDARY = "-_:@ "
_VENDOR_PREFIXES = ("meta-", "openai-", "anthropic-", "mistralai-")


def _normalise(model: str) -> str:
    """Lower-case, without a vendor folder ("meta-llama/Llama-3-70b" -> "llama-3-70b")."""
    name = model.strip().lower().rsplit("/", 1)[-1]
    name = re.sub(r"^(anthropic|openai|meta|mistral)\.", "", name)  # Bedrock-style ids
    for prefix in _VENDOR_PREFIXES:
        if name.startswith(prefix) and len(name) > len(prefix):
            name = name[len(prefix):]
            break
    return re.sub(r"^llama(\d)", r"llama-\1", name)  # "llama3-70b" -> "llama-3-70b"


def _table(overrides: Mapping[str, Any] | None) -> dict[str, Price]:
    table = dict(DEFAULT_PRICES)
    for name, value in (overrides or {}).items():
        table[name] = value if isinstance(value, Price) else Price(float(value[0]), float(value[1]))
    return table


def price_for(model: str | None, overrides: Mapping[str, tuple[float, float] | Price] | None = None) -> Price | None:
    """The price of `model`, or None when it is not known. `overrides` are the person's own prices."""
    if not model:
        return None
    table = _table(overrides)
    user = set(overrides or ())
    if model in table:
        return table[model]
    lowered = {}
    for name, price in table.items():  # the person's entries win over defaults on a tie
        if name.lower() not in lowered or name in user:
            lowered[name.lower()] = price
    if model.lower() in lowered:
        return lowered[model.lower()]
    candidates = {model.strip().lower(), _normalise(model)}
    best: tuple[int, Price] | None = None
    for key, price in lowered.items():
        for name in candidates:
            if name.startswith(key) and (len(name) == len(key) or name[len(key)] in _BOUNDARY):
                if best is None or len(key) > best[0]:
                    best = (len(key), price)
    return best[1] if best else None


def _tokens(usage: TokenUsage | Mapping[str, Any]) -> tuple[int | None, int | None, int | None]:
    if isinstance(usage, TokenUsage):
        return usage.prompt, usage.completion, usage.total
    prompt = usage.get("prompt", usage.get("prompt_tokens"))
    completion = usage.get("completion", usage.get("completion_tokens"))
    total = usage.get("total", usage.get("total_tokens"))
    return prompt, completion, total


def estimate_cost(usage: TokenUsage | Mapping[str, Any] | None, price: Price | None) -> float | None:
    """Estimated USD for one answer, or None when the price or the token counts are unknown."""
    if usage is None or price is None:
        return None
    prompt, completion, total = _tokens(usage)
    if price.is_free:
        return 0.0
    if prompt is None and completion is None:
        if total is not None and price.prompt_per_1k == price.completion_per_1k:
            return total * price.prompt_per_1k / 1000
        return None
    if prompt is None or completion is None:
        if total is None:
            return None
        prompt = total - completion if prompt is None else prompt
        completion = total - prompt if completion is None else completion
    return (prompt * price.prompt_per_1k + completion * price.completion_per_1k) / 1000


def format_cost(usd: float | None) -> str:
    """"$0.0021", "free", "<$0.0001", "$1.25", or "—" when unknown."""
    if usd is None:
        return "—"
    if usd == 0:
        return "free"
    if usd < 0.0001:
        return "<$0.0001"
    if usd < 1:
        return f"${usd:.4f}"
    return f"${usd:,.2f}"
