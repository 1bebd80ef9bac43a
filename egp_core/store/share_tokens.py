"""Tokens of read-only share links kept in a `share_token` column (demos, evaluation runs)."""

from __future__ import annotations

import secrets

import sqlalchemy as sa
from sqlalchemy.engine import Connection


def ensure_share_token(conn: Connection, table: sa.Table, row_id: str, owner: str) -> str | None:
    """The row's unguessable token, made the first time (the same one until it is revoked);
    None when `owner` has no such row. Runs inside the caller's write transaction."""
    c = table.c
    mine = (c.id == row_id) & (c.owner == owner)
    token = conn.execute(sa.select(c.share_token).where(mine)).scalar()
    if token:
        return token
    token = secrets.token_urlsafe(24)
    if conn.execute(sa.update(table).where(mine).values(share_token=token)).rowcount != 1:
        return None
    return token
