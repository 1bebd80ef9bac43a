"""Graders: is an answer right? Several per run, each a small dict (saved with the run).

    {"kind": "contains"}                                   the expected text appears in the answer
    {"kind": "equals", "ignore_case": True, "ignore_whitespace": True}
    {"kind": "regex", "pattern": r"^\\d+$"}
    {"kind": "json"}                                       the answer is valid JSON
    {"kind": "json_schema", "schema": {...}}               ... and matches this JSON schema
    {"kind": "number", "tolerance": 0.01}                  the first number is within 0.01 of the expected one
    {"kind": "judge", "connection_id", "model", "rubric", "prompt", "pass_score": 4}

`grade(spec, output, expected)` runs the rule-based ones. The judge is a model:
`judge_prompt(...)` is what it is asked (visible and editable on the page),
and `parse_judge(text)` reads its 1-5 score and one-line reason, robustly;
an answer with no score gives `Grade(passed=None, note="The judge gave no score ...")`.
Human review (thumbs or 1-5, a note) is stored per result, not graded here.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from egp_core.json_answers import check_answer, schema_problem
from egp_core.templates import TemplateError, render

KINDS = {
    "contains": "Contains the expected text",
    "equals": "Equals the expected text",
    "regex": "Matches a regular expression",
    "json": "Is valid JSON",
    "json_schema": "Matches a JSON schema",
    "number": "Is a number within a tolerance",
    "judge": "An LLM judge (score 1–5)",
}
NEEDS_EXPECTED = ("contains", "equals", "number")

DEFAULT_RUBRIC = "The answer is correct, complete and says nothing false. It agrees with the expected answer."
DEFAULT_JUDGE_PROMPT = """You are grading an answer given by an AI assistant.

Rubric: {{rubric}}

The question:
{{question}}

The expected answer (may be empty):
{{expected}}

The answer to grade:
{{answer}}

Give a score from 1 (bad) to 5 (excellent) following the rubric, and one short sentence saying why.
Reply in exactly this form:
Score: <1-5>
Reason: <one sentence>"""
DEFAULT_PASS_SCORE = 4


@dataclass(frozen=True, slots=True)
class Grade:
    """One grader's verdict on one answer: passed (None when it could not tell), a score, a note."""

    passed: bool | None
    score: float | None = None
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "score": self.score, "note": self.note}


def check_spec(spec: dict[str, Any]) -> str | None:
    """None when the grader can be used, else a sentence saying what to fix."""
    kind = spec.get("kind")
    if kind not in KINDS:
        return f"Unknown grader {kind!r}."
    if kind == "regex":
        pattern = spec.get("pattern") or ""
        if not pattern:
            return "Type the regular expression the answer must match."
        try:
            re.compile(pattern)
        except re.error as exc:
            return f"The regular expression is not valid: {exc}."
    if kind == "json_schema":
        schema = spec.get("schema")
        if isinstance(schema, str):
            try:
                schema = json.loads(schema)
            except ValueError as exc:
                return f"The JSON schema is not valid JSON: {str(exc).split(':')[0].lower()}."
        return schema_problem(schema)
    if kind == "number":
        try:
            if float(spec.get("tolerance", 0)) < 0:
                return "The tolerance cannot be negative."
        except (TypeError, ValueError):
            return "The tolerance must be a number, like 0.01."
    if kind == "judge":
        if not spec.get("model"):
            return "Pick the model that judges the answers."
        try:
            render(spec.get("prompt") or DEFAULT_JUDGE_PROMPT, _judge_values("q", "a", "e", "r"))
        except TemplateError as exc:
            return f"The judge's prompt cannot be used: {exc.message}"
    return None


def _normal(text: str, ignore_case: bool, ignore_whitespace: bool) -> str:
    if ignore_whitespace:
        text = " ".join(text.split())
    if ignore_case:
        text = text.casefold()
    return text


_NUMBER = re.compile(r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)?(?:\.\d+)?(?:[eE][-+]?\d+)?")


def first_number(text: str) -> float | None:
    """The first number written in the text ("about 1,234.5 km" -> 1234.5), or None."""
    for match in _NUMBER.finditer(text or ""):
        token = match.group(0)
        if not any(c.isdigit() for c in token):
            continue
        try:
            return float(token.replace(",", ""))
        except ValueError:
            continue
    return None


