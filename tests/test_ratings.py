"""Bradley–Terry ratings from blind rounds: counts, order, uncertainty."""

from __future__ import annotations

import math

from egp_core.ratings import BASE, Round, standings


def by_name(rows):
    return {r.contestant: r for r in rows}


def test_every_appearance_counts_even_of_the_same_contestant():
    rows = by_name(standings([Round(("m", "m", "m"), 0)]))
    assert rows["m"].appearances == 3
    assert (rows["m"].wins, rows["m"].losses, rows["m"].ties) == (1, 2, 0)
    assert rows["m"].rating == BASE  # against itself it learns nothing


def test_ties_and_losses():
    rows = by_name(standings([Round(("a", "b"), None), Round(("a", "b"), 1), Round(("a", "b", "c"), 2)]))
    assert (rows["a"].wins, rows["a"].ties, rows["a"].losses) == (0, 1, 2)
    assert (rows["b"].wins, rows["b"].ties, rows["b"].losses) == (1, 1, 1)
    assert (rows["c"].wins, rows["c"].ties, rows["c"].losses) == (1, 0, 0)


def test_stronger_contestant_rates_higher_and_more_games_narrow_the_interval():
    few = by_name(standings([Round(("a", "b"), 0)] * 3 + [Round(("a", "b"), 1)]))
    many = by_name(standings([Round(("a", "b"), 0)] * 30 + [Round(("a", "b"), 1)] * 10))
    for rows in (few, many):
        assert rows["a"].rating > BASE > rows["b"].rating
        assert rows["a"].low < rows["a"].rating < rows["a"].high
    assert many["a"].margin < few["a"].margin


def test_unbeaten_rating_stays_finite():
    rows = by_name(standings([Round(("a", "b"), 0)] * 20))
    assert math.isfinite(rows["a"].rating) and math.isfinite(rows["a"].high)
    assert rows["a"].rating > rows["b"].rating


def test_matches_the_closed_form_for_two_players():
    # a beats b w times, loses l times; with the prior (a half win against strength 1 each),
    # the MM fixed point must satisfy the likelihood equations: check the win share it implies.
    rows = standings([Round(("a", "b"), 0)] * 6 + [Round(("a", "b"), 1)] * 2)
    a, b = by_name(rows)["a"], by_name(rows)["b"]
    pa = 10 ** ((a.rating - BASE) / 400)
    pb = 10 ** ((b.rating - BASE) / 400)
    # a's expected wins = observed wins, over the 8 real games plus the virtual one
    expected = 8 * pa / (pa + pb) + pa / (pa + 1)
    assert abs(expected - (6 + 0.5)) < 1e-6


def test_sorted_best_first():
    rows = standings([Round(("a", "b", "c"), 2)] * 4 + [Round(("a", "b"), 0)] * 3)
    assert [r.contestant for r in rows][0] == "c"
    assert standings([]) == []
