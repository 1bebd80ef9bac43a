"""Export conversations (Markdown, JSON) and import our own JSON exports.

JSON format, version 1:
    {"format": "egp-playground", "version": 1, "exported_at": "<ISO time>",
     "conversations": [{"title", "kind", "created_at", "updated_at", "settings",
                        "messages": [{"role", "text", "status", "model", "parameters", "usage",
                                      "metrics", "error", "finish_reason", "pane", "details",
                                      "hidden", "created_at", "updated_at"}]}]}
("details": token probabilities and which candidate was picked; "hidden": true for an earlier
version of an answer kept by Regenerate, shown as "‹ 1/2 ›"; both absent in older files.)
An import is validated completely before anything is written: a refused file changes nothing.

Writing a big file must not hold the database: SQLite has one writer at a time, and a live
answer that cannot save its heartbeat for seconds looks lost to other tabs and replicas. So an
import writes in bounded batches (BATCH_ROWS rows or BATCH_CHARS characters of text), each its
own short transaction, and still shows all or nothing:

1. the conversations are inserted under a *staging owner* ("import-in-progress:<time>:<id>")
   that no person has, so nothing lists, searches, exports or counts them yet; then their
   messages, batch after batch (on SQLite with a short pause after each, so waiting writers get in);
2. one short transaction hands the conversations to their owner: the whole file appears at once;
3. if a batch fails, the staged rows are deleted and the person is told nothing was imported.
   If the process dies in the middle, the staged rows stay invisible and
   `discard_unfinished_imports` (run when the app opens the store) removes them later.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, Literal

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import scrub
from ..prompts import ref_label
from . import schema as s
from .errors import ImportFailed, NotFound
from .store import MAX_PANES, Conversation, Message, Store, clean_dict, clean_text, clean_title, new_id

FORMAT = "egp-playground"
VERSION = 1
MAX_IMPORT_BYTES = 20 * 1024 * 1024
MAX_MESSAGES = 200_000
BATCH_ROWS = 500
BATCH_CHARS = 2_000_000
"""One import transaction writes at most this many rows, or about this much text."""
STAGING_OWNER = "import-in-progress:"
"""Owner of imported rows until the whole file is written (no sign-in gives such an owner)."""

_ROLE_NAMES = {"system": "System", "user": "You", "assistant": "Assistant"}


# ----- export --------------------------------------------------------------------------------------


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


def _message_dict(m: Message) -> dict[str, Any]:
    return {
        "role": m.role, "text": m.text, "status": m.status, "model": m.model,
        "parameters": m.parameters, "usage": m.usage, "metrics": m.metrics,
        "error": scrub(m.error) if m.error else m.error,
        "finish_reason": m.finish_reason, "pane": m.pane, "details": m.details, "hidden": m.hidden,
        "created_at": _iso(m.created_at), "updated_at": _iso(m.updated_at),
    }


def _conversation_dict(store: Store, conv: Conversation) -> dict[str, Any]:
    return {
        "id": conv.id, "title": conv.title, "kind": conv.kind,
        "created_at": _iso(conv.created_at), "updated_at": _iso(conv.updated_at),
        "settings": clean_dict(conv.settings) or {},
        "messages": [_message_dict(m) for m in store.messages(conv.id)],
    }


def _envelope(conversations: list[dict[str, Any]]) -> str:
    doc = {"format": FORMAT, "version": VERSION, "exported_at": _iso(datetime.now(UTC)),
           "conversations": conversations}
    return json.dumps(doc, ensure_ascii=False, indent=2)


def _get(store: Store, conversation_id: str, owner: str | None) -> Conversation:
    conv = store.get_conversation(conversation_id, owner=owner)
    if conv is None:
        raise NotFound(detail=f"conversation {conversation_id}")
    return conv


def export_conversation_json(store: Store, id: str, owner: str | None = None) -> str:  # noqa: A002
    """One conversation in the JSON export format (importable)."""
    return _envelope([_conversation_dict(store, _get(store, id, owner))])


def export_all_json(store: Store, owner: str) -> str:
    """All of the owner's conversations in the JSON export format, newest first."""
    convs = store.list_conversations(owner, limit=10**9)
    return _envelope([_conversation_dict(store, c) for c in convs])


