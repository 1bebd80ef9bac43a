"""egp_core.pricing: price lookup, cost estimates, formatting."""

from __future__ import annotations

import pytest

from egp_core.pricing import DEFAULT_PRICES, LOCAL_MODEL, Price, estimate_cost, format_cost, price_for
from egp_core.types import TokenUsage


def test_defaults_cover_well_known_models_and_local_is_free():
    for name in ("gpt-4o", "gpt-4o-mini", "gpt-4", "gpt-3.5-turbo", "claude-3-5-sonnet", "claude-3-haiku", "llama-3-70b"):
        price = DEFAULT_PRICES[name]
        assert price.prompt_per_1k > 0 and price.completion_per_1k >= price.prompt_per_1k
    assert DEFAULT_PRICES[LOCAL_MODEL] == Price(0.0, 0.0)
    assert DEFAULT_PRICES["gpt-4o-mini"].prompt_per_1k < DEFAULT_PRICES["gpt-4o"].prompt_per_1k


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("gpt-4o", "gpt-4o"),
        ("GPT-4o", "gpt-4o"),
        ("gpt-4o-2024-08-06", "gpt-4o"),
        ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
        ("gpt-4-0613", "gpt-4"),
        ("gpt-4-32k-0613", "gpt-4-32k"),
        ("gpt-3.5-turbo-0125", "gpt-3.5-turbo"),
        ("claude-3-5-sonnet-20241022", "claude-3-5-sonnet"),
        ("anthropic.claude-3-haiku-20240307-v1:0", "claude-3-haiku"),
        ("meta-llama/Meta-Llama-3-70B-Instruct", "llama-3-70b"),
        ("llama3-70b-8192", "llama-3-70b"),
        ("smollm2-135m-instruct", LOCAL_MODEL),
        ("SmolLM2-360M-Instruct", "smollm2"),
    ],
)
def test_price_for_matches(model, expected):
    assert price_for(model) == DEFAULT_PRICES[expected]


@pytest.mark.parametrize("model", ["gpt-4.5-preview", "my-finetune", "", None, "gpt-4oops"])
def test_unknown_models_have_no_price(model):
    assert price_for(model) is None


def test_overrides_win_and_add_models():
    overrides = {"gpt-4o": (1.0, 2.0), "My-Model": (0.5, 0.5)}
    assert price_for("gpt-4o", overrides) == Price(1.0, 2.0)
    assert price_for("gpt-4o-2024-05-13", overrides) == Price(1.0, 2.0)
    assert price_for("my-model", overrides) == Price(0.5, 0.5)
    assert price_for("my-model-v2", overrides) == Price(0.5, 0.5)
    assert price_for("gpt-4o-mini", overrides) == DEFAULT_PRICES["gpt-4o-mini"]
    assert price_for("GPT-4O", {"GPT-4O": (9.0, 9.0)}) == Price(9.0, 9.0)


def test_estimate_cost():
    price = Price(0.01, 0.03)
    assert estimate_cost(TokenUsage(prompt=1000, completion=500, total=1500), price) == pytest.approx(0.025)
    assert estimate_cost({"prompt": 200, "completion": 100, "total": 300}, price) == pytest.approx(0.005)
    assert estimate_cost({"prompt_tokens": 200, "completion_tokens": 100}, price) == pytest.approx(0.005)
    assert estimate_cost({"prompt": 200, "total": 300}, price) == pytest.approx(0.005)
    assert estimate_cost(TokenUsage(total=300), price) is None  # split unknown, prices differ
    assert estimate_cost(TokenUsage(total=300), Price(0.01, 0.01)) == pytest.approx(0.003)
    assert estimate_cost(TokenUsage(total=300), Price(0.0, 0.0)) == 0.0
    assert estimate_cost(None, price) is None
    assert estimate_cost(TokenUsage(prompt=1, completion=1, total=2), None) is None
    assert estimate_cost({}, price) is None


@pytest.mark.parametrize(
    ("usd", "text"),
    [(0.0021, "$0.0021"), (0.0, "free"), (0.00001, "<$0.0001"), (None, "—"), (1.234, "$1.23"), (1234.5, "$1,234.50"),
     (0.01234, "$0.0123")],
)
def test_format_cost(usd, text):
    assert format_cost(usd) == text
