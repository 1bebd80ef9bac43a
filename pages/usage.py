"""Usage: where the tokens and money went, per day and per model, from the history."""

from __future__ import annotations

from datetime import date, timedelta

import altair as alt
import pandas as pd
import streamlit as st

from egp_core.pricing import format_cost
from egp_core.store.usage import usage_rows
from ui import services, state


def main() -> None:
    state.init()
    st.title("Usage")
    today = date.today()
    picked = st.date_input("Dates", value=(today - timedelta(days=29), today), key="usage-range")
    start, end = (picked if isinstance(picked, tuple) and len(picked) == 2 else (picked, picked))
    store = services.store()
    rows = usage_rows(store, services.owner(), start, end, prices=store.get_prices())
    if not rows:
        st.info(
            "No answers in this date range yet. Chat or compare models, and what they cost "
            "in tokens, time and money shows up here.", icon="📊",
        )
        return
    df = pd.DataFrame(rows)
    for col in ("prompt_tokens", "completion_tokens", "total_tokens"):
        df[col] = df[col].fillna(0).astype(int)
    df["cost"] = df["cost"].fillna(0.0)

    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Answers", f"{len(df):,}")
    c2.metric("Total tokens", f"{int(df['total_tokens'].sum()):,}")
    c3.metric("Completion tokens", f"{int(df['completion_tokens'].sum()):,}")
    c4.metric("Estimated cost", format_cost(float(df["cost"].sum())))

    per_day = df.groupby(["day", "model"], as_index=False)[["total_tokens", "cost"]].sum()
    st.subheader("Tokens per day")
    st.bar_chart(per_day, x="day", y="total_tokens", color="model")
    st.subheader("Estimated cost per day")
    st.bar_chart(per_day, x="day", y="cost", color="model")

    per_model = df.groupby("model", as_index=False).agg(
        answers=("model", "size"), total_tokens=("total_tokens", "sum"), cost=("cost", "sum"),
    )
    st.subheader("Per model")
    st.dataframe(per_model, hide_index=True, use_container_width=True)

    timing = df.dropna(subset=["time_to_first_token"])
    if not timing.empty:
        st.subheader("Time to first token (s) and speed (tokens/s) per model")
        left, right = st.columns(2)
        left.altair_chart(
            alt.Chart(timing).mark_boxplot().encode(x="model:N", y=alt.Y("time_to_first_token:Q", title="seconds")),
            use_container_width=True,
        )
        speed = df.dropna(subset=["tokens_per_second"])
        right.altair_chart(
            alt.Chart(speed).mark_boxplot().encode(x="model:N", y=alt.Y("tokens_per_second:Q", title="tokens/s")),
            use_container_width=True,
        )

    st.subheader("Busiest conversations")
    busiest = (
        df.groupby(["conversation_id", "conversation_title"], as_index=False)
        .agg(answers=("model", "size"), total_tokens=("total_tokens", "sum"), cost=("cost", "sum"))
        .sort_values("total_tokens", ascending=False)
        .head(10)
    )
    st.dataframe(busiest.drop(columns=["conversation_id"]).rename(columns={"conversation_title": "conversation"}), hide_index=True, use_container_width=True)

    st.download_button(
        "Download the table (CSV)", df.to_csv(index=False), file_name="egp-playground-usage.csv",
        mime="text/csv", icon="⬇️",
    )


main()