def _system_prompt_for(messages: list[Message], i: int) -> str | None:
    """The system prompt the answer to question `i` used ("" for none); None when `i` is not a question
    or its answer is not saved."""
    if messages[i].role != "user":
        return None
    for m in messages[i + 1:]:
        if m.role == "user":
            return None
        if m.role == "assistant":
            return str((m.parameters or {}).get("system_prompt") or "")
    return None


def export_conversation_markdown(store: Store, id: str, owner: str | None = None) -> str:  # noqa: A002
    """One conversation as readable Markdown."""
    conv = _get(store, id, owner)
    lines = [f"# {conv.title}", "", f"_Exported from EGP Playground · started {conv.created_at:%Y-%m-%d %H:%M} UTC_"]
    model = conv.settings.get("model") if isinstance(conv.settings, dict) else None
    if model:
        lines.append(f"_Model: {model}_")
    messages = [m for m in store.messages(conv.id) if not m.hidden]  # earlier versions stay in the app
    shown_prompt = ""
    for i, m in enumerate(messages):
        prompt = _system_prompt_for(messages, i)
        if prompt is not None and prompt != shown_prompt:  # before the question it applies to
            quoted = "\n".join("> " + line for line in prompt.splitlines()) if prompt else "_(none from here on)_"
            lines += ["", "## System prompt", "", quoted]
            shown_prompt = prompt
        heading = _ROLE_NAMES.get(m.role, m.role.title())
        if m.role == "assistant" and m.model:
            heading += f" ({m.model})"
        if m.pane is not None:
            heading += f" · pane {m.pane + 1}"
        lines += ["", f"## {heading}", "", m.text if m.text else "_(no text)_"]
        notes = []
        if m.status == "stopped":
            notes.append("stopped before the end")
        elif m.status == "interrupted":
            notes.append("interrupted: the app stopped while this answer was being written")
        elif m.status == "streaming":
            notes.append("still being written when exported")
        if m.error:
            notes.append(f"error: {scrub(m.error)}")
        usage = m.usage or {}
        if usage.get("total") is not None:
            notes.append(f"{usage.get('prompt') or 0} prompt + {usage.get('completion') or 0} completion tokens")
        if ref_label((m.parameters or {}).get("prompt")):
            notes.append(ref_label(m.parameters["prompt"]))
        if notes:
            lines += ["", "> " + "; ".join(notes)]
    return "\n".join(lines) + "\n"


# ----- import --------------------------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)


class _MessageIn(_Strict):
    role: Literal["system", "user", "assistant"]
    text: str = Field(max_length=5_000_000)
    status: Literal["complete", "streaming", "stopped", "error", "interrupted"] = "complete"
    model: str | None = None
    parameters: dict[str, Any] | None = None
    usage: dict[str, Any] | None = None
    metrics: dict[str, Any] | None = None
    error: str | None = None
    finish_reason: str | None = None
    pane: int | None = Field(default=None, ge=0)
    details: dict[str, Any] | None = None
    hidden: bool = False
    created_at: datetime | None = Field(default=None, strict=False)
    updated_at: datetime | None = Field(default=None, strict=False)


class _ConversationIn(_Strict):
    title: str = Field(max_length=10_000)
    kind: str = Field(default="chat", min_length=1, max_length=32)
    settings: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime | None = Field(default=None, strict=False)
    updated_at: datetime | None = Field(default=None, strict=False)
    messages: list[_MessageIn]


class _ExportIn(_Strict):
    format: Literal["egp-playground"]
    version: Literal[1]
    conversations: list[_ConversationIn]


