"""Numbered migrations: migration N upgrades the schema from version N-1 to N.

Each one defines the tables it creates itself (frozen copies), so later changes to
schema.py never change what an old migration does. The version lives in the
one-row table `schema_version`; version 0 means an empty database.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from .errors import SchemaTooNew
from .schema import UTCDateTime


def _m1_conversations_and_messages(conn: Connection) -> None:
    md = sa.MetaData()
    sa.Table(
        "conversations", md,
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("owner", sa.String(320), nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("settings", sa.JSON, nullable=False),
        sa.Index("ix_conversations_owner_updated", "owner", "updated_at"),
    )
    sa.Table(
        "messages", md,
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("conversation_id", sa.String(32), sa.ForeignKey("conversations.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("model", sa.Text),
        sa.Column("parameters", sa.JSON),
        sa.Column("usage", sa.JSON),
        sa.Column("metrics", sa.JSON),
        sa.Column("error", sa.Text),
        sa.Column("finish_reason", sa.String(64)),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.UniqueConstraint("conversation_id", "seq", name="uq_messages_conversation_seq"),
        sa.Index("ix_messages_status_updated", "status", "updated_at"),
    )
    md.create_all(conn)


def _m2_shares(conn: Connection) -> None:
    md = sa.MetaData()
    sa.Table("conversations", md, sa.Column("id", sa.String(32), primary_key=True))
    sa.Table(
        "shares", md,
        sa.Column("token", sa.String(64), primary_key=True),
        sa.Column("conversation_id", sa.String(32), sa.ForeignKey("conversations.id", ondelete="CASCADE"),
                  nullable=False, unique=True),
        sa.Column("owner", sa.String(320), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    md.tables["shares"].create(conn)


def _m3_kind_and_pane(conn: Connection) -> None:
    """Conversation kinds (chat, compare, ...) and the pane of a side-by-side answer."""
    conn.exec_driver_sql("ALTER TABLE conversations ADD COLUMN kind VARCHAR(32) DEFAULT 'chat' NOT NULL")
    conn.exec_driver_sql("ALTER TABLE messages ADD COLUMN pane INTEGER")


def _m4_votes_and_prices(conn: Connection) -> None:
    md = sa.MetaData()
    sa.Table(
        "votes", md,
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("conversation_id", sa.String(32), nullable=True),
        sa.Column("owner", sa.String(320), nullable=False),
        sa.Column("winner_model", sa.Text, nullable=False),
        sa.Column("models", sa.JSON, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    sa.Table(
        "prices", md,
        sa.Column("model", sa.Text, primary_key=True),
        sa.Column("prompt_per_1k", sa.Float, nullable=False),
        sa.Column("completion_per_1k", sa.Float, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
    )
    md.create_all(conn)


def _m5_prompts(conn: Connection) -> None:
    """The prompt library: prompts (owner, tags, sharing, soft delete) and their immutable versions."""
    md = sa.MetaData()
    sa.Table(
        "prompts", md,
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("owner", sa.String(320), nullable=False),
        sa.Column("tags", sa.JSON, nullable=False),
        sa.Column("team", sa.Boolean, nullable=False),
        sa.Column("share_token", sa.String(64), unique=True),
        sa.Column("latest_version", sa.Integer, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("deleted_at", UTCDateTime),
        sa.Index("ix_prompts_owner_updated", "owner", "updated_at"),
    )
    sa.Table(
        "prompt_versions", md,
        sa.Column("prompt_id", sa.String(32), sa.ForeignKey("prompts.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("system_prompt", sa.Text, nullable=False),
        sa.Column("template", sa.Text, nullable=False),
        sa.Column("model", sa.Text),
        sa.Column("parameters", sa.JSON),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    md.create_all(conn)


def _m6_demo_rounds(conn: Connection) -> None:
    """Demo day: a presenter's demo (its short vote code), its blind rounds, and the room's votes.

    Earlier one-click blind votes become rounds of no demo, so the leaderboard keeps them.
    """
    md = sa.MetaData()
    sa.Table(
        "demos", md,
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("code", sa.String(16), nullable=False, unique=True),
        sa.Column("owner", sa.String(320), nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("settings", sa.JSON, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    rounds = sa.Table(
        "rounds", md,
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("demo_id", sa.String(32), sa.ForeignKey("demos.id", ondelete="CASCADE"), nullable=True),
        sa.Column("owner", sa.String(320), nullable=False),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("conversation_id", sa.String(32), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("contestants", sa.JSON, nullable=False),
        sa.Column("outcome", sa.JSON, nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("closed_at", UTCDateTime, nullable=True),
        sa.Index("ix_rounds_demo_number", "demo_id", "number"),
    )
    sa.Table(
        "round_votes", md,
        sa.Column("round_id", sa.String(32), sa.ForeignKey("rounds.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("voter", sa.String(64), primary_key=True),
        sa.Column("choice", sa.String(8), nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Index("ix_round_votes_source_created", "source", "created_at"),
    )
    md.create_all(conn)
    old = sa.table("votes", sa.column("id"), sa.column("conversation_id"), sa.column("owner"),
                   sa.column("winner_model"), sa.column("models", sa.JSON), sa.column("created_at", UTCDateTime))
    for row in conn.execute(sa.select(old)).mappings().all():
        models = list(row["models"] or [])
        winner = models.index(row["winner_model"]) if row["winner_model"] in models else None
        conn.execute(sa.insert(rounds).values(
            id=row["id"], demo_id=None, owner=row["owner"], number=0, conversation_id=row["conversation_id"],
            status="revealed", contestants=models,
            outcome={"winner": winner, "tally": {}, "source": "presenter"},
            created_at=row["created_at"], closed_at=row["created_at"]))


def _m7_evaluations(conn: Connection) -> None:
    """Evaluation datasets (versioned by content), runs (owned by one replica at a time) and results
    (one per run, row, contestant and repeat: the primary key makes a resumed run never duplicate one)."""
    md = sa.MetaData()
    sa.Table(
        "eval_datasets", md,
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("owner", sa.String(320), nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("columns", sa.JSON, nullable=False),
        sa.Column("rows", sa.JSON, nullable=False),
        sa.Column("n_rows", sa.Integer, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.UniqueConstraint("owner", "content_hash", name="uq_eval_datasets_owner_hash"),
    )
    sa.Table(
        "eval_runs", md,
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("owner", sa.String(320), nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("dataset_id", sa.String(32), sa.ForeignKey("eval_datasets.id"), nullable=False),
        sa.Column("config", sa.JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("total", sa.Integer, nullable=False),
        sa.Column("replica", sa.String(64)),
        sa.Column("heartbeat_at", UTCDateTime),
        sa.Column("started_at", UTCDateTime),
        sa.Column("done_at_start", sa.Integer, nullable=False, server_default="0"),
        sa.Column("notice", sa.Text),
        sa.Column("share_token", sa.String(64), unique=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Index("ix_eval_runs_owner_updated", "owner", "updated_at"),
    )
    sa.Table(
        "eval_results", md,
        sa.Column("run_id", sa.String(32), sa.ForeignKey("eval_runs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("row_index", sa.Integer, nullable=False),
        sa.Column("contestant", sa.Integer, nullable=False),
        sa.Column("repeat_index", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("output", sa.Text, nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("prompt_tokens", sa.Integer),
        sa.Column("completion_tokens", sa.Integer),
        sa.Column("latency", sa.Float),
        sa.Column("first_token", sa.Float),
        sa.Column("cost", sa.Float),
        sa.Column("grades", sa.JSON),
        sa.Column("passed", sa.Boolean),
        sa.Column("judge_score", sa.Float),
        sa.Column("review_score", sa.Integer),
        sa.Column("review_note", sa.Text),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("run_id", "row_index", "contestant", "repeat_index", name="pk_eval_results"),
    )
    md.create_all(conn)


def _m8_message_details(conn: Connection) -> None:
    """What an answer carries besides its text: token probabilities, which candidate was picked."""
    conn.exec_driver_sql("ALTER TABLE messages ADD COLUMN details JSON")


def _m9_hidden_answers(conn: Connection) -> None:
    """Earlier versions of an answer (kept by Regenerate) are hidden, not deleted."""
    conn.exec_driver_sql("ALTER TABLE messages ADD COLUMN hidden BOOLEAN DEFAULT FALSE NOT NULL")


def _m10_demo_share_links(conn: Connection) -> None:
    """A demo's read-only link: its rounds, votes, reveals and leaderboard, for anyone holding it."""
    conn.exec_driver_sql("ALTER TABLE demos ADD COLUMN share_token VARCHAR(64)")
    conn.exec_driver_sql("CREATE UNIQUE INDEX ix_demos_share_token ON demos (share_token)")