def grade(spec: dict[str, Any], output: str, expected: str | None) -> Grade:
    """Grade `output` by a rule-based grader (not the judge)."""
    kind = spec.get("kind")
    output = output or ""
    if kind in NEEDS_EXPECTED and not (expected or "").strip():
        return Grade(None, note="No expected answer in this row.")
    expected = expected or ""
    if kind == "contains":
        ic = spec.get("ignore_case", True)
        iw = spec.get("ignore_whitespace", True)
        ok = _normal(expected, ic, iw).strip() in _normal(output, ic, iw)
        return Grade(ok, note="" if ok else "The expected text is not in the answer.")
    if kind == "equals":
        ic = spec.get("ignore_case", False)
        iw = spec.get("ignore_whitespace", False)
        ok = _normal(output, ic, iw).strip() == _normal(expected, ic, iw).strip()
        return Grade(ok, note="" if ok else "The answer differs from the expected text.")
    if kind == "regex":
        ok = re.search(spec.get("pattern") or "", output, flags=re.MULTILINE) is not None
        return Grade(ok, note="" if ok else "The answer does not match the pattern.")
    if kind in ("json", "json_schema"):
        return _grade_json(spec, output)
    if kind == "number":
        got, want = first_number(output), first_number(expected)
        if want is None:
            return Grade(None, note="The expected answer holds no number.")
        if got is None:
            return Grade(False, note="The answer holds no number.")
        tolerance = float(spec.get("tolerance", 0) or 0)
        ok = abs(got - want) <= tolerance + 1e-12 * max(1.0, abs(want))
        return Grade(ok, note="" if ok else f"{got:g} is not within {tolerance:g} of {want:g}.")
    raise ValueError(f"not a rule-based grader: {kind!r}")


def _strip_fence(text: str) -> str:
    """The JSON inside a ```json fence, when the answer wraps it in one."""
    match = re.search(r"```(?:json)?\s*\n(.*?)\n?```", text, flags=re.DOTALL)
    return match.group(1) if match else text


def _grade_json(spec: dict[str, Any], output: str) -> Grade:
    schema = spec.get("schema") if spec.get("kind") == "json_schema" else None
    if isinstance(schema, str):
        schema = json.loads(schema)
    checked = check_answer(_strip_fence(output).strip(), schema)
    return Grade(checked.ok, note=checked.message[:300])


# ----- the LLM judge ---------------------------------------------------------------------------


def _judge_values(question: str, answer: str, expected: str | None, rubric: str) -> dict[str, str]:
    return {"question": question, "answer": answer, "expected": expected or "", "rubric": rubric}


def judge_prompt(spec: dict[str, Any], question: str, answer: str, expected: str | None) -> str:
    """What the judge is asked about one answer."""
    return render(spec.get("prompt") or DEFAULT_JUDGE_PROMPT,
                  _judge_values(question, answer, expected, spec.get("rubric") or DEFAULT_RUBRIC))


_SCORE_PATTERNS = (
    re.compile(r"score\W{0,5}(?:is\W{0,3})?([1-5](?:\.\d+)?)(?!\d)(?:\s*(?:/|out of)\s*5)?", re.IGNORECASE),
    re.compile(r"(?<![\d.])([1-5](?:\.\d+)?)\s*(?:/|out of)\s*5(?!\d)", re.IGNORECASE),
    re.compile(r"^\W*([1-5])\W*$", re.MULTILINE),
)
_REASON = re.compile(r"(?:reason|because|explanation)\W{0,5}(.+)", re.IGNORECASE)


def parse_judge(text: str, pass_score: float = DEFAULT_PASS_SCORE) -> Grade:
    """The judge's score (1-5) and one-line reason, from "Score: 4 / Reason: ...", JSON, "4/5", ...

    No score found: passed None, and a note quoting the start of what the judge said."""
    text = (text or "").strip()
    score: float | None = None
    reason = ""
    after = ""
    try:
        data = json.loads(_strip_fence(text))
        if isinstance(data, dict):
            raw = data.get("score", data.get("Score"))
            if isinstance(raw, (int, float, str)) and not isinstance(raw, bool):
                score = float(raw)
            reason = str(data.get("reason") or data.get("Reason") or "")
    except ValueError:
        pass
    if score is None:
        for pattern in _SCORE_PATTERNS:
            match = pattern.search(text)
            if match:
                score = float(match.group(1))
                after = text[match.end():]
                break
    if score is None or not 1 <= score <= 5:
        shown = " ".join(text.split())[:120] or "(nothing)"
        return Grade(None, note=f"The judge gave no score: “{shown}”.")
    if not reason:
        match = _REASON.search(text)
        reason = match.group(1) if match else after.lstrip(" .:*-\n")
    reason = " ".join(reason.split()).strip(" *:\"")[:300]
    return Grade(score >= pass_score, score=score, note=reason)
