"""egp_core.evaluate.stats against textbook values."""

from __future__ import annotations

import pytest

from egp_core.evaluate.stats import agreement, format_p, mcnemar_exact, percentile, sign_test, verdict, wilson


@pytest.mark.parametrize(
    ("k", "n", "low", "high"),
    [  # Newcombe (1998), Statistics in Medicine 17:857-872, Table I, method 3 (Wilson score, no correction)
        (81, 263, 0.2553, 0.3662),
        (15, 148, 0.0624, 0.1605),
        (0, 20, 0.0, 0.1611),
        (1, 29, 0.0061, 0.1718),
        (29, 29, 0.8830, 1.0),
    ],
)
def test_wilson_matches_newcombe(k, n, low, high):
    lo, hi = wilson(k, n)
    assert lo == pytest.approx(low, abs=5e-5)
    assert hi == pytest.approx(high, abs=5e-5)


def test_wilson_of_nothing_is_everything_and_bad_counts_are_refused():
    assert wilson(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError):
        wilson(5, 3)


def test_mcnemar_exact_textbook_values():
    # Fagerland, Lydersen, Laake (2013), BMC Med Res Methodol 13:91: b = 1, c = 7 -> exact p = 0.070
    assert mcnemar_exact(1, 7) == pytest.approx(0.0703125)
    assert mcnemar_exact(7, 1) == mcnemar_exact(1, 7)
    # 10 discordant pairs all one way: 2 / 2**10
    assert mcnemar_exact(0, 10) == pytest.approx(2 / 1024)
    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(5, 5) == 1.0


def test_sign_test_textbook_value():
    # 9 of 10 non-tied pairs favour one side: p = 2 * (1 + 10) / 1024 = 0.0215
    assert sign_test(9, 1) == pytest.approx(22 / 1024)
    assert sign_test(3, 3) == 1.0


def test_large_counts_stay_finite():
    p = mcnemar_exact(4_000, 4_200)
    assert 0 < p < 0.05


def test_verdict_sentence_when_the_difference_is_real():
    # 200 rows: B passes 19 rows A fails, A passes 5 rows B fails: 14 more, exact p = 0.0066
    a = [True] * 5 + [False] * 19 + [True] * 150 + [False] * 26
    b = [False] * 5 + [True] * 19 + [True] * 150 + [False] * 26
    v = verdict("A", "B", a, b)
    assert (v.n, v.only_a, v.only_b) == (200, 5, 19)
    assert v.sentence == "B passes 14 more of 200 rows than A; that difference is unlikely to be chance (p = 0.007)."


def test_verdict_says_not_enough_evidence():
    a = [True] * 10 + [False] * 3
    b = [True] * 13
    v = verdict("gpt-4o", "claude", a, b)
    assert v.sentence.startswith("claude passes 3 more of 13 rows than gpt-4o; not enough evidence yet")
    assert "p = 0.25" in v.sentence
    same = verdict("A", "B", [True, False], [False, True])
    assert "same number" in same.sentence and "not enough evidence yet" in same.sentence
    assert "not enough evidence yet" in verdict("A", "B", [], []).sentence.lower()


def test_format_p():
    assert format_p(0.0004) == "p < 0.001"
    assert format_p(0.0066) == "p = 0.007"
    assert format_p(0.0123) == "p = 0.01"
    assert format_p(0.25) == "p = 0.25"


def test_agreement_of_repeats():
    assert agreement(["Paris", "paris ", "Paris"]) == 1.0
    assert agreement(["Paris", "Lyon"]) == 0.0
    assert agreement(["a", "a", "b"]) == pytest.approx(1 / 3)
    assert agreement(["only one"]) is None


def test_percentile_is_numpys_linear_rule():
    values = [1.0, 2.0, 3.0, 4.0, 10.0]
    assert percentile(values, 50) == 3.0
    assert percentile(values, 95) == pytest.approx(8.8)  # numpy.percentile(values, 95)
    assert percentile([], 50) is None
