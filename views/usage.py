"""Usage: where the tokens, time and money went, per day and per model, from the history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import altair as alt
import pandas as pd
import streamlit as st

from egp_core.pricing import format_cost, price_for
from egp_core.store.usage import COLUMNS, usage_rows
from ui import services, state

UNKNOWN = "(unknown)"  # an answer that failed before naming its model
COST = st.column_config.NumberColumn("Estimated cost", format="$%.4f")
LABELS = {
    "model": "Model", "answers": "Answers", "prompt_tokens": "Prompt tokens", "completion_tokens": "Completion tokens",
    "total_tokens": "Total tokens", "cost": COST, "conversation": "Conversation",
    "median_first_token_s": st.column_config.NumberColumn("Median time to first token", format="%.2f s"),
    "median_tokens_per_s": st.column_config.NumberColumn("Median tokens/s", format="%.1f"),
}


def pick_range():
    """The chosen days (UTC, inclusive): the last 30 days unless changed."""
    today = datetime.now(UTC).date()
    picked = st.date_input(
        "Dates", value=(today - timedelta(days=29), today), key="usage-range", max_value=today,
        help="Answers given between these days (inclusive, UTC).",
    )
    if isinstance(picked, (tuple, list)):
        if len(picked) == 2:
            return picked[0], picked[1]
        if len(picked) == 1:  # the second day not picked yet
            return picked[0], picked[0]
        return None, None
    return picked, picked


def empty_state(any_history: bool) -> None:
    if any_history:
        st.info("No answers in these dates. Pick a wider range above.", icon=":material/date_range:")
    else:
        st.info(
            "Nothing to show yet. Chat or compare models, and what each answer cost in tokens, "
            "time and money shows up here.", icon=":material/bar_chart:",
        )
        st.page_link("views/chat.py", label="Start a chat", icon=":material/chat:")


def per_model_table(df: pd.DataFrame) -> pd.DataFrame:
    return (
        df.groupby("model", as_index=False)
        .agg(
            answers=("message_id", "size"), prompt_tokens=("prompt_tokens", "sum"),
            completion_tokens=("completion_tokens", "sum"), total_tokens=("total_tokens", "sum"),
            cost=("cost", "sum"), median_first_token_s=("time_to_first_token", "median"),
            median_tokens_per_s=("tokens_per_second", "median"),
        )
        .sort_values(["total_tokens", "model"], ascending=[False, True])
    )


def totals(df: pd.DataFrame, prices: dict) -> None:
    c1, c2, c3, c4, c5 = st.columns(5)
    c1.metric("Answers", f"{len(df):,}")
    c2.metric("Prompt tokens", f"{int(df['prompt_tokens'].sum()):,}")
    c3.metric("Completion tokens", f"{int(df['completion_tokens'].sum()):,}")
    c4.metric("Total tokens", f"{int(df['total_tokens'].sum()):,}")
    c5.metric("Estimated cost", format_cost(float(df["cost"].sum())))
    unpriced = sorted({m for m in df["model"] if m != UNKNOWN and price_for(m, prices) is None})
    if unpriced:
        st.caption(
            "No price known for " + ", ".join(unpriced) + ": counted as free. Add their prices in Settings."
        )


def per_day_charts(df: pd.DataFrame) -> None:
    per_day = df.groupby(["day", "model"], as_index=False)[["total_tokens", "cost"]].sum()
    per_day["day"] = pd.to_datetime(per_day["day"])
    left, right = st.columns(2)
    left.markdown("**Tokens per day**")
    left.bar_chart(per_day, x="day", y="total_tokens", color="model", x_label="day", y_label="tokens")
    right.markdown("**Estimated cost per day ($)**")
    right.bar_chart(per_day, x="day", y="cost", color="model", x_label="day", y_label="US dollars")


def per_model_charts(table: pd.DataFrame) -> None:
    left, right = st.columns(2)
    left.markdown("**Tokens per model**")
    left.bar_chart(table, x="model", y=["prompt_tokens", "completion_tokens"], x_label="model", y_label="tokens",
                   horizontal=True)
    right.markdown("**Estimated cost per model ($)**")
    right.bar_chart(table, x="model", y="cost", x_label="model", y_label="US dollars", horizontal=True)


def distribution(data: pd.DataFrame, column: str, title: str) -> alt.LayerChart:
    """A box per model (middle half, median, min-max whiskers) with every answer as a dot."""
    base = alt.Chart(data).encode(
        x=alt.X("model:N", title="model"), y=alt.Y(f"{column}:Q", title=title),
        color=alt.Color("model:N", legend=None),
    )
    return base.mark_boxplot(extent="min-max", size=40) + base.mark_circle(size=30, opacity=0.5)


def speed_charts(df: pd.DataFrame) -> None:
    timing = df.dropna(subset=["time_to_first_token"])
    speed = df.dropna(subset=["tokens_per_second"])
    if timing.empty and speed.empty:
        return
    st.subheader("Speed per model")
    st.caption("Each dot is one answer; each box spans the middle half of a model's answers, the line is the median.")
    left, right = st.columns(2)
    if not timing.empty:
        left.markdown("**Time to first token (seconds)**")
        left.altair_chart(distribution(timing, "time_to_first_token", "seconds"), width="stretch")
    if not speed.empty:
        right.markdown("**Speed (tokens per second)**")
        right.altair_chart(distribution(speed, "tokens_per_second", "tokens/s"), width="stretch")


def busiest(df: pd.DataFrame) -> None:
    st.subheader("Busiest conversations")
    table = (
        df.groupby(["conversation_id", "conversation_title"], as_index=False)
        .agg(answers=("message_id", "size"), total_tokens=("total_tokens", "sum"), cost=("cost", "sum"))
        .sort_values(["total_tokens", "answers"], ascending=False)
        .head(10)
        .drop(columns=["conversation_id"])
        .rename(columns={"conversation_title": "conversation"})
    )
    st.dataframe(table, hide_index=True, width="stretch",
                 column_config=LABELS)


def main() -> None:
    state.init()
    st.title("Usage")
    st.caption("Tokens, speed and estimated cost of every answer in your history.")
    start, end = pick_range()
    store = services.store()
    prices = store.get_prices()
    rows = usage_rows(store, services.owner(), start, end, prices=prices) if start else []
    if not rows:
        empty_state(any_history=bool(start) and bool(usage_rows(store, services.owner(), prices=prices)))
        return
    df = pd.DataFrame(rows, columns=list(COLUMNS))
    df["model"] = df["model"].replace("", UNKNOWN)

    totals(df, prices)
    st.subheader("Per day")
    per_day_charts(df)
    st.subheader("Per model")
    table = per_model_table(df)
    per_model_charts(table)
    st.dataframe(
        table, hide_index=True, width="stretch",
        column_config=LABELS,
    )
    speed_charts(df)
    busiest(df)

    st.download_button(
        "Download the table (CSV)", df.to_csv(index=False), file_name=f"egp-playground-usage-{start}-{end}.csv",
        mime="text/csv", icon=":material/download:", key="usage-csv",
    )
    st.caption(f"{len(df):,} answers from {start} to {end}, one row each.")


main()
