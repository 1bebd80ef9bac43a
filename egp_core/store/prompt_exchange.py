"""Export prompts (with every version) as JSON, and import such files.

Format, version 1:
    {"format": "egp-playground-prompts", "version": 1, "exported_at": "<ISO time>",
     "prompts": [{"name", "tags", "created_at",
                  "versions": [{"version", "name", "description", "system_prompt", "template",
                                "model", "parameters", "note", "created_at"}]}]}
An import is checked completely (format, types, version numbers, every
template) before anything is written, then inserted in one transaction as new
prompts of the importer: a refused file changes nothing.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, Literal

import sqlalchemy as sa
from pydantic import Field, ValidationError

from egp_core.prompts import Prompt, PromptContent, PromptInvalid, clean_tags

from . import schema as s
from .exchange import FORMAT as CONVERSATIONS_FORMAT
from .exchange import _fail, _Strict, load_json, validation_detail
from .prompts import PromptLibrary, version_row
from .store import new_id

FORMAT = "egp-playground-prompts"
VERSION = 1
MAX_PROMPTS = 10_000


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


def export_prompts_json(library: PromptLibrary, prompts: list[Prompt]) -> str:
    """These prompts with all their versions, oldest version first."""
    out = []
    for prompt in prompts:
        versions = sorted(library.versions_of(prompt.id), key=lambda v: v.version)
        out.append({
            "name": prompt.name, "tags": prompt.tags, "created_at": _iso(prompt.created_at),
            "versions": [{
                "version": v.version, "name": v.content.name, "description": v.content.description,
                "system_prompt": v.content.system_prompt, "template": v.content.template,
                "model": v.content.model, "parameters": v.content.parameters, "note": v.note,
                "created_at": _iso(v.created_at),
            } for v in versions],
        })
    doc = {"format": FORMAT, "version": VERSION, "exported_at": _iso(datetime.now(UTC)), "prompts": out}
    return json.dumps(doc, ensure_ascii=False, indent=2)


class _VersionIn(_Strict):
    version: int = Field(ge=1)
    name: str = Field(max_length=10_000)
    description: str = Field(default="", max_length=100_000)
    system_prompt: str = Field(default="", max_length=1_000_000)
    template: str = Field(max_length=1_000_000)
    model: str | None = None
    parameters: dict[str, Any] | None = None
    note: str = Field(default="", max_length=10_000)
    created_at: datetime | None = Field(default=None, strict=False)


class _PromptIn(_Strict):
    name: str = ""
    tags: list[str] = Field(default_factory=list)
    created_at: datetime | None = Field(default=None, strict=False)
    versions: list[_VersionIn] = Field(min_length=1)


class _FileIn(_Strict):
    format: Literal["egp-playground-prompts"]
    version: Literal[1]
    prompts: list[_PromptIn] = Field(max_length=MAX_PROMPTS)


def _parse(data: bytes | str) -> _FileIn:
    doc = load_json(data, what="prompts")
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        if isinstance(doc, dict) and doc.get("format") == CONVERSATIONS_FORMAT:
            raise _fail("This file holds conversations, not prompts: import it in the Chat page's sidebar.")
        raise _fail("This file is not a prompt export of EGP Playground. Only files made with "
                    "Export on the Prompts page can be imported here.")
    version = doc.get("version")
    if isinstance(version, int) and not isinstance(version, bool) and version > VERSION:
        raise _fail("The file was made by a newer version of EGP Playground. Update the app to import it.",
                    f"version {version}")
    try:
        return _FileIn.model_validate(doc)
    except ValidationError as exc:
        raise _fail("The file has the right format but some of its content is damaged or of the wrong type.",
                    validation_detail(exc)) from None


def import_prompts_json(library: PromptLibrary, data: bytes | str, owner: str) -> int:
    """Import a prompt export as new prompts of `owner`, keeping version numbers; how many.

    Raises ImportFailed (a sentence for a person) and writes nothing when any part is wrong.
    """
    parsed = _parse(data)
    now = s.utcnow()
    prompt_rows: list[dict[str, Any]] = []
    version_rows: list[dict[str, Any]] = []
    for i, p in enumerate(parsed.prompts, start=1):
        numbers = [v.version for v in p.versions]
        label = f"Prompt {i} ('{p.name or p.versions[-1].name}')"
        if len(set(numbers)) != len(numbers):
            raise _fail(f"{label} has the same version number twice.", f"versions {numbers}")
        pid = new_id()
        created = p.created_at or now
        for v in sorted(p.versions, key=lambda v: v.version):
            content = PromptContent(name=v.name, template=v.template, description=v.description,
                                    system_prompt=v.system_prompt, model=v.model, parameters=v.parameters)
            try:
                content = content.cleaned()
            except PromptInvalid as exc:
                raise _fail(f"{label}, version {v.version}: {exc}") from None
            version_rows.append(version_row(pid, v.version, content, v.note, v.created_at or created))
        prompt_rows.append({
            "id": pid, "owner": owner, "tags": clean_tags(p.tags), "team": False, "share_token": None,
            "latest_version": max(numbers), "created_at": created, "updated_at": now, "deleted_at": None,
        })
    try:
        with library.store._write() as conn:
            if prompt_rows:
                conn.execute(sa.insert(s.prompts), prompt_rows)
                conn.execute(sa.insert(s.prompt_versions), version_rows)
    except sa.exc.DBAPIError as exc:  # rolled back: nothing was written
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0][:300]
        raise _fail("The database refused the file's content.", reason) from None
    return len(prompt_rows)