def _describe_foreign(doc: Any) -> str | None:
    """A sentence naming a known foreign format, or None."""
    items = doc if isinstance(doc, list) else [doc]
    first = items[0] if items and isinstance(items[0], dict) else {}
    if "mapping" in first and ("current_node" in first or "create_time" in first):
        return "This looks like a ChatGPT export."
    if "chat_messages" in first or ("uuid" in first and "name" in first):
        return "This looks like a Claude export."
    return None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _fail(message: str, detail: str = "") -> ImportFailed:
    return ImportFailed(message + " Nothing was imported.", detail=detail)


def load_json(data: bytes | str, what: str = "conversations") -> Any:
    """The JSON document in an uploaded file; ImportFailed saying what is wrong with it."""
    raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    if len(raw) > MAX_IMPORT_BYTES:
        raise _fail(f"The file is too large ({len(raw) / 1e6:.1f} MB); the limit is "
                    f"{MAX_IMPORT_BYTES // (1024 * 1024)} MB. Export fewer {what} at a time.",
                    f"{len(raw)} bytes")
    if not raw.strip():
        raise _fail("The file is empty.")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _fail("This is not a text file. Choose a JSON file exported from EGP Playground.", str(exc)) from None
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except ValueError as exc:
        if isinstance(exc, json.JSONDecodeError) and _cut_off(text, exc):
            raise _fail("The file is cut off: it ends in the middle. Download the export again.",
                        str(exc)) from None
        raise _fail("The file is not valid JSON. Choose a JSON file exported from EGP Playground.",
                    str(exc)) from None


def _cut_off(text: str, exc: json.JSONDecodeError) -> bool:
    """The parser stopped because the text ends, not because of a wrong character: at the very
    end, inside a string that never closes, or in a word cut short (`tr`, `fals`, `nu`)."""
    rest = text[exc.pos:].strip()
    return (not rest or exc.msg.startswith("Unterminated string")
            or any(word.startswith(rest) for word in ("true", "false", "null")))


def validation_detail(exc: ValidationError) -> str:
    """The first few problems pydantic found, as one line for the technical detail."""
    return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:5])


def _parse(data: bytes | str) -> _ExportIn:
    doc = load_json(data)
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        foreign = _describe_foreign(doc)
        lead = foreign + " " if foreign else "This file was not exported from EGP Playground. "
        raise _fail(lead + "Only files made with Export in EGP Playground can be imported.",
                    f"top-level {type(doc).__name__}, format={doc.get('format') if isinstance(doc, dict) else None!r}")
    version = doc.get("version")
    if isinstance(version, int) and not isinstance(version, bool) and version > VERSION:
        raise _fail("The file was made by a newer version of EGP Playground. Update the app to import it.",
                    f"version {version}")
    try:
        parsed = _ExportIn.model_validate(doc)
    except ValidationError as exc:
        raise _fail("The file has the right format but some of its content is damaged or of the wrong type.",
                    validation_detail(exc)) from None
    if sum(len(c.messages) for c in parsed.conversations) > MAX_MESSAGES:
        raise _fail(f"The file holds more than {MAX_MESSAGES} messages. Export fewer conversations at a time.")
    for i, conv in enumerate(parsed.conversations):
        panes = [m.pane for m in conv.messages if m.pane is not None and m.pane >= MAX_PANES]
        if panes:
            raise _fail(f"The comparison \"{clean_title(conv.title)[:60]}\" has an answer in pane {panes[0] + 1}, "
                        f"but a comparison has at most {MAX_PANES} panes. The file may have been edited by hand.",
                        f"conversations.{i}: pane {panes[0]}")
    return parsed


