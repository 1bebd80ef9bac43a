"""The current schema, as SQLAlchemy Core tables used by the queries.

Migrations (migrations.py) create and upgrade it; this file only describes the
result of the latest one. Keep both in step.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator):
    """A timestamp stored in UTC and always read back as a timezone-aware UTC datetime."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect):  # noqa: ANN001
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect):  # noqa: ANN001
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


metadata = sa.MetaData()

schema_version = sa.Table(
    "schema_version", metadata,
    sa.Column("version", sa.Integer, nullable=False),
)

conversations = sa.Table(
    "conversations", metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("owner", sa.String(320), nullable=False),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("settings", sa.JSON, nullable=False),
    sa.Column("kind", sa.String(32), nullable=False, server_default="chat"),
)

messages = sa.Table(
    "messages", metadata,
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
    sa.Column("pane", sa.Integer),
    sa.Column("details", sa.JSON),  # token probabilities, the picked candidate (migration 8)
    sa.Column("hidden", sa.Boolean, nullable=False, server_default=sa.false()),  # an earlier version of an answer
    sa.UniqueConstraint("conversation_id", "seq", name="uq_messages_conversation_seq"),
)

shares = sa.Table(
    "shares", metadata,
    sa.Column("token", sa.String(64), primary_key=True),
    sa.Column("conversation_id", sa.String(32), sa.ForeignKey("conversations.id", ondelete="CASCADE"),
              nullable=False, unique=True),
    sa.Column("owner", sa.String(320), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

votes = sa.Table(
    "votes", metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("conversation_id", sa.String(32), nullable=True),
    sa.Column("owner", sa.String(320), nullable=False),
    sa.Column("winner_model", sa.Text, nullable=False),
    sa.Column("models", sa.JSON, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

prices = sa.Table(
    "prices", metadata,
    sa.Column("model", sa.Text, primary_key=True),
    sa.Column("prompt_per_1k", sa.Float, nullable=False),
    sa.Column("completion_per_1k", sa.Float, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

prompts = sa.Table(
    "prompts", metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("owner", sa.String(320), nullable=False),
    sa.Column("tags", sa.JSON, nullable=False),
    sa.Column("team", sa.Boolean, nullable=False),  # shared with everyone signed in
    sa.Column("share_token", sa.String(64), unique=True),  # a read-only link, when made
    sa.Column("latest_version", sa.Integer, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("deleted_at", UTCDateTime),  # soft delete: undone until purged
)

prompt_versions = sa.Table(  # rows are only ever inserted: a version never changes
    "prompt_versions", metadata,
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

demos = sa.Table(
    "demos", metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("code", sa.String(16), nullable=False, unique=True),
    sa.Column("owner", sa.String(320), nullable=False),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("settings", sa.JSON, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("share_token", sa.String(64), unique=True),  # a read-only link, when made (migration 10)
)

rounds = sa.Table(
    "rounds", metadata,
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
)

round_votes = sa.Table(
    "round_votes", metadata,
    sa.Column("round_id", sa.String(32), sa.ForeignKey("rounds.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("voter", sa.String(64), primary_key=True),
    sa.Column("choice", sa.String(8), nullable=False),
    sa.Column("source", sa.String(64), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

eval_datasets = sa.Table(
    "eval_datasets", metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("owner", sa.String(320), nullable=False),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("content_hash", sa.String(64), nullable=False),
    sa.Column("columns", sa.JSON, nullable=False),
    sa.Column("rows", sa.JSON, nullable=False),
    sa.Column("n_rows", sa.Integer, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

eval_runs = sa.Table(
    "eval_runs", metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("owner", sa.String(320), nullable=False),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("dataset_id", sa.String(32), nullable=False),
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
)

eval_results = sa.Table(
    "eval_results", metadata,
    sa.Column("run_id", sa.String(32), nullable=False),
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
    sa.PrimaryKeyConstraint("run_id", "row_index", "contestant", "repeat_index"),
)
