"""The prompt library in SQL: prompts, their immutable versions, sharing and soft delete.

Every save inserts a new version row; no code path updates or deletes a
version (only purging a deleted prompt removes its versions with it). A prompt
is its owner's: only the owner saves, restores, tags, shares or deletes it.
Others see it when the owner shares it with the team (`team`), or through its
read-only link (`share_token`).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from egp_core.prompts import Prompt, PromptContent, PromptVersion, clean_tags

from . import schema as s
from .errors import NotFound
from .store import Store, _like_pattern, clean_dict, clean_text, new_id

KEEP_DELETED = timedelta(days=30)
"""How long a deleted prompt can be brought back before it is purged."""

P, V = s.prompts.c, s.prompt_versions.c


CONTENT = ("name", "description", "system_prompt", "template", "model", "parameters")


def _version(row: Any, created: str = "created_at") -> PromptVersion:
    m = row._mapping
    content = PromptContent(name=m["name"], template=m["template"], description=m["description"],
                            system_prompt=m["system_prompt"], model=m["model"], parameters=m["parameters"])
    return PromptVersion(prompt_id=m["prompt_id"], version=m["version"], content=content, note=m["note"],
                         created_at=m[created])


def _prompt(row: Any) -> Prompt:
    """A row of prompts joined with its latest version (whose created_at is `version_created_at`)."""
    m = row._mapping
    return Prompt(id=m["id"], owner=m["owner"], tags=list(m["tags"] or []), team=bool(m["team"]),
                  share_token=m["share_token"], created_at=m["created_at"], updated_at=m["updated_at"],
                  deleted_at=m["deleted_at"], latest=_version(row, "version_created_at"))


def version_row(prompt_id: str, number: int, content: PromptContent, note: str,
                    created_at: datetime) -> dict[str, Any]:
    return {
        "prompt_id": prompt_id, "version": number, "name": clean_text(content.name),
        "description": clean_text(content.description), "system_prompt": clean_text(content.system_prompt),
        "template": clean_text(content.template), "model": clean_text(content.model),
        "parameters": clean_dict(content.parameters), "note": clean_text(" ".join(note.split())[:500]),
        "created_at": created_at,
    }


class PromptLibrary:
    """Prompts and versions in the history database; thread-safe like the `Store` it uses."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # ----- reading -----------------------------------------------------------------------------------

    def _visible(self, viewer: str) -> sa.ColumnElement[bool]:
        return sa.and_(P.deleted_at.is_(None), sa.or_(P.owner == viewer, P.team.is_(True)))

    def _select(self, *where: Any) -> list[Prompt]:
        q = (sa.select(s.prompts, V.prompt_id, V.version, V.name, V.description, V.system_prompt, V.template,
                       V.model, V.parameters, V.note, V.created_at.label("version_created_at"))
             .join(s.prompt_versions, sa.and_(V.prompt_id == P.id, V.version == P.latest_version))
             .where(*where).order_by(P.updated_at.desc(), P.id))
        with self.store._read() as conn:
            return [_prompt(row) for row in conn.execute(q)]

    def get(self, prompt_id: str, viewer: str) -> Prompt | None:
        """The prompt if `viewer` may see it (theirs, or shared with the team) and it is not deleted."""
        found = self._select(P.id == prompt_id, self._visible(viewer))
        return found[0] if found else None

    def list(self, viewer: str, query: str | None = None, tag: str | None = None) -> list[Prompt]:
        """Prompts `viewer` may use, most recently changed first. Every word of `query` must
        appear (any case) in the latest version's name, description, messages or the tags."""
        where: list[Any] = [self._visible(viewer)]
        for term in (query or "").split():
            pattern = _like_pattern(term)
            where.append(sa.or_(*[sa.func.lower(col).like(pattern, escape="\\") for col in
                                  (V.name, V.description, V.system_prompt, V.template, sa.cast(P.tags, sa.Text))]))
        found = self._select(*where)
        if tag:
            found = [p for p in found if tag in p.tags]
        return found

    def tags(self, viewer: str) -> list[str]:
        """Every tag on the prompts `viewer` may use, sorted."""
        return sorted({t for p in self.list(viewer) for t in p.tags})

    def versions(self, prompt_id: str, viewer: str) -> list[PromptVersion]:
        """All versions of a prompt `viewer` may see, newest first ([] when it may not)."""
        if self.get(prompt_id, viewer) is None:
            return []
        return self.versions_of(prompt_id)

    def versions_of(self, prompt_id: str) -> list[PromptVersion]:
        """All versions, newest first, without asking who looks (for callers that checked)."""
        q = sa.select(s.prompt_versions).where(V.prompt_id == prompt_id).order_by(V.version.desc())
        with self.store._read() as conn:
            return [_version(r) for r in conn.execute(q)]

    def version(self, prompt_id: str, number: int, viewer: str) -> PromptVersion | None:
        if self.get(prompt_id, viewer) is None:
            return None
        q = sa.select(s.prompt_versions).where(V.prompt_id == prompt_id, V.version == number)
        with self.store._read() as conn:
            row = conn.execute(q).first()
        return _version(row) if row else None

    # ----- writing -----------------------------------------------------------------------------------

    def create(self, owner: str, content: PromptContent, note: str = "", tags: Iterable[str] = ()) -> PromptVersion:
        """A new prompt with its version 1. Raises PromptInvalid for unusable content."""
        content = content.cleaned()
        pid = new_id()
        now = s.utcnow()
        with self.store._write() as conn:
            conn.execute(sa.insert(s.prompts).values(
                id=pid, owner=owner, tags=clean_tags(list(tags)), team=False, share_token=None, latest_version=1,
                created_at=now, updated_at=now, deleted_at=None))
            conn.execute(sa.insert(s.prompt_versions).values(**version_row(pid, 1, content, note, now)))
        return self.versions_of(pid)[0]

    def _lock(self, conn: Connection, prompt_id: str, owner: str) -> int:
        """Lock the owner's prompt row; its latest version number. NotFound otherwise."""
        latest = conn.execute(sa.select(P.latest_version).where(P.id == prompt_id, P.owner == owner,
                                                                P.deleted_at.is_(None)).with_for_update()).scalar()
        if latest is None:
            raise NotFound("That prompt no longer exists, or it is not yours to change.", detail=f"prompt {prompt_id}")
        return int(latest)

    def save(self, prompt_id: str, owner: str, content: PromptContent, note: str = "") -> PromptVersion | None:
        """Store `content` as the prompt's next version; None when it equals the latest one
        (nothing new to keep). Raises PromptInvalid, or NotFound when it is not the owner's."""
        content = content.cleaned()
        now = s.utcnow()
        with self.store._write() as conn:
            latest = self._lock(conn, prompt_id, owner)
            row = conn.execute(sa.select(s.prompt_versions).where(V.prompt_id == prompt_id,
                                                                  V.version == latest)).first()
            number = latest + 1
            values = version_row(prompt_id, number, content, note, now)
            if row is not None and all(row._mapping[k] == values[k] for k in CONTENT):
                return None
            conn.execute(sa.insert(s.prompt_versions).values(**values))
            conn.execute(sa.update(s.prompts).where(P.id == prompt_id).values(latest_version=number, updated_at=now))
        return self.version(prompt_id, number, owner)

    def restore(self, prompt_id: str, owner: str, number: int) -> PromptVersion | None:
        """Save an old version again as the newest (None when it already is the newest's content)."""
        old = self.version(prompt_id, number, owner)
        if old is None:
            raise NotFound("That version no longer exists.", detail=f"prompt {prompt_id} v{number}")
        return self.save(prompt_id, owner, old.content, note=f"Restored from v{number}")

    def set_tags(self, prompt_id: str, owner: str, tags: Iterable[str] | str) -> list[str]:
        cleaned = clean_tags(tags if isinstance(tags, str) else list(tags))
        self._update(prompt_id, owner, tags=cleaned)
        return cleaned

    def set_team(self, prompt_id: str, owner: str, team: bool) -> None:
        """Share the prompt with everyone signed in to the app (read and use; only the owner changes it)."""
        self._update(prompt_id, owner, team=bool(team))

    def create_share(self, prompt_id: str, owner: str) -> str:
        """A token for a read-only link to the prompt; the existing one if there is one."""
        with self.store._write() as conn:
            self._lock(conn, prompt_id, owner)
            token = conn.execute(sa.select(P.share_token).where(P.id == prompt_id)).scalar()
            if not token:
                token = secrets.token_urlsafe(24)
                conn.execute(sa.update(s.prompts).where(P.id == prompt_id).values(share_token=token))
        return token

    def delete_share(self, prompt_id: str, owner: str) -> None:
        """Revoke the link: its token stops working."""
        self._update(prompt_id, owner, share_token=None, touch=False)

    def for_share(self, token: str) -> Prompt | None:
        """The prompt behind a share link, with all its versions (None: no such link, or deleted)."""
        if not token:
            return None
        found = self._select(P.share_token == token, P.deleted_at.is_(None))
        if not found:
            return None
        found[0].versions = self.versions_of(found[0].id)
        return found[0]

    def _update(self, prompt_id: str, owner: str, touch: bool = True, **values: Any) -> None:
        with self.store._write() as conn:
            self._lock(conn, prompt_id, owner)
            if touch:
                values["updated_at"] = s.utcnow()
            conn.execute(sa.update(s.prompts).where(P.id == prompt_id).values(**values))

    # ----- deleting (soft) ---------------------------------------------------------------------------

    def delete(self, prompt_id: str, owner: str) -> bool:
        """Hide the prompt (and its share link) until `undelete`, or until it is purged."""
        with self.store._write() as conn:
            result = conn.execute(sa.update(s.prompts).where(P.id == prompt_id, P.owner == owner,
                                                             P.deleted_at.is_(None))
                                  .values(deleted_at=s.utcnow()))
        return result.rowcount > 0

    def undelete(self, prompt_id: str, owner: str) -> bool:
        with self.store._write() as conn:
            result = conn.execute(sa.update(s.prompts).where(P.id == prompt_id, P.owner == owner,
                                                             P.deleted_at.is_not(None))
                                  .values(deleted_at=None))
        return result.rowcount > 0

    def deleted(self, owner: str) -> list[Prompt]:
        """The owner's deleted prompts that can still be brought back, latest deleted first."""
        found = self._select(P.owner == owner, P.deleted_at.is_not(None))
        return sorted(found, key=lambda p: p.deleted_at, reverse=True)

    def purge_deleted(self, older_than: timedelta = KEEP_DELETED) -> int:
        """Remove for good the prompts deleted longer ago than `older_than`; how many."""
        cutoff = s.utcnow() - older_than
        with self.store._write() as conn:
            ids = conn.execute(sa.select(P.id).where(P.deleted_at < cutoff)).scalars().all()
            if ids:
                conn.execute(sa.delete(s.prompt_versions).where(V.prompt_id.in_(ids)))
                conn.execute(sa.delete(s.prompts).where(P.id.in_(ids)))
        return len(ids)

