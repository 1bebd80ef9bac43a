"""Rows for the usage dashboard: one per assistant message (and per evaluation request), with tokens,
speed and cost."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa

from egp_core.pricing import price_for

from . import schema as s
from .store import Store

COLUMNS = ("day", "created_at", "conversation_id", "conversation_title", "message_id", "model", "status",
           "prompt_tokens", "completion_tokens", "total_tokens", "time_to_first_token", "tokens_per_second",
           "total_time", "cost")


def _int(value: Any) -> int:
    if isinstance(value, bool):
        return 0
    if isinstance(value, (int, float)):
        return int(value)
    return 0


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def cost(prompt_tokens: int, completion_tokens: int, model: str,
         prices: dict[str, tuple[float, float]]) -> float:
    """USD for the tokens of `model`: the person's `prices` first, then egp_core.pricing's defaults.

    0 when the model's price is unknown.
    """
    price = price_for(model, prices)
    if price is None:
        return 0.0
    return prompt_tokens / 1000 * price.prompt_per_1k + completion_tokens / 1000 * price.completion_per_1k


def usage_rows(store: Store, owner: str, start: date | None = None, end: date | None = None,
               prices: dict[str, tuple[float, float]] | None = None) -> list[dict[str, Any]]:
    """One dict per assistant message of `owner` created from `start` to `end` (UTC days, inclusive).

    Keys: COLUMNS. Tokens are 0 when unknown; time_to_first_token, tokens_per_second and
    total_time are None when unknown. `prices` (the person's own, default: the stored ones)
    win over the default prices of egp_core.pricing.
    """
    if prices is None:
        prices = store.get_prices()
    c, m = s.conversations.c, s.messages.c
    q = (sa.select(m.id, m.conversation_id, c.title, m.model, m.status, m.usage, m.metrics, m.created_at)
         .join(s.conversations, c.id == m.conversation_id)
         .where(c.owner == owner, m.role == "assistant")
         .order_by(m.created_at, m.conversation_id, m.seq))
    since = datetime.combine(start, time.min, tzinfo=UTC) if start is not None else None
    until = datetime.combine(end + timedelta(days=1), time.min, tzinfo=UTC) if end is not None else None
    if since is not None:
        q = q.where(m.created_at >= since)
    if until is not None:
        q = q.where(m.created_at < until)
    rows = []
    with store.engine.connect() as conn:
        result = conn.execute(q).all()
    for mid, cid, title, model, status, usage, metrics, created in result:
        usage = usage if isinstance(usage, dict) else {}
        metrics = metrics if isinstance(metrics, dict) else {}
        prompt, completion = _int(usage.get("prompt")), _int(usage.get("completion"))
        total = _int(usage.get("total")) or prompt + completion
        rows.append({
            "day": created.date(), "created_at": created, "conversation_id": cid, "conversation_title": title,
            "message_id": mid, "model": model or "", "status": status,
            "prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": total,
            "time_to_first_token": _float(metrics.get("time_to_first_token")),
            "tokens_per_second": _float(metrics.get("tokens_per_second")),
            "total_time": _float(metrics.get("total_time")),
            "cost": cost(prompt, completion, model or "", prices),
        })
    rows += evaluation_rows(store, owner, since, until, prices)
    rows.sort(key=lambda r: r["created_at"])
    return rows


def evaluation_rows(store: Store, owner: str, since: datetime | None, until: datetime | None,
                    prices: dict[str, tuple[float, float]]) -> list[dict[str, Any]]:
    """One row per request an evaluation of `owner` sent (its run is the "conversation")."""
    e, r = s.eval_results.c, s.eval_runs.c
    with store.engine.connect() as conn:
        runs = {rid: (title, [c.get("model") or "" for c in (config or {}).get("contestants") or []])
                for rid, title, config in conn.execute(sa.select(r.id, r.title, r.config).where(r.owner == owner))}
        if not runs:
            return []
        q = (sa.select(e.run_id, e.row_index, e.contestant, e.repeat_index, e.status, e.prompt_tokens,
                       e.completion_tokens, e.latency, e.first_token, e.created_at)
             .where(e.run_id.in_(list(runs))).order_by(e.created_at))
        if since is not None:
            q = q.where(e.created_at >= since)
        if until is not None:
            q = q.where(e.created_at < until)
        result = conn.execute(q).all()
    out = []
    for rid, row, contestant, repeat, status, prompt, completion, latency, first, created in result:
        title, models = runs[rid]
        model = models[contestant] if contestant < len(models) else ""
        prompt, completion = _int(prompt), _int(completion)
        out.append({
            "day": created.date(), "created_at": created, "conversation_id": rid,
            "conversation_title": f"Evaluation: {title}", "message_id": f"{rid}-{row}-{contestant}-{repeat}",
            "model": model, "status": "complete" if status == "ok" else "error",
            "prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
            "time_to_first_token": _float(first),
            "tokens_per_second": completion / latency if completion and latency else None,
            "total_time": _float(latency), "cost": cost(prompt, completion, model, prices),
        })
    return out
