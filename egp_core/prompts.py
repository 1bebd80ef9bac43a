"""Saved prompts as values: what a version holds, its variables, filling it, and diffs.

A prompt is a name plus immutable versions; each version holds the name,
description, system prompt, user message template (both may use
{{variables}}, see `egp_core.templates`), and optionally a default model and
parameters. The store (`egp_core.store.prompts`) keeps them; nothing here
touches a database.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from egp_core.templates import TemplateError, Variable, check, render_all, variables

NAME_MAX = 200
PARAMETER_NAMES = ("temperature", "max_tokens", "top_p", "stop_sequences")


class PromptInvalid(ValueError):
    """A prompt that cannot be saved; the message says why, for a person."""


@dataclass(frozen=True)
class PromptContent:
    """What a person edits; every save stores one as a new version."""

    name: str
    template: str
    description: str = ""
    system_prompt: str = ""
    model: str | None = None
    parameters: dict[str, Any] | None = None

    def cleaned(self) -> PromptContent:
        """The same content, trimmed, with empty optional parts as None; raises PromptInvalid."""
        name = " ".join(self.name.split())
        if not name:
            raise PromptInvalid("Give the prompt a name.")
        if len(name) > NAME_MAX:
            raise PromptInvalid(f"The name is too long: at most {NAME_MAX} characters.")
        if not self.template.strip():
            raise PromptInvalid("Write the user message: it is what the prompt sends.")
        for label, text in (("system prompt", self.system_prompt), ("user message", self.template)):
            try:
                check(text)
            except TemplateError as exc:
                raise PromptInvalid(f"In the {label}: {exc.message}") from None
        params = {k: v for k, v in (self.parameters or {}).items() if k in PARAMETER_NAMES and v not in (None, [], "")}
        return PromptContent(name=name, template=self.template, description=self.description.strip(),
                             system_prompt=self.system_prompt, model=(self.model or "").strip() or None,
                             parameters=params or None)

    def variables(self) -> list[Variable]:
        """The variables of the system prompt and the user message, as one set."""
        return variables(self.system_prompt, self.template)

    def fill(self, values: dict[str, Any]) -> Filled:
        """The system prompt and user message with the values in; raises TemplateError."""
        system, user = render_all([self.system_prompt, self.template], values)
        return Filled(system=system, user=user)


@dataclass(frozen=True)
class Filled:
    system: str
    user: str


@dataclass(frozen=True)
class PromptVersion:
    prompt_id: str
    version: int
    content: PromptContent
    note: str
    created_at: datetime

    @property
    def name(self) -> str:
        return self.content.name

    def ref(self) -> dict[str, Any]:
        """What a question records about the prompt that made it."""
        return {"id": self.prompt_id, "version": self.version, "name": self.content.name}


@dataclass
class Prompt:
    id: str
    owner: str
    tags: list[str]
    team: bool
    share_token: str | None
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None
    latest: PromptVersion
    versions: list[PromptVersion] = field(default_factory=list)  # filled only where asked for

    @property
    def name(self) -> str:
        return self.latest.name


def ref_label(ref: dict[str, Any] | None) -> str | None:
    """'from prompt 'Summarise' v3' for a recorded prompt reference, else None."""
    if not isinstance(ref, dict) or not ref.get("name") or not ref.get("version"):
        return None
    return f"from prompt '{ref['name']}' v{ref['version']}"


def clean_tags(tags: list[str] | tuple[str, ...] | str) -> list[str]:
    """Tags trimmed, lower-cased, without duplicates, in the order given ("a, b" is two tags)."""
    if isinstance(tags, str):
        tags = tags.split(",")
    found: dict[str, None] = {}
    for tag in tags:
        tag = " ".join(str(tag).split()).lower()[:50]
        if tag:
            found[tag] = None
    return list(found)[:20]


# ----- diffs ---------------------------------------------------------------------------------------

FIELDS = (
    ("name", "Name"), ("description", "Description"), ("system_prompt", "System prompt"),
    ("template", "User message"), ("model", "Model"), ("parameters", "Parameters"),
)


@dataclass(frozen=True)
class DiffRow:
    left: str
    right: str
    change: str  # "same" | "changed" | "removed" | "added"


@dataclass(frozen=True)
class FieldDiff:
    label: str
    rows: list[DiffRow]


def _lines(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, dict):
        return [f"{k}: {json.dumps(v)}" for k, v in sorted(value.items())]
    return str(value).splitlines()


def diff_lines(left: list[str], right: list[str]) -> list[DiffRow]:
    """Side-by-side rows of two texts, line by line (difflib)."""
    rows: list[DiffRow] = []
    matcher = difflib.SequenceMatcher(a=left, b=right, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            rows += [DiffRow(a, a, "same") for a in left[i1:i2]]
        elif op == "delete":
            rows += [DiffRow(a, "", "removed") for a in left[i1:i2]]
        elif op == "insert":
            rows += [DiffRow("", b, "added") for b in right[j1:j2]]
        else:
            olds, news = left[i1:i2], right[j1:j2]
            for k in range(max(len(olds), len(news))):
                a = olds[k] if k < len(olds) else ""
                b = news[k] if k < len(news) else ""
                rows.append(DiffRow(a, b, "changed" if k < len(olds) and k < len(news)
                                    else ("removed" if k < len(olds) else "added")))
    return rows


def diff(old: PromptVersion, new: PromptVersion) -> list[FieldDiff]:
    """The fields that differ between two versions, each as side-by-side rows."""
    a, b = asdict(old.content), asdict(new.content)
    return [FieldDiff(label, diff_lines(_lines(a[key]), _lines(b[key])))
            for key, label in FIELDS if a[key] != b[key]]
