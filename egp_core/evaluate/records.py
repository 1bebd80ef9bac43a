"""Evaluations in the store: datasets, runs and their results (tables of migration 7).

One result per (run, row, contestant, repeat): results are inserted with
"on conflict do nothing", so a resumed run, or two replicas racing, never
write one twice. A run belongs to the replica that runs it (`replica`,
`heartbeat_at`); `claim` takes it over atomically when it is free, stopped,
or its owner has stopped beating.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import EllipsisType
from typing import Any

import sqlalchemy as sa

from egp_core.store import Store
from egp_core.store import schema as s
from egp_core.store.share_tokens import ensure_share_token
from egp_core.store.store import clean_dict, clean_text, new_id

from .datasets import Dataset

RUN_STATUSES = ("queued", "running", "stopped", "complete")
STALE_AFTER_SECONDS = 15.0
"""A running run whose owner has not beaten for this long is interrupted (its replica died)."""

LIGHT = ("row_index", "contestant", "repeat_index", "status", "passed", "judge_score", "latency", "cost",
         "prompt_tokens", "completion_tokens", "review_score")


@dataclass(slots=True)
class Run:
    id: str
    owner: str
    title: str
    dataset_id: str
    config: dict[str, Any]
    status: str
    total: int
    replica: str | None
    heartbeat_at: datetime | None
    started_at: datetime | None
    done_at_start: int
    notice: str | None
    share_token: str | None
    created_at: datetime
    updated_at: datetime

    def interrupted(self, now: datetime | None = None, stale_after: float = STALE_AFTER_SECONDS) -> bool:
        """Still marked running, but its replica has stopped beating (a crash or a restart)."""
        if self.status != "running":
            return False
        now = now or s.utcnow()
        return self.heartbeat_at is None or now - self.heartbeat_at > timedelta(seconds=stale_after)


def _run(row: sa.Row) -> Run:
    m = row._mapping
    return Run(**{f: m[f] for f in Run.__slots__})


def _insert(dialect: str):
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


class Records:
    """The evaluation tables of a Store. Thread-safe (the Store's pooled engine)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.engine = store.engine
        self._writer = store.engine.execution_options(sqlite_immediate=True)

    # ----- datasets --------------------------------------------------------------------------------

    def save_dataset(self, owner: str, dataset: Dataset) -> str:
        """Save the table once per content (same content: same id). Returns its id."""
        d = s.eval_datasets.c
        with self._writer.begin() as conn:
            found = conn.execute(sa.select(d.id).where(d.owner == owner, d.content_hash == dataset.content_hash)
                                 ).scalar()
            if found:
                return found
            did = new_id()
            conn.execute(sa.insert(s.eval_datasets).values(
                id=did, owner=owner, name=clean_text(dataset.name) or "Dataset", content_hash=dataset.content_hash,
                columns=[clean_text(c) for c in dataset.columns],
                rows=[[clean_text(v) for v in r] for r in dataset.rows], n_rows=len(dataset.rows),
                created_at=s.utcnow()))
        return did

    def get_dataset(self, dataset_id: str) -> Dataset | None:
        d = s.eval_datasets.c
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(d.name, d.columns, d.rows).where(d.id == dataset_id)).first()
        if row is None:
            return None
        return Dataset(name=row.name, columns=list(row.columns), rows=[list(r) for r in row.rows])

    def list_datasets(self, owner: str, limit: int = 50) -> list[dict[str, Any]]:
        d = s.eval_datasets.c
        q = (sa.select(d.id, d.name, d.content_hash, d.n_rows, d.created_at).where(d.owner == owner)
             .order_by(d.created_at.desc()).limit(limit))
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    # ----- runs ------------------------------------------------------------------------------------

    def create_run(self, owner: str, title: str, dataset_id: str, config: dict[str, Any], total: int) -> str:
        rid = new_id()
        now = s.utcnow()
        with self._writer.begin() as conn:
            conn.execute(sa.insert(s.eval_runs).values(
                id=rid, owner=owner, title=(clean_text(title) or "Evaluation")[:200], dataset_id=dataset_id,
                config=clean_dict(config), status="queued", total=total, created_at=now, updated_at=now))
        return rid

    def get_run(self, run_id: str, owner: str | None = None) -> Run | None:
        r = s.eval_runs.c
        q = sa.select(s.eval_runs).where(r.id == run_id)
        if owner is not None:
            q = q.where(r.owner == owner)
        with self.engine.connect() as conn:
            row = conn.execute(q).first()
        return _run(row) if row else None

    def list_runs(self, owner: str, limit: int = 30) -> list[Run]:
        r = s.eval_runs.c
        q = sa.select(s.eval_runs).where(r.owner == owner).order_by(r.created_at.desc(), r.id).limit(limit)
        with self.engine.connect() as conn:
            return [_run(row) for row in conn.execute(q)]

    def claim(self, run_id: str, replica: str, stale_after: float = STALE_AFTER_SECONDS) -> bool:
        """Make `replica` the run's owner and mark it running, unless another live replica runs it.

        Atomic (one conditional UPDATE), so two replicas pressing Resume at once cannot both win."""
        r = s.eval_runs.c
        now = s.utcnow()
        free = sa.or_(r.status != "running", r.replica == replica, r.heartbeat_at.is_(None),
                      r.heartbeat_at < now - timedelta(seconds=stale_after))
        done = (sa.select(sa.func.count()).select_from(s.eval_results)
                .where(s.eval_results.c.run_id == run_id).scalar_subquery())
        with self._writer.begin() as conn:
            result = conn.execute(sa.update(s.eval_runs).where(r.id == run_id, r.status != "complete", free).values(
                status="running", replica=replica, heartbeat_at=now, started_at=now, done_at_start=done,
                notice=None, updated_at=now))
        return result.rowcount == 1

    def heartbeat(self, run_id: str, replica: str, notice: str | None = None) -> str | None:
        """Say this replica still runs it. Returns the run's status, or None when it is no longer ours."""
        r = s.eval_runs.c
        now = s.utcnow()
        values: dict[str, Any] = {"heartbeat_at": now}
        if notice is not None:
            values["notice"] = clean_text(notice)
        with self._writer.begin() as conn:
            result = conn.execute(sa.update(s.eval_runs).where(r.id == run_id, r.replica == replica)
                                  .values(**values))
            if result.rowcount != 1:
                return None
            return conn.execute(sa.select(r.status).where(r.id == run_id)).scalar()

    def finish(self, run_id: str, replica: str, status: str) -> bool:
        """The owner ends the run as "complete" or "stopped" (a run stopped elsewhere stays stopped)."""
        if status not in RUN_STATUSES:
            raise ValueError(f"status must be one of {RUN_STATUSES}")
        r = s.eval_runs.c
        now = s.utcnow()
        with self._writer.begin() as conn:
            result = conn.execute(sa.update(s.eval_runs)
                                  .where(r.id == run_id, r.replica == replica, r.status == "running")
                                  .values(status=status, heartbeat_at=now, updated_at=now))
        return result.rowcount == 1

    def request_stop(self, run_id: str, owner: str | None = None) -> bool:
        """Stop from any replica: the owner sees it at its next heartbeat."""
        r = s.eval_runs.c
        where = [r.id == run_id, r.status.in_(("running", "queued"))]
        if owner is not None:
            where.append(r.owner == owner)
        with self._writer.begin() as conn:
            result = conn.execute(sa.update(s.eval_runs).where(*where).values(status="stopped",
                                                                              updated_at=s.utcnow()))
        return result.rowcount == 1

    def set_notice(self, run_id: str, notice: str | None) -> None:
        with self._writer.begin() as conn:
            conn.execute(sa.update(s.eval_runs).where(s.eval_runs.c.id == run_id).values(notice=clean_text(notice)))

    def share(self, run_id: str, owner: str) -> str:
        """An unguessable token for a read-only link to the run (the same one each time)."""
        with self._writer.begin() as conn:
            token = ensure_share_token(conn, s.eval_runs, run_id, owner)
        if token is None:
            raise LookupError("no such run")
        return token

    def run_for_share(self, token: str) -> Run | None:
        if not token:
            return None
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(s.eval_runs).where(s.eval_runs.c.share_token == token)).first()
        return _run(row) if row else None

    def delete_run(self, run_id: str, owner: str) -> bool:
        with self._writer.begin() as conn:
            conn.execute(sa.delete(s.eval_results).where(s.eval_results.c.run_id == run_id))
            result = conn.execute(sa.delete(s.eval_runs).where(s.eval_runs.c.id == run_id,
                                                               s.eval_runs.c.owner == owner))
        return result.rowcount == 1

    # ----- results ---------------------------------------------------------------------------------

    def add_results(self, results: Sequence[dict[str, Any]]) -> int:
        """Insert results in one transaction; ones already there are left as they are. Returns how many were new."""
        if not results:
            return 0
        rows = []
        now = s.utcnow()
        for res in results:
            row = {k: res.get(k) for k in s.eval_results.c.keys()}  # every key: one executemany shape
            row["output"] = clean_text(row.get("output") or "")
            row["error"] = clean_text(row.get("error"))
            row["created_at"] = row["created_at"] or now
            rows.append(row)
        stmt = _insert(self.store.dialect)(s.eval_results).on_conflict_do_nothing()
        with self._writer.begin() as conn:
            result = conn.execute(stmt, rows)
            conn.execute(sa.update(s.eval_runs).where(s.eval_runs.c.id == rows[0]["run_id"])
                         .values(updated_at=now))
        return max(result.rowcount, 0)

    def done_keys(self, run_id: str) -> set[tuple[int, int, int]]:
        """(row, contestant, repeat) of every result saved so far."""
        e = s.eval_results.c
        with self.engine.connect() as conn:
            return {tuple(r) for r in conn.execute(sa.select(e.row_index, e.contestant, e.repeat_index)
                                                   .where(e.run_id == run_id))}

    def delete_failed(self, run_id: str) -> int:
        """Forget the failed results, so Resume sends those requests again (a complete run becomes stopped)."""
        e, r = s.eval_results.c, s.eval_runs.c
        with self._writer.begin() as conn:
            deleted = conn.execute(sa.delete(s.eval_results).where(e.run_id == run_id, e.status == "error")).rowcount
            if deleted:
                conn.execute(sa.update(s.eval_runs).where(r.id == run_id, r.status == "complete")
                             .values(status="stopped", updated_at=s.utcnow()))
        return deleted

    def progress(self, run_id: str) -> dict[str, Any]:
        """done, errors, prompt and completion tokens, cost so far (one aggregate query)."""
        e = s.eval_results.c
        q = sa.select(sa.func.count(), sa.func.sum(sa.case((e.status == "error", 1), else_=0)),
                      sa.func.sum(e.prompt_tokens), sa.func.sum(e.completion_tokens), sa.func.sum(e.cost)
                      ).where(e.run_id == run_id)
        with self.engine.connect() as conn:
            done, errors, prompt, completion, cost = conn.execute(q).one()
        return {"done": int(done or 0), "errors": int(errors or 0), "prompt_tokens": int(prompt or 0),
                "completion_tokens": int(completion or 0), "cost": float(cost or 0.0)}

    def light_results(self, run_id: str) -> list[dict[str, Any]]:
        """Every result without its texts: enough for statistics and filters over 10,000 x 4 rows."""
        e = s.eval_results.c
        q = (sa.select(*(e[c] for c in LIGHT)).where(e.run_id == run_id)
             .order_by(e.row_index, e.contestant, e.repeat_index))
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    def latest(self, run_id: str, n: int = 5) -> list[dict[str, Any]]:
        """The `n` results saved last (shown while a run goes on)."""
        e = s.eval_results.c
        q = (sa.select(e.row_index, e.contestant, e.status, e.output, e.passed).where(e.run_id == run_id)
             .order_by(e.created_at.desc(), e.row_index.desc()).limit(n))
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    def results_for_rows(self, run_id: str, rows: Iterable[int]) -> list[dict[str, Any]]:
        """Full results (texts, grades) of the given dataset rows only: one page of the table."""
        rows = sorted(set(rows))
        if not rows:
            return []
        e = s.eval_results.c
        q = (sa.select(s.eval_results).where(e.run_id == run_id, e.row_index.in_(rows))
             .order_by(e.row_index, e.contestant, e.repeat_index))
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    def all_results(self, run_id: str) -> Iterable[dict[str, Any]]:
        """Every result with its texts, streamed in order (for exports)."""
        e = s.eval_results.c
        q = sa.select(s.eval_results).where(e.run_id == run_id).order_by(e.row_index, e.contestant, e.repeat_index)
        with self.engine.connect() as conn:
            for row in conn.execution_options(yield_per=500).execute(q):
                yield dict(row._mapping)

    def outputs(self, run_id: str) -> dict[tuple[int, int], list[str]]:
        """(row, contestant) -> the answers of its repeats (for how often repeats agree)."""
        e = s.eval_results.c
        out: dict[tuple[int, int], list[str]] = {}
        q = (sa.select(e.row_index, e.contestant, e.output).where(e.run_id == run_id, e.status == "ok")
             .order_by(e.row_index, e.contestant, e.repeat_index))
        with self.engine.connect() as conn:
            for row, contestant, output in conn.execute(q):
                out.setdefault((row, contestant), []).append(output)
        return out

    def set_review(self, run_id: str, row_index: int, contestant: int, repeat_index: int, *,
                   score: int | None | EllipsisType = ..., note: str | None | EllipsisType = ...) -> bool:
        """A person's grade of one answer, 1-5 (👍 is 5, 👎 is 1), and a note; what is not given stays."""
        values: dict[str, Any] = {}
        if score is not ...:
            if score is not None and not 1 <= int(score) <= 5:
                raise ValueError("a review score is 1 to 5")
            values["review_score"] = score
        if note is not ...:
            values["review_note"] = clean_text(note) or None
        if not values:
            return False
        e = s.eval_results.c
        with self._writer.begin() as conn:
            result = conn.execute(sa.update(s.eval_results).where(
                e.run_id == run_id, e.row_index == row_index, e.contestant == contestant,
                e.repeat_index == repeat_index).values(**values))
        return result.rowcount == 1
