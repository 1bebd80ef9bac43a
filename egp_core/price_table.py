"""The price table people see and edit: the defaults with the saved prices on top, and saving it.

Prices are shared by everyone (every cost estimate reads them), so saving checks
that the acting person may change shared settings (`egp_core.admins`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from egp_core.admins import Actor
from egp_core.pricing import DEFAULT_PRICES

Row = tuple[str, float, float]
"""(model, USD per 1,000 prompt tokens, USD per 1,000 completion tokens)"""


def price_rows(saved: dict[str, tuple[float, float]]) -> list[Row]:
    """The table shown: the defaults, overridden and extended by the saved prices, by model name."""
    rows = {m: (p.prompt_per_1k, p.completion_per_1k) for m, p in DEFAULT_PRICES.items()}
    rows.update(saved)
    return [(m, p, c) for m, (p, c) in sorted(rows.items(), key=lambda r: r[0].lower())]


def _wanted(edited: Iterable[tuple[Any, Any, Any]]) -> dict[str, tuple[float, float]] | str:
    """The edited table as model -> prices, or a sentence saying which row is wrong."""
    wanted: dict[str, tuple[float, float]] = {}
    for model, prompt, completion in edited:
        model = str(model or "").strip()
        if not model:
            continue
        try:
            prices = (float(prompt or 0), float(completion or 0))
        except (TypeError, ValueError):
            return f"The prices for {model} must be numbers."
        if min(prices) < 0:
            return f"The prices for {model} cannot be negative."
        wanted[model] = prices
    return wanted


def save_price_table(store: Any, actor: Actor, edited: Iterable[tuple[Any, Any, Any]]) -> str | None:
    """Store the edited table (rows of model, prompt price, completion price); only prices that
    differ from the defaults are kept. Raises NotAllowed unless `actor` may change shared settings.
    Returns a sentence for the person when a row is wrong (nothing is saved then)."""
    actor.require_admin()
    wanted = _wanted(edited)
    if isinstance(wanted, str):
        return wanted
    saved = store.get_prices()
    for model, price in wanted.items():
        default = DEFAULT_PRICES.get(model)
        if default is not None and (default.prompt_per_1k, default.completion_per_1k) == price:
            if model in saved:
                store.delete_price(model)
        elif saved.get(model) != price:
            store.set_price(model, *price)
    for model in saved:
        if model not in wanted:
            store.delete_price(model)
    return None
