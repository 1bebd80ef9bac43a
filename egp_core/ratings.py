"""Ratings from blind rounds: wins, ties, losses and a Bradley–Terry rating with its uncertainty.

A round is a list of contestants (one per pane) and its outcome: the winner's
position, or None for a tie ("tie" or "both bad"). Every appearance counts, so
three panes of the same contestant in one round are three appearances.

The rating is the Bradley–Terry model fitted by maximum likelihood on the
pairwise results a round implies (the winner beats each other pane; a tie is
half a win each way), shown on the Elo scale (1000 = average, +400 = ten times
the odds of winning). A weak prior (one virtual tie against an average player)
keeps an unbeaten contestant's rating finite. The uncertainty is a 95%
interval from the curvature of the likelihood (standard errors from the
inverse Fisher information).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

ELO_SCALE = 400 / math.log(10)
BASE = 1000.0


@dataclass(frozen=True, slots=True)
class Round:
    contestants: tuple[str, ...]
    winner: int | None  # position of the winning pane; None: a tie (or "both bad")


@dataclass(slots=True)
class Standing:
    contestant: str
    appearances: int = 0
    wins: int = 0
    ties: int = 0
    losses: int = 0
    rating: float = BASE
    low: float = BASE
    high: float = BASE

    @property
    def margin(self) -> float:
        return (self.high - self.low) / 2


def standings(rounds: Sequence[Round], iterations: int = 5000) -> list[Standing]:
    """One Standing per contestant, best rating first."""
    table: dict[str, Standing] = {}
    pairs: dict[tuple[str, str], float] = {}  # (a, b) -> wins of a over b (ties count half)
    for r in rounds:
        for pos, name in enumerate(r.contestants):
            row = table.setdefault(name, Standing(name))
            row.appearances += 1
            if r.winner is None:
                row.ties += 1
            elif pos == r.winner:
                row.wins += 1
            else:
                row.losses += 1
        for i, a in enumerate(r.contestants):
            for j, b in enumerate(r.contestants):
                if i >= j or a == b:  # the same contestant against itself tells nothing
                    continue
                if r.winner is None:
                    share_a = 0.5
                elif r.winner == i:
                    share_a = 1.0
                elif r.winner == j:
                    share_a = 0.0
                else:  # both lost to a third pane: no information between them
                    continue
                pairs[(a, b)] = pairs.get((a, b), 0.0) + share_a
                pairs[(b, a)] = pairs.get((b, a), 0.0) + 1.0 - share_a
    names = list(table)
    strength = _fit(names, pairs, iterations)
    errors = _standard_errors(names, pairs, strength)
    for name in names:
        beta = math.log(strength[name])
        row = table[name]
        row.rating = BASE + ELO_SCALE * beta
        half = 1.96 * ELO_SCALE * errors[name]
        row.low, row.high = row.rating - half, row.rating + half
    return sorted(table.values(), key=lambda r: (-r.rating, -r.wins, r.contestant))


def _fit(names: list[str], pairs: dict[tuple[str, str], float], iterations: int) -> dict[str, float]:
    """Bradley–Terry strengths by Hunter's MM algorithm, with one virtual tie against strength 1."""
    p = dict.fromkeys(names, 1.0)
    for _ in range(iterations):
        new = {}
        for a in names:
            wins = 0.5  # the prior's half win
            denom = 1.0 / (p[a] + 1.0)  # one virtual game against strength 1
            for b in names:
                if a == b:
                    continue
                games = pairs.get((a, b), 0.0) + pairs.get((b, a), 0.0)
                if games:
                    wins += pairs.get((a, b), 0.0)
                    denom += games / (p[a] + p[b])
            new[a] = wins / denom
        change = max(abs(math.log(new[a] / p[a])) for a in names) if names else 0.0
        p = new
        if change < 1e-11:
            break
    return p


def _standard_errors(names: list[str], pairs: dict[tuple[str, str], float],
                     p: dict[str, float]) -> dict[str, float]:
    """Standard error of each log-strength: the diagonal of the inverse Fisher information."""
    n = len(names)
    if n == 0:
        return {}
    index = {name: i for i, name in enumerate(names)}
    info = [[0.0] * n for _ in range(n)]
    for a in names:
        i = index[a]
        info[i][i] += p[a] / (p[a] + 1.0) ** 2  # the prior's virtual game
        for b in names:
            j = index[b]
            if j <= i:
                continue
            games = pairs.get((a, b), 0.0) + pairs.get((b, a), 0.0)
            if not games:
                continue
            w = games * p[a] * p[b] / (p[a] + p[b]) ** 2
            info[i][i] += w
            info[j][j] += w
            info[i][j] -= w
            info[j][i] -= w
    inverse = _invert(info)
    return {name: math.sqrt(max(inverse[index[name]][index[name]], 0.0)) for name in names}


def _invert(matrix: list[list[float]]) -> list[list[float]]:
    """Gauss–Jordan inverse of a small positive-definite matrix."""
    n = len(matrix)
    a = [row[:] + [1.0 if i == j else 0.0 for j in range(n)] for i, row in enumerate(matrix)]
    for col in range(n):
        pivot = max(range(col, n), key=lambda r: abs(a[r][col]))
        a[col], a[pivot] = a[pivot], a[col]
        scale = a[col][col]
        a[col] = [v / scale for v in a[col]]
        for r in range(n):
            if r != col and a[r][col]:
                factor = a[r][col]
                a[r] = [v - factor * w for v, w in zip(a[r], a[col], strict=True)]
    return [row[n:] for row in a]
