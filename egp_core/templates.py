"""Prompt templates with {{variables}}: parse, check, list the variables, fill.

The whole language, on purpose nothing more (no expressions, no code runs):

- ``{{name}}`` is a variable. A name is one or more ASCII letters, digits or
  underscores, with no spaces, not even around it (``{{ name }}`` is an error
  that says so).
- ``{{name|default text}}`` gives it a default, used when no value is given.
  The default is everything after the first ``|`` up to the closing ``}}``,
  taken as it is (spaces, newlines and ``|`` included); it may be empty.
  A variable's default is the first one written for it; a placeholder with a
  default of its own uses that one (``{{a|x}} {{a}} {{a|y}}`` fills "x x y").
- ``\\{{`` writes a literal ``{{`` (the backslash is dropped). A backslash
  anywhere else is an ordinary character, so text cannot put a backslash right
  before a filled placeholder.
- ``}}`` on its own is ordinary text and stays as it is.

Anything else after ``{{`` (no closing ``}}``, an empty name, a name with a
space or a ``-``, a ``{{`` inside a placeholder) raises `TemplateError`, whose
message says what is wrong, where (line and column), and how to fix it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

OPEN, CLOSE, ESCAPED_OPEN = "{{", "}}", "\\{{"
_NAME = re.compile(r"[A-Za-z0-9_]+")


class TemplateError(ValueError):
    """A template that cannot be read, or filled: `message` is for a person.

    `position` is the 0-based character offset of the problem in the template
    (`line` and `column` count from 1); `missing` lists the variables that had
    no value, when that is the problem.
    """

    def __init__(self, message: str, template: str = "", position: int = 0, missing: tuple[str, ...] = ()):
        self.message = message
        self.position = position
        self.line = template.count("\n", 0, position) + 1
        self.column = position - (template.rfind("\n", 0, position) + 1) + 1
        self.missing = missing
        super().__init__(message)


@dataclass(frozen=True)
class Variable:
    name: str
    default: str | None = None  # None: no default, a value is required


@dataclass(frozen=True)
class Placeholder:
    name: str
    default: str | None
    position: int  # where its "{{" starts in the template


def parse(template: str) -> list[str | Placeholder]:
    """The template as literal text pieces and placeholders, in order."""
    parts: list[str | Placeholder] = []
    text: list[str] = []
    i = 0
    while True:
        start = template.find(OPEN, i)
        if start < 0:
            text.append(template[i:])
            break
        if start > 0 and template[start - 1] == "\\":
            text.append(template[i : start - 1] + OPEN)
            i = start + len(OPEN)
            continue
        text.append(template[i:start])
        end = template.find(CLOSE, start + len(OPEN))
        nested = template.find(OPEN, start + len(OPEN))
        if end < 0 or 0 <= nested < end:
            raise _error(template, start, "has a {{ that is never closed: close it with }}, or write \\{{ for a literal {{")
        body = template[start + len(OPEN) : end]
        name, bar, default = body.partition("|")
        _check_name(template, start, name)
        if text:
            parts.append("".join(text))
            text = []
        parts.append(Placeholder(name, default if bar else None, start))
        i = end + len(CLOSE)
    if any(text):
        parts.append("".join(text))
    return parts


def check(template: str) -> None:
    """Raise `TemplateError` if the template is malformed."""
    parse(template)


def variables(*templates: str) -> list[Variable]:
    """Each variable once, in order of first appearance, with the first default
    written for it anywhere. Several templates (a system prompt and a user
    message) are read as one set of variables, filled together by `render_all`."""
    return _variables([part for template in templates for part in parse(template)])


def _variables(parts: list[str | Placeholder]) -> list[Variable]:
    found: dict[str, Variable] = {}
    for part in parts:
        if isinstance(part, Placeholder) and found.get(part.name, Variable("")).default is None:
            found[part.name] = Variable(part.name, part.default)
    return list(found.values())


def render(template: str, values: Mapping[str, object]) -> str:
    """Fill the template. A value that is absent or None takes the default;
    other values are written with str(). Raises `TemplateError` naming every
    variable left without a value."""
    return render_all([template], values)[0]


def render_all(templates: list[str], values: Mapping[str, object]) -> list[str]:
    """Fill several templates with one set of variables (see `variables`)."""
    parsed = [parse(template) for template in templates]
    defaults = {v.name: v.default for v in _variables([part for parts in parsed for part in parts])}
    filled: list[str] = []
    missing: dict[str, tuple[str, int]] = {}
    for template, parts in zip(templates, parsed, strict=True):
        out: list[str] = []
        for part in parts:
            if isinstance(part, str):
                out.append(part)
                continue
            value = values.get(part.name)
            default = part.default if part.default is not None else defaults[part.name]
            if value is not None:
                out.append(str(value))
            elif default is not None:
                out.append(default)
            else:
                missing.setdefault(part.name, (template, part.position))
        filled.append("".join(out))
    if missing:
        names = tuple(missing)
        listed = ", ".join(names[:-1]) + " and " + names[-1] if len(names) > 1 else names[0]
        them = "it" if len(names) == 1 else "them"
        template, position = missing[names[0]]
        raise TemplateError(f"Fill in {listed}: the prompt has no value for {them}.", template, position, names)
    return filled


def escape(text: str) -> str:
    """Text made into a template that renders back to exactly this text."""
    return text.replace(OPEN, ESCAPED_OPEN)


def _check_name(template: str, start: int, name: str) -> None:
    if _NAME.fullmatch(name):
        return
    shown = (OPEN + name + CLOSE) if len(name) <= 40 else OPEN + name[:40] + "…"
    if not name.strip():
        why = "has no name: write a name between the braces, like {{topic}}"
    elif any(c.isspace() for c in name):
        suggestion = re.sub(r"\W+", "_", name.strip(), flags=re.ASCII).strip("_") or "name"
        why = f"{shown} has a space in its name: names are letters, digits and _ only, like {{{{{suggestion}}}}}"
    else:
        bad = next(c for c in name if not _NAME.fullmatch(c))
        why = f"{shown} has '{bad}' in its name: names are letters, digits and _ only"
    raise _error(template, start, why)


def _error(template: str, position: int, why: str) -> TemplateError:
    probe = TemplateError("", template, position)
    return TemplateError(f"The template {why} (line {probe.line}, column {probe.column}).", template, position)
