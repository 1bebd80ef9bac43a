"""What a run's results say: per contestant, paired verdicts, repeat agreement, and the rows to show.

Works on the light results (no texts) of `Records.light_results`, so a run of
10,000 rows x 4 contestants is summarised without loading its outputs.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Any

from . import stats

FILTERS = ("All rows", "Failures only", "Disagreements")


@dataclass
class ContestantSummary:
    index: int
    name: str
    results: int
    errors: int
    graded: int
    passed: int
    low: float
    high: float
    judge_mean: float | None
    p50: float | None
    p95: float | None
    cost: float
    tokens: int
    agreement: float | None
    reviews: int = 0
    review_mean: float | None = None  # people's grades, 1-5 (👍 counts 5, 👎 1)

    @property
    def pass_rate(self) -> float | None:
        return self.passed / self.graded if self.graded else None


def row_verdicts(light: Sequence[dict[str, Any]]) -> dict[int, dict[int, bool | None]]:
    """row -> contestant -> passed (the majority of its graded repeats; None when none was graded)."""
    votes: dict[tuple[int, int], list[bool]] = defaultdict(list)
    seen: dict[int, set[int]] = defaultdict(set)
    for r in light:
        seen[r["row_index"]].add(r["contestant"])
        if r["passed"] is not None:
            votes[(r["row_index"], r["contestant"])].append(bool(r["passed"]))
    out: dict[int, dict[int, bool | None]] = {}
    for row, contestants in seen.items():
        out[row] = {}
        for c in contestants:
            v = votes.get((row, c))
            out[row][c] = (sum(v) * 2 > len(v)) if v else None
    return out


def contestants(light: Sequence[dict[str, Any]], names: Sequence[str],
                outputs_by_row: dict[tuple[int, int], list[str]] | None = None) -> list[ContestantSummary]:
    out = []
    for ci, name in enumerate(names):
        mine = [r for r in light if r["contestant"] == ci]
        graded = [r for r in mine if r["passed"] is not None]
        passed = sum(1 for r in graded if r["passed"])
        low, high = stats.wilson(passed, len(graded))
        judged = [r["judge_score"] for r in mine if r["judge_score"] is not None]
        latencies = [r["latency"] for r in mine if r["latency"] is not None and r["status"] == "ok"]
        agreement = None
        if outputs_by_row:
            values = [stats.agreement(v) for (row, c), v in outputs_by_row.items() if c == ci]
            values = [v for v in values if v is not None]
            agreement = sum(values) / len(values) if values else None
        reviewed = [r["review_score"] for r in mine if r.get("review_score") is not None]
        out.append(ContestantSummary(
            index=ci, name=name, results=len(mine), errors=sum(1 for r in mine if r["status"] == "error"),
            graded=len(graded), passed=passed, low=low, high=high,
            judge_mean=sum(judged) / len(judged) if judged else None,
            p50=stats.percentile(latencies, 50), p95=stats.percentile(latencies, 95),
            cost=sum(r["cost"] or 0.0 for r in mine),
            tokens=sum((r["prompt_tokens"] or 0) + (r["completion_tokens"] or 0) for r in mine),
            agreement=agreement, reviews=len(reviewed),
            review_mean=sum(reviewed) / len(reviewed) if reviewed else None))
    return out


def verdicts(light: Sequence[dict[str, Any]], names: Sequence[str]) -> list[stats.Paired]:
    """The paired verdict of every pair of contestants, on the rows graded for both."""
    per_row = row_verdicts(light)
    out = []
    for a, b in combinations(range(len(names)), 2):
        pairs = [(v[a], v[b]) for v in per_row.values() if v.get(a) is not None and v.get(b) is not None]
        out.append(stats.verdict(names[a], names[b], [p[0] for p in pairs], [p[1] for p in pairs]))
    return out


def filtered_rows(light: Sequence[dict[str, Any]], which: str) -> list[int]:
    """Dataset rows with results, filtered: failures (any failed or errored answer) or disagreements."""
    rows: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for r in light:
        rows[r["row_index"]].append(r)
    if which == FILTERS[1]:
        return sorted(i for i, rs in rows.items() if any(r["status"] == "error" or r["passed"] is False for r in rs))
    if which == FILTERS[2]:
        per_row = row_verdicts(light)
        return sorted(i for i, v in per_row.items() if len({p for p in v.values() if p is not None}) > 1)
    return sorted(rows)
