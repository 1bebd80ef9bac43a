"""Statistics of a run, and what they mean in one sentence.

- `wilson(k, n)`: the 95% Wilson score interval of a pass rate.
- `mcnemar_exact(b, c)`: the exact (binomial, two-sided) McNemar p-value of
  paired pass/fail results; the same as the sign test on the discordant pairs.
- `sign_test(wins, losses)`: the two-sided sign test on paired scores.
- `verdict(...)`: "B passes 14 more of 200 rows than A; that difference is
  unlikely to be chance (p = 0.01)", or says there is not enough evidence yet.
- `agreement(...)`: how often repeated answers to one row agree.
- `percentile(values, q)`: p50, p95 of latencies (linear interpolation).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations

Z95 = 1.959963984540054
SIGNIFICANT = 0.05


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval (without continuity correction) of successes/n. (0, 1) when n is 0."""
    if n <= 0:
        return 0.0, 1.0
    if not 0 <= successes <= n:
        raise ValueError("successes must be between 0 and n")
    p = successes / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def _binomial_two_sided(k: int, n: int) -> float:
    """Two-sided exact p-value of k or fewer (or as extreme the other way) of n fair coin flips."""
    if n == 0:
        return 1.0
    k = min(k, n - k)
    # log-space sum, so n in the tens of thousands stays exact enough
    log_half_n = n * math.log(0.5)
    tail = 0.0
    for i in range(k + 1):
        tail += math.exp(math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) + log_half_n)
    return min(1.0, 2 * tail)


def mcnemar_exact(b: int, c: int) -> float:
    """Exact McNemar p-value: b = pairs only the first passed, c = pairs only the second passed."""
    return _binomial_two_sided(min(b, c), b + c)


def sign_test(wins: int, losses: int) -> float:
    """Two-sided sign test p-value (ties left out before calling)."""
    return _binomial_two_sided(min(wins, losses), wins + losses)


def format_p(p: float) -> str:
    if p < 0.001:
        return "p < 0.001"
    if p < 0.01:
        return f"p = {p:.3f}"
    return f"p = {p:.2f}"


@dataclass(frozen=True, slots=True)
class Paired:
    """Two contestants on the rows both were graded on."""

    n: int  # rows graded for both
    only_a: int  # rows A passed and B failed
    only_b: int  # rows B passed and A failed
    p_value: float
    sentence: str


def verdict(name_a: str, name_b: str, passed_a: Sequence[bool], passed_b: Sequence[bool],
            alpha: float = SIGNIFICANT) -> Paired:
    """The paired comparison of two contestants' pass/fail on the same rows, in one sentence."""
    if len(passed_a) != len(passed_b):
        raise ValueError("paired results must have the same length")
    n = len(passed_a)
    only_a = sum(1 for a, b in zip(passed_a, passed_b, strict=True) if a and not b)
    only_b = sum(1 for a, b in zip(passed_a, passed_b, strict=True) if b and not a)
    p = mcnemar_exact(only_a, only_b)
    rows = f"{n:,} row" + ("" if n == 1 else "s")
    if n == 0:
        return Paired(0, 0, 0, 1.0, f"Not enough evidence yet: no row has a grade for both {name_a} and {name_b}.")
    diff = only_b - only_a
    if diff == 0:
        sentence = (f"{name_a} and {name_b} pass the same number of the {rows}; "
                    "not enough evidence yet that either is better.")
        return Paired(n, only_a, only_b, p, sentence)
    better, worse = (name_b, name_a) if diff > 0 else (name_a, name_b)
    head = f"{better} passes {abs(diff):,} more of {rows} than {worse}"
    if p < alpha:
        sentence = f"{head}; that difference is unlikely to be chance ({format_p(p)})."
    else:
        sentence = f"{head}; not enough evidence yet: a difference this size could be chance ({format_p(p)})."
    return Paired(n, only_a, only_b, p, sentence)


def agreement(answers: Sequence[str]) -> float | None:
    """The share of pairs of repeated answers that agree (same text, case and spacing aside). None for < 2."""
    normal = [" ".join((a or "").split()).casefold() for a in answers]
    pairs = list(combinations(normal, 2))
    if not pairs:
        return None
    return sum(1 for x, y in pairs if x == y) / len(pairs)


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0-100) with linear interpolation, as numpy's default. None when empty."""
    data = sorted(v for v in values if v is not None)
    if not data:
        return None
    pos = (len(data) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)
