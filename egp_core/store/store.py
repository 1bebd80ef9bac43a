"""The history store: conversations, messages, share links, votes and prices in SQL.

One `Store` per process, shared by every session and thread: it holds only a
pooled SQLAlchemy engine. Writes are short transactions; on PostgreSQL they lock
the conversation row first, so writers of one conversation queue up, and
several app replicas can share one database.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ..errors import scrub
from . import schema as s
from .engine import default_url, make_engine
from .errors import NotFound, StoreError
from .migrations import migrate
from .redact import strip_secrets

STATUSES = ("complete", "streaming", "stopped", "error", "interrupted")
ROLES = ("system", "user", "assistant")
TITLE_MAX = 200
MAX_PANES = 4
"""A comparison has at most this many answers side by side (panes 0 to 3, letters A to D)."""


@dataclass(slots=True)
class Conversation:
    id: str
    owner: str
    title: str
    created_at: datetime
    updated_at: datetime
    settings: dict[str, Any]
    kind: str = "chat"


@dataclass(slots=True)
class Message:
    id: str
    conversation_id: str
    seq: int
    role: str
    text: str
    status: str
    model: str | None
    parameters: dict[str, Any] | None
    usage: dict[str, Any] | None
    metrics: dict[str, Any] | None
    error: str | None
    finish_reason: str | None
    pane: int | None
    created_at: datetime
    updated_at: datetime
    details: dict[str, Any] | None = None  # {"logprobs": [[token, logprob, [[alt, logprob]]]], "chosen": bool}
    hidden: bool = False  # an earlier version of an answer, kept by Regenerate


def new_id() -> str:
    return uuid.uuid4().hex


def clean_dict(value: Any) -> dict[str, Any] | None:
    """A plain dict (pydantic models and dataclasses accepted) without secret-named fields."""
    if value is None:
        return None
    if hasattr(value, "model_dump"):
        value = value.model_dump(exclude_none=True)
    elif hasattr(value, "__dataclass_fields__"):
        import dataclasses

        value = dataclasses.asdict(value)
    if not isinstance(value, dict):
        raise TypeError(f"expected a dict, got {type(value).__name__}")
    return _without_nul(strip_secrets(value))


def clean_text(value: str | None) -> str | None:
    """The text without NUL characters (PostgreSQL cannot store them; nobody can read them)."""
    return value.replace("\x00", "") if isinstance(value, str) and "\x00" in value else value


def _without_nul(value: Any) -> Any:
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {clean_text(k): _without_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_nul(v) for v in value]
    return value


def clean_title(title: str | None) -> str:
    """The title as stored: one line, single spaces, at most TITLE_MAX characters, never empty."""
    title = " ".join((clean_text(title) or "").split())
    return title[:TITLE_MAX] or "New chat"


def _like_pattern(term: str) -> str:
    escaped = term.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _conversation(row: sa.Row) -> Conversation:
    m = row._mapping
    return Conversation(id=m["id"], owner=m["owner"], title=m["title"], created_at=m["created_at"],
                        updated_at=m["updated_at"], settings=dict(m["settings"] or {}), kind=m["kind"])


def _message(row: sa.Row) -> Message:
    m = row._mapping
    return Message(**{f: m[f] for f in Message.__slots__})


class Store:
    """Conversation history in SQL. Thread-safe; create it with `open_store()`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._writer = engine.execution_options(sqlite_immediate=True)

    @property
    def url(self) -> str:
        """The database URL with any password hidden."""
        return self.engine.url.render_as_string(hide_password=True)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        with self._writer.begin() as conn:
            yield conn

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            yield conn

    def _lock_conversation(self, conn: Connection, conversation_id: str, *, touch: datetime | None = None,
                           owner: str | None = None) -> bool:
        """Lock the conversation's row (and bump updated_at when `touch`); False when it is missing."""
        c = s.conversations.c
        where = [c.id == conversation_id]
        if owner is not None:
            where.append(c.owner == owner)
        if touch is not None:
            result = conn.execute(sa.update(s.conversations).where(*where).values(updated_at=touch))
            return result.rowcount > 0
        row = conn.execute(sa.select(c.id).where(*where).with_for_update()).first()
        return row is not None

    # ----- conversations ---------------------------------------------------------------------------

    def create_conversation(self, owner: str, title: str = "New chat", settings: dict | None = None,
                            kind: str = "chat") -> str:
        cid = new_id()
        now = s.utcnow()
        with self._write() as conn:
            conn.execute(sa.insert(s.conversations).values(
                id=cid, owner=owner, title=clean_title(title), created_at=now, updated_at=now,
                settings=clean_dict(settings) or {}, kind=kind or "chat"))
        return cid

    def get_conversation(self, id: str, owner: str | None = None) -> Conversation | None:  # noqa: A002
        c = s.conversations.c
        q = sa.select(s.conversations).where(c.id == id)
        if owner is not None:
            q = q.where(c.owner == owner)
        with self._read() as conn:
            row = conn.execute(q).first()
        return _conversation(row) if row else None

    def list_conversations(self, owner: str, query: str | None = None, limit: int = 100,
                           kind: str | None = None, offset: int = 0) -> list[Conversation]:
        """The owner's conversations, most recently updated first: `limit` of them after skipping `offset`.

        `query`: every word must appear (case-insensitive) in the title or in one of its messages.
        `kind`: only conversations of that kind ("chat", "compare"), filtered in the query itself.
        """
        c, m = s.conversations.c, s.messages.c
        q = sa.select(s.conversations).where(c.owner == owner)
        if kind is not None:
            q = q.where(c.kind == kind)
        for term in (query or "").split():
            pattern = _like_pattern(term)
            in_messages = sa.exists().where(m.conversation_id == c.id,
                                            sa.func.lower(m.text).like(pattern, escape="\\"))
            q = q.where(sa.or_(sa.func.lower(c.title).like(pattern, escape="\\"), in_messages))
        q = q.order_by(c.updated_at.desc(), c.created_at.desc(), c.id).limit(limit).offset(max(0, offset))
        with self._read() as conn:
            return [_conversation(r) for r in conn.execute(q)]

    def rename_conversation(self, id: str, title: str, owner: str) -> bool:  # noqa: A002
        c = s.conversations.c
        with self._write() as conn:
            result = conn.execute(sa.update(s.conversations).where(c.id == id, c.owner == owner)
                                  .values(title=clean_title(title)))
        return result.rowcount > 0

    def delete_conversation(self, id: str, owner: str) -> bool:  # noqa: A002
        """Delete the conversation, its messages and its share link. False when not found."""
        with self._write() as conn:
            if not self._lock_conversation(conn, id, owner=owner):
                return False
            conn.execute(sa.delete(s.shares).where(s.shares.c.conversation_id == id))
            conn.execute(sa.delete(s.messages).where(s.messages.c.conversation_id == id))
            conn.execute(sa.delete(s.conversations).where(s.conversations.c.id == id))
        return True

    def update_settings(self, id: str, settings: dict | None) -> bool:  # noqa: A002
        with self._write() as conn:
            result = conn.execute(sa.update(s.conversations).where(s.conversations.c.id == id)
                                  .values(settings=clean_dict(settings) or {}))
        return result.rowcount > 0

    # ----- messages --------------------------------------------------------------------------------

    def add_message(self, conversation_id: str, role: str, text: str = "", *, status: str = "complete",
                    model: str | None = None, parameters: dict | None = None, usage: dict | None = None,
                    metrics: dict | None = None, error: str | None = None, pane: int | None = None,
                    finish_reason: str | None = None, details: dict | None = None) -> str:
        """Append a message; returns its id. Raises NotFound when the conversation is gone."""
        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}, not {role!r}")
        if status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, not {status!r}")
        if pane is not None and not 0 <= pane < MAX_PANES:
            raise ValueError(f"pane must be from 0 to {MAX_PANES - 1}, not {pane!r}")
        mid = new_id()
        now = s.utcnow()
        m = s.messages.c
        with self._write() as conn:
            if not self._lock_conversation(conn, conversation_id, touch=now):
                raise NotFound(detail=f"conversation {conversation_id}")
            last = conn.execute(sa.select(sa.func.max(m.seq)).where(m.conversation_id == conversation_id))
            seq = (last.scalar() or 0) + 1
            conn.execute(sa.insert(s.messages).values(
                id=mid, conversation_id=conversation_id, seq=seq, role=role, text=clean_text(text or ""),
                status=status, model=clean_text(model), parameters=clean_dict(parameters),
                usage=clean_dict(usage), metrics=clean_dict(metrics), error=clean_text(scrub(error) if error else error),
                finish_reason=clean_text(finish_reason), pane=pane, details=clean_dict(details),
                created_at=now, updated_at=now))
        return mid

    def update_message(self, message_id: str, *, text: str | None = None, status: str | None = None,
                       usage: dict | None = None, metrics: dict | None = None, error: str | None = None,
                       finish_reason: str | None = None, append_text: str | None = None,
                       details: dict | None = None) -> bool:
        """Change the given fields (None = leave as is; `details` is merged key by key into what is
        there). False when the message is gone.

        `append_text` adds to the end of the saved text in the database itself, so saving a
        growing answer sends only what is new (`text` replaces the whole text)."""
        if status is not None and status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, not {status!r}")
        if text is not None and append_text is not None:
            raise ValueError("give text or append_text, not both")
        values: dict[str, Any] = {}
        if text is not None:
            values["text"] = clean_text(text)
        if append_text:
            values["text"] = s.messages.c.text + clean_text(append_text)
        if status is not None:
            values["status"] = status
        if usage is not None:
            values["usage"] = clean_dict(usage)
        if metrics is not None:
            values["metrics"] = clean_dict(metrics)
        if error is not None:
            values["error"] = clean_text(scrub(error))
        if finish_reason is not None:
            values["finish_reason"] = clean_text(finish_reason)
        m = s.messages.c
        now = s.utcnow()
        values["updated_at"] = now
        with self._write() as conn:
            cid = conn.execute(sa.select(m.conversation_id).where(m.id == message_id)).scalar()
            if cid is None or not self._lock_conversation(conn, cid, touch=now):
                return False
            if details is not None:
                old = conn.execute(sa.select(m.details).where(m.id == message_id)).scalar()
                values["details"] = {**(old or {}), **(clean_dict(details) or {})}
            result = conn.execute(sa.update(s.messages).where(m.id == message_id).values(**values))
        return result.rowcount > 0

    def get_message(self, id: str) -> Message | None:  # noqa: A002
        with self._read() as conn:
            row = conn.execute(sa.select(s.messages).where(s.messages.c.id == id)).first()
        return _message(row) if row else None

    def messages(self, conversation_id: str) -> list[Message]:
        """The conversation's messages in the order they were added."""
        m = s.messages.c
        q = sa.select(s.messages).where(m.conversation_id == conversation_id).order_by(m.seq)
        with self._read() as conn:
            return [_message(r) for r in conn.execute(q)]

    def delete_messages_from(self, conversation_id: str, message_id: str) -> int:
        """Delete that message and every later one (edit and resend, regenerate). Returns how many."""
        m = s.messages.c
        with self._write() as conn:
            if not self._lock_conversation(conn, conversation_id, touch=s.utcnow()):
                return 0
            seq = conn.execute(sa.select(m.seq).where(m.id == message_id,
                                                      m.conversation_id == conversation_id)).scalar()
            if seq is None:
                return 0
            result = conn.execute(sa.delete(s.messages).where(m.conversation_id == conversation_id,
                                                              m.seq >= seq))
        return result.rowcount

    def set_hidden(self, message_ids: list[str], hidden: bool) -> int:
        """Hide (or show again) earlier versions of an answer. Returns how many changed."""
        if not message_ids:
            return 0
        m = s.messages.c
        with self._write() as conn:
            result = conn.execute(sa.update(s.messages).where(m.id.in_(message_ids)).values(hidden=hidden))
        return result.rowcount

    def mark_interrupted(self, stale_after_seconds: float = 30) -> int:
        """Mark answers left "streaming" (not updated for that long) as "interrupted". Returns how many."""
        m = s.messages.c
        now = s.utcnow()
        cutoff = now - timedelta(seconds=stale_after_seconds)
        with self._write() as conn:
            result = conn.execute(sa.update(s.messages)
                                  .where(m.status == "streaming", m.updated_at < cutoff)
                                  .values(status="interrupted", updated_at=now))
        return result.rowcount

    # ----- share links -----------------------------------------------------------------------------

    def create_share(self, conversation_id: str, owner: str) -> str:
        """An unguessable token for a read-only link; the existing one if there is one."""
        sh = s.shares.c
        with self._write() as conn:
            if not self._lock_conversation(conn, conversation_id, owner=owner):
                raise NotFound(detail=f"conversation {conversation_id}")
            token = conn.execute(sa.select(sh.token).where(sh.conversation_id == conversation_id)).scalar()
            if token:
                return token
            token = secrets.token_urlsafe(24)
            conn.execute(sa.insert(s.shares).values(token=token, conversation_id=conversation_id,
                                                    owner=owner, created_at=s.utcnow()))
        return token

    def share_token(self, conversation_id: str, owner: str) -> str | None:
        """The conversation's share token, if it has one."""
        sh = s.shares.c
        with self._read() as conn:
            return conn.execute(sa.select(sh.token).where(sh.conversation_id == conversation_id,
                                                          sh.owner == owner)).scalar()

    def delete_share(self, conversation_id: str, owner: str) -> bool:
        """Revoke the share link: its token stops working."""
        sh = s.shares.c
        with self._write() as conn:
            result = conn.execute(sa.delete(s.shares).where(sh.conversation_id == conversation_id,
                                                            sh.owner == owner))
        return result.rowcount > 0

    def conversation_for_share(self, token: str) -> Conversation | None:
        if not token:
            return None
        sh = s.shares.c
        q = (sa.select(s.conversations)
             .join(s.shares, sh.conversation_id == s.conversations.c.id)
             .where(sh.token == token))
        with self._read() as conn:
            row = conn.execute(q).first()
        return _conversation(row) if row else None

    # ----- votes -----------------------------------------------------------------------------------

    def add_vote(self, conversation_id: str | None, winner_model: str, models: list[str], owner: str) -> str:
        """Record a blind comparison: `winner_model` won among `models`. Returns the vote id."""
        models = list(dict.fromkeys(models))
        if winner_model not in models:
            raise ValueError("winner_model must be one of models")
        vid = new_id()
        with self._write() as conn:
            conn.execute(sa.insert(s.votes).values(id=vid, conversation_id=conversation_id, owner=owner,
                                                   winner_model=winner_model, models=models,
                                                   created_at=s.utcnow()))
        return vid

    def leaderboard(self, owner: str | None = None) -> list[dict[str, Any]]:
        """Per model: wins, votes (comparisons it took part in) and win_rate; best first.

        Everyone's votes, or only `owner`'s.
        """
        v = s.votes.c
        q = sa.select(v.winner_model, v.models)
        if owner is not None:
            q = q.where(v.owner == owner)
        board: dict[str, dict[str, Any]] = {}
        with self._read() as conn:
            for winner, models in conn.execute(q):
                for model in models or []:
                    entry = board.setdefault(model, {"model": model, "wins": 0, "votes": 0})
                    entry["votes"] += 1
                    if model == winner:
                        entry["wins"] += 1
        for entry in board.values():
            entry["win_rate"] = entry["wins"] / entry["votes"] if entry["votes"] else 0.0
        return sorted(board.values(), key=lambda e: (-e["win_rate"], -e["wins"], e["model"]))

    # ----- prices ----------------------------------------------------------------------------------

    def get_prices(self) -> dict[str, tuple[float, float]]:
        """model -> (USD per 1,000 prompt tokens, USD per 1,000 completion tokens)."""
        p = s.prices.c
        with self._read() as conn:
            rows = conn.execute(sa.select(p.model, p.prompt_per_1k, p.completion_per_1k).order_by(p.model))
            return {r[0]: (float(r[1]), float(r[2])) for r in rows}

    def set_price(self, model: str, prompt_per_1k: float, completion_per_1k: float) -> None:
        if not model:
            raise ValueError("model must not be empty")
        prompt_per_1k, completion_per_1k = float(prompt_per_1k), float(completion_per_1k)
        if prompt_per_1k < 0 or completion_per_1k < 0:
            raise ValueError("prices must not be negative")
        values = {"model": model, "prompt_per_1k": prompt_per_1k, "completion_per_1k": completion_per_1k,
                  "updated_at": s.utcnow()}
        if self.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        stmt = insert(s.prices).values(**values)
        stmt = stmt.on_conflict_do_update(index_elements=["model"],
                                          set_={k: stmt.excluded[k] for k in values if k != "model"})
        with self._write() as conn:
            conn.execute(stmt)

    def delete_price(self, model: str) -> bool:
        with self._write() as conn:
            result = conn.execute(sa.delete(s.prices).where(s.prices.c.model == model))
        return result.rowcount > 0


def open_store(url: str | None = None) -> Store:
    """Open (and create or upgrade) the history database.

    `url`: a SQLAlchemy URL; None means $EGP_PLAYGROUND_DB_URL, else the SQLite file
    <data dir>/history.db (data dir: $EGP_PLAYGROUND_DATA or ./data).
    """
    url = url or default_url()
    try:
        engine = make_engine(url)
    except (sa.exc.ArgumentError, OSError) as exc:
        raise StoreError(_OPEN_FAILED, detail=f"{_safe_url(url)}: {exc}") from None
    try:
        migrate(engine)
    except sa.exc.DBAPIError as exc:
        engine.dispose()
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0][:300]
        raise StoreError(_OPEN_FAILED, detail=f"{_safe_url(url)}: {reason}") from None
    except BaseException:
        engine.dispose()
        raise
    return Store(engine)


_OPEN_FAILED = ("Could not open the conversation history database. Check EGP_PLAYGROUND_DB_URL "
                "(or that the data folder can be written), then restart the app.")


def _safe_url(url: str) -> str:
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "(not a database URL)"