MIGRATIONS: list[tuple[int, str, Callable[[Connection], None]]] = [
    (1, "conversations and messages", _m1_conversations_and_messages),
    (2, "share links", _m2_shares),
    (3, "conversation kind, message pane", _m3_kind_and_pane),
    (4, "votes and prices", _m4_votes_and_prices),
    (5, "prompt library", _m5_prompts),
    (6, "demo rounds and audience votes", _m6_demo_rounds),
    (7, "evaluations", _m7_evaluations),
    (8, "message details", _m8_message_details),
    (9, "hidden answers", _m9_hidden_answers),
    (10, "demo share links", _m10_demo_share_links),
]
LATEST = MIGRATIONS[-1][0]

_PG_LOCK_ID = 727_593_701  # any constant: serialises migrations of replicas starting together


def current_version(conn: Connection) -> int:
    """The schema version of the database (0 when it has no schema yet)."""
    if not sa.inspect(conn).has_table("schema_version"):
        return 0
    value = conn.exec_driver_sql("SELECT MAX(version) FROM schema_version").scalar()
    return int(value or 0)


def migrate(engine: Engine, target: int | None = None) -> int:
    """Upgrade to `target` (default: the latest) in one transaction; returns the new version."""
    target = LATEST if target is None else target
    with engine.execution_options(sqlite_immediate=True).begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_LOCK_ID})")
        version = current_version(conn)
        if version > LATEST:
            raise SchemaTooNew(detail=f"database schema version {version}, this app knows up to {LATEST}")
        if version >= target:
            return version
        if not sa.inspect(conn).has_table("schema_version"):
            conn.exec_driver_sql("CREATE TABLE schema_version (version INTEGER NOT NULL)")
            conn.exec_driver_sql("INSERT INTO schema_version (version) VALUES (0)")
        for number, _name, upgrade in MIGRATIONS:
            if version < number <= target:
                upgrade(conn)
                conn.execute(sa.text("UPDATE schema_version SET version = :v"), {"v": number})
                version = number
        return version