def import_json(store: Store, data: bytes | str, owner: str, *, batch_rows: int = BATCH_ROWS) -> int:
    """Import an EGP Playground JSON export for `owner` with new ids; returns how many conversations.

    Raises ImportFailed (with a sentence for the person) and writes nothing when the
    file is malformed, cut off, too large, foreign, or holds values of the wrong type, or when
    the database refuses it. Written in batches of at most `batch_rows` rows (see the module).
    """
    parsed = _parse(data)
    now = s.utcnow()
    conv_rows: list[dict[str, Any]] = []
    msg_rows: list[dict[str, Any]] = []
    for conv in parsed.conversations:
        cid = new_id()
        created = conv.created_at or now
        conv_rows.append({
            "id": cid, "owner": owner, "title": clean_title(conv.title), "kind": clean_text(conv.kind) or "chat",
            "settings": clean_dict(conv.settings) or {}, "created_at": created,
            "updated_at": conv.updated_at or created,
        })
        for seq, m in enumerate(conv.messages, start=1):
            m_created = m.created_at or created
            msg_rows.append({
                "id": new_id(), "conversation_id": cid, "seq": seq, "role": m.role, "text": clean_text(m.text),
                # Nothing is generating an imported answer any more.
                "status": "interrupted" if m.status == "streaming" else m.status,
                "model": clean_text(m.model), "parameters": clean_dict(m.parameters),
                "usage": clean_dict(m.usage), "metrics": clean_dict(m.metrics),
                "error": clean_text(scrub(m.error) if m.error else m.error),
                "finish_reason": clean_text(m.finish_reason),
                "pane": m.pane, "details": clean_dict(m.details), "hidden": m.hidden,
                "created_at": m_created, "updated_at": m.updated_at or m_created,
            })
    staging = f"{STAGING_OWNER}{int(time.time())}:{new_id()}"
    for row in conv_rows:
        row["owner"] = staging
    try:
        _write_batches(store, s.conversations, conv_rows, batch_rows)
        _write_batches(store, s.messages, msg_rows, batch_rows)
        with store._write() as conn:  # the whole file appears at once
            conn.execute(sa.update(s.conversations).where(s.conversations.c.owner == staging).values(owner=owner))
    except sa.exc.DBAPIError as exc:
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0][:300]
        try:
            _discard(store, staging)
        except sa.exc.DBAPIError:  # left invisible; discard_unfinished_imports removes it later
            pass
        raise _fail("The database refused the file's content.", reason) from None
    return len(conv_rows)


def _batches(rows: list[dict[str, Any]], max_rows: int) -> Iterator[list[dict[str, Any]]]:
    """Runs of at most `max_rows` rows and about BATCH_CHARS characters of text (at least one row)."""
    batch: list[dict[str, Any]] = []
    chars = 0
    for row in rows:
        size = len(row.get("text") or "")
        if batch and (len(batch) >= max_rows or chars + size > BATCH_CHARS):
            yield batch
            batch, chars = [], 0
        batch.append(row)
        chars += size
    if batch:
        yield batch


def _write_batches(store: Store, table: sa.Table, rows: list[dict[str, Any]], max_rows: int) -> None:
    """Insert `rows`, one short transaction per batch; on SQLite, pause after each as long as it
    took (at least 5 ms), so a live answer waiting to save gets the write lock in between."""
    for batch in _batches(rows, max_rows):
        started = time.monotonic()
        with store._write() as conn:
            conn.execute(sa.insert(table), batch)
        if store.dialect == "sqlite":
            time.sleep(min(0.1, max(0.005, time.monotonic() - started)))


def _discard(store: Store, staging_owner: str) -> int:
    """Delete the conversations (and their messages) of one staging owner; returns how many."""
    c = s.conversations.c
    ids = sa.select(c.id).where(c.owner == staging_owner)
    with store._write() as conn:
        conn.execute(sa.delete(s.messages).where(s.messages.c.conversation_id.in_(ids)))
        return conn.execute(sa.delete(s.conversations).where(c.owner == staging_owner)).rowcount


def discard_unfinished_imports(store: Store, older_than_seconds: float = 3600) -> int:
    """Remove what imports cut off by a crash left behind (invisible rows under a staging owner
    older than that). Returns how many conversations were removed."""
    c = s.conversations.c
    with store._read() as conn:
        owners = list(conn.execute(sa.select(c.owner).distinct()
                                   .where(c.owner.startswith(STAGING_OWNER, autoescape=True))).scalars())
    removed = 0
    for staging in owners:
        try:
            started = int(staging[len(STAGING_OWNER):].split(":", 1)[0])
        except ValueError:
            started = 0
        if time.time() - started >= older_than_seconds:
            removed += _discard(store, staging)
    return removed
