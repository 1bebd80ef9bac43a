"""egp_core.admins and egp_core.price_table without Streamlit: who may change the shared price
table, and what saving an edited table stores (on SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest

from egp_core.admins import Actor, NotAllowed, admins_from
from egp_core.price_table import price_rows, save_price_table
from egp_core.pricing import DEFAULT_PRICES

ANN = "ann@example.com"


def test_admins_are_read_from_secrets_in_any_case():
    assert admins_from({"playground": {"admins": [" Ann@Example.com ", "bob@example.com", ""]}}) == {
        ANN, "bob@example.com"}
    assert admins_from({"playground": {"admins": ANN}}) == {ANN}
    assert admins_from({}) == frozenset() and admins_from(None) == frozenset()
    assert admins_from({"playground": "nonsense"}) == frozenset()


def test_who_may_change_shared_settings():
    assert Actor("local").is_admin  # personal mode: the one local user
    assert Actor("ANN@example.com", team_mode=True, admins=frozenset({ANN})).is_admin
    bob = Actor("bob@example.com", team_mode=True, admins=frozenset({ANN}))
    assert not bob.is_admin and "only the team's admins" in bob.why_read_only()
    nobody = Actor(ANN, team_mode=True)
    assert "[playground] admins" in nobody.why_read_only()


def test_a_non_admin_cannot_save_prices_and_nothing_changes(store):
    store.set_price("fake-model", 1.0, 2.0)
    bob = Actor("bob@example.com", team_mode=True, admins=frozenset({ANN}))
    with pytest.raises(NotAllowed, match="only the team's admins"):
        save_price_table(store, bob, [("fake-model", 9.0, 9.0)])
    assert store.get_prices() == {"fake-model": (1.0, 2.0)}


def test_an_admin_saves_only_what_differs_from_the_defaults(store):
    ann = Actor(ANN, team_mode=True, admins=frozenset({ANN}))
    store.set_price("old-model", 1.0, 1.0)
    rows = [r for r in price_rows(store.get_prices()) if r[0] != "old-model"]  # a row deleted
    rows = [(m, 0.5, c) if m == "gpt-4o" else (m, p, c) for m, p, c in rows]  # a row edited
    rows.append(("fake-model", "1", 2))  # a row added (numbers as the editor may give them)
    assert save_price_table(store, ann, rows) is None
    assert store.get_prices() == {"gpt-4o": (0.5, DEFAULT_PRICES["gpt-4o"].completion_per_1k),
                                  "fake-model": (1.0, 2.0)}
    assert save_price_table(store, ann, [("cheap", -1, 0)]) == "The prices for cheap cannot be negative."
    assert save_price_table(store, ann, [("odd", "x", 0)]) == "The prices for odd must be numbers."
    assert store.get_prices() == {"gpt-4o": (0.5, DEFAULT_PRICES["gpt-4o"].completion_per_1k),
                                  "fake-model": (1.0, 2.0)}
