"""Demo day in SQL: demos (a presenter's session and its short vote code), blind rounds, votes.

Every replica of the app reads and writes the same rows, so votes cast on any
replica are counted once, together. A vote is one row per (round, voter): the
primary key refuses a second vote from the same browser.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from . import schema as s
from .share_tokens import ensure_share_token
from .store import Store, clean_dict, new_id

CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read off a projector
CODE_LENGTH = 6
ROUND_STATUSES = ("open", "closed", "revealed")


@dataclass(slots=True)
class Demo:
    id: str
    code: str
    owner: str
    title: str
    settings: dict[str, Any]
    created_at: datetime
    share_token: str | None = None


@dataclass(slots=True)
class RoundRow:
    id: str
    demo_id: str | None
    owner: str
    number: int
    conversation_id: str | None
    status: str
    contestants: list[str]
    outcome: dict[str, Any] | None
    created_at: datetime
    closed_at: datetime | None


def new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def normalise_code(code: str | None) -> str:
    """What a person typed or scanned, as stored: upper case, no spaces or dashes."""
    return "".join(ch for ch in (code or "").upper() if ch.isalnum())[:CODE_LENGTH * 2]


def _demo(row) -> Demo:
    m = row._mapping
    return Demo(m["id"], m["code"], m["owner"], m["title"], dict(m["settings"] or {}), m["created_at"],
                m["share_token"])


def _round(row) -> RoundRow:
    m = row._mapping
    return RoundRow(m["id"], m["demo_id"], m["owner"], m["number"], m["conversation_id"], m["status"],
                    list(m["contestants"] or []), m["outcome"], m["created_at"], m["closed_at"])


class Rounds:
    """Demos, rounds and votes on top of a Store's database."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # ----- demos -----------------------------------------------------------------------------------

    def create_demo(self, owner: str, title: str = "Demo", settings: dict | None = None) -> Demo:
        for _ in range(8):  # a code collision is rare; try a fresh one
            code = new_code()
            try:
                with self.store._write() as conn:
                    did = new_id()
                    now = s.utcnow()
                    conn.execute(sa.insert(s.demos).values(
                        id=did, code=code, owner=owner, title=(title or "Demo")[:200],
                        settings=clean_dict(settings) or {}, created_at=now))
                return Demo(did, code, owner, title, settings or {}, now)
            except sa.exc.IntegrityError:
                continue
        raise RuntimeError("could not find a free demo code")

    def demo(self, demo_id: str, owner: str | None = None) -> Demo | None:
        q = sa.select(s.demos).where(s.demos.c.id == demo_id)
        if owner is not None:
            q = q.where(s.demos.c.owner == owner)
        with self.store._read() as conn:
            row = conn.execute(q).first()
        return _demo(row) if row else None

    def demo_by_code(self, code: str | None) -> Demo | None:
        code = normalise_code(code)
        if not code:
            return None
        with self.store._read() as conn:
            row = conn.execute(sa.select(s.demos).where(s.demos.c.code == code)).first()
        return _demo(row) if row else None

    # ----- share links (read-only: the rounds, votes, reveals and leaderboard) ---------------------

    def create_share(self, demo_id: str, owner: str) -> str:
        """An unguessable token for the demo's read-only link (the same one until it is revoked)."""
        with self.store._write() as conn:
            token = ensure_share_token(conn, s.demos, demo_id, owner)
        if token is None:
            raise LookupError("no such demo")
        return token

    def delete_share(self, demo_id: str, owner: str) -> bool:
        """Revoke the link: its token stops working. False when there was none."""
        d = s.demos.c
        with self.store._write() as conn:
            result = conn.execute(sa.update(s.demos).where(d.id == demo_id, d.owner == owner,
                                                           d.share_token.is_not(None)).values(share_token=None))
        return result.rowcount > 0

    def demo_for_share(self, token: str | None) -> Demo | None:
        token = (token or "").strip()
        if not token:
            return None
        with self.store._read() as conn:
            row = conn.execute(sa.select(s.demos).where(s.demos.c.share_token == token)).first()
        return _demo(row) if row else None

    # ----- rounds ----------------------------------------------------------------------------------

    def add_round(self, owner: str, contestants: list[str], *, demo_id: str | None = None,
                  conversation_id: str | None = None, status: str = "open",
                  outcome: dict | None = None) -> RoundRow:
        """A new round (the demo's next number). Any open round of the demo is closed first."""
        if status not in ROUND_STATUSES:
            raise ValueError(f"status must be one of {ROUND_STATUSES}")
        r = s.rounds.c
        now = s.utcnow()
        rid = new_id()
        with self.store._write() as conn:
            number = 1
            if demo_id is not None:
                conn.execute(sa.select(s.demos.c.id).where(s.demos.c.id == demo_id).with_for_update())
                number = (conn.execute(sa.select(sa.func.max(r.number)).where(r.demo_id == demo_id)).scalar()
                          or 0) + 1
            closed = now if status != "open" else None
            conn.execute(sa.insert(s.rounds).values(
                id=rid, demo_id=demo_id, owner=owner, number=number, conversation_id=conversation_id,
                status=status, contestants=list(contestants), outcome=outcome, created_at=now,
                closed_at=closed))
        return RoundRow(rid, demo_id, owner, number, conversation_id, status, list(contestants), outcome,
                        now, closed)

    def get_round(self, round_id: str) -> RoundRow | None:
        with self.store._read() as conn:
            row = conn.execute(sa.select(s.rounds).where(s.rounds.c.id == round_id)).first()
        return _round(row) if row else None

    def round_for_conversation(self, conversation_id: str) -> RoundRow | None:
        r = s.rounds.c
        q = (sa.select(s.rounds).where(r.conversation_id == conversation_id)
             .order_by(r.created_at.desc()).limit(1))
        with self.store._read() as conn:
            row = conn.execute(q).first()
        return _round(row) if row else None

    def current_round(self, demo_id: str) -> RoundRow | None:
        """The demo's latest round (open, closed or revealed)."""
        r = s.rounds.c
        q = sa.select(s.rounds).where(r.demo_id == demo_id).order_by(r.number.desc()).limit(1)
        with self.store._read() as conn:
            row = conn.execute(q).first()
        return _round(row) if row else None

    def demo_rounds(self, demo_id: str) -> list[RoundRow]:
        r = s.rounds.c
        q = sa.select(s.rounds).where(r.demo_id == demo_id).order_by(r.number)
        with self.store._read() as conn:
            return [_round(row) for row in conn.execute(q)]

    def finished_rounds(self, owner: str | None = None) -> list[RoundRow]:
        """Revealed rounds with a result, oldest first; everyone's, or one owner's. (A closed round
        still hiding its names stays out: the leaderboard moving would give them away.)"""
        r = s.rounds.c
        q = sa.select(s.rounds).where(r.status == "revealed", r.outcome.is_not(None))
        if owner is not None:
            q = q.where(r.owner == owner)
        with self.store._read() as conn:
            return [_round(row) for row in conn.execute(q.order_by(r.created_at))]

    def set_status(self, round_id: str, status: str, *, outcome: dict | None = None,
                   expect: tuple[str, ...] = ROUND_STATUSES) -> bool:
        """Move a round on (open → closed → revealed). False when it was not in one of `expect`."""
        r = s.rounds.c
        values: dict[str, Any] = {"status": status}
        if outcome is not None:
            values["outcome"] = outcome
        if status != "open":
            values["closed_at"] = sa.func.coalesce(r.closed_at, s.utcnow())
        with self.store._write() as conn:
            result = conn.execute(sa.update(s.rounds).where(r.id == round_id, r.status.in_(expect))
                                  .values(**values))
        return result.rowcount > 0

    # ----- votes -----------------------------------------------------------------------------------

    def add_vote(self, round_id: str, voter: str, choice: str, source: str) -> bool:
        """One vote; False when this voter already voted in this round (the row exists)."""
        try:
            with self.store._write() as conn:
                conn.execute(sa.insert(s.round_votes).values(
                    round_id=round_id, voter=voter, choice=choice, source=source, created_at=s.utcnow()))
        except sa.exc.IntegrityError:
            return False
        return True

    def has_voted(self, round_id: str, voter: str) -> str | None:
        v = s.round_votes.c
        with self.store._read() as conn:
            return conn.execute(sa.select(v.choice).where(v.round_id == round_id, v.voter == voter)).scalar()

    def recent_votes_from(self, source: str, seconds: float) -> int:
        v = s.round_votes.c
        since = s.utcnow() - timedelta(seconds=seconds)
        with self.store._read() as conn:
            return int(conn.execute(sa.select(sa.func.count()).where(v.source == source, v.created_at >= since))
                       .scalar() or 0)

    def tally(self, round_id: str) -> dict[str, int]:
        v = s.round_votes.c
        q = sa.select(v.choice, sa.func.count()).where(v.round_id == round_id).group_by(v.choice)
        with self.store._read() as conn:
            return {choice: int(n) for choice, n in conn.execute(q)}
