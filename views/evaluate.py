"""Evaluate: one prompt over a whole dataset, on 1-4 contestants, graded, with a verdict in one sentence.

Set-up (dataset, template, columns, contestants, graders, estimate) on one
page; a run executes in background threads of the app process (egp_core's
runner) and this page only watches the store, so a refresh, a second tab or
another replica shows the same progress. ?run=<id> reopens a run;
?eval_share=<token> opens a read-only copy.
"""

from __future__ import annotations

import difflib
import json
import random
import re

import altair as alt
import pandas as pd
import streamlit as st

from egp_core.errors import error_from_dict
from egp_core.evaluate import graders, summary
from egp_core.evaluate.datasets import (
    MAX_BYTES,
    MAX_ROWS,
    Dataset,
    DatasetError,
    guess_expected_column,
    map_columns,
    read_file,
    read_pasted,
)
from egp_core.evaluate.export import results_csv, results_json, row_to_conversation, script
from egp_core.evaluate.records import Records
from egp_core.evaluate.runner import (
    MAX_CONTESTANTS,
    MAX_REPEATS,
    Contestant,
    RunConfig,
    RunnerRegistry,
    check_plan,
    client_factory_for,
    estimate,
    speeds_from_history,
    start_run,
)
from egp_core.pricing import format_cost
from egp_core.templates import TemplateError, variables
from ui import services, sidebar, state

QUERY, SHARE = "run", "eval_share"
PAGE_SIZE = 25
LETTERS = "ABCD"
NONE = "(no column)"
TYPED = "The template typed above"
DEFAULT_TEMPLATE = "Answer in one short sentence.\n\n{{question}}"


@st.cache_resource(show_spinner=False)
def runners() -> RunnerRegistry:
    return RunnerRegistry()


def records() -> Records:
    return Records(services.store())


@st.cache_resource(max_entries=4, show_spinner=False)  # shared, never copied: datasets are not changed
def saved_dataset(dataset_id: str) -> Dataset | None:
    return records().get_dataset(dataset_id)


def open_run(run_id: str | None) -> None:
    st.session_state[state.EVAL_RUN] = run_id
    if run_id:
        st.query_params[QUERY] = run_id
    elif QUERY in st.query_params:
        del st.query_params[QUERY]


# ----- set-up ---------------------------------------------------------------------------------------


def choose_dataset() -> Dataset | None:
    st.subheader("1. Dataset", anchor=False)
    upload, paste, saved = st.tabs(["Upload a file", "Paste a table", "Saved datasets"])
    with upload:
        file = st.file_uploader(
            f"CSV, TSV, JSON Lines or Excel (.xlsx); up to {MAX_ROWS:,} rows and {MAX_BYTES // 2**20} MB",
            type=["csv", "tsv", "txt", "jsonl", "ndjson", "json", "xlsx"], key="eval-upload",
            max_upload_size=MAX_BYTES // 2**20)  # the box says the same limit, and the browser keeps to it
        if file is not None and st.session_state.get("eval-upload-id") != file.file_id:
            keep(file.name, lambda: read_file(file.name, file.getvalue()))
            st.session_state["eval-upload-id"] = file.file_id
    with paste:
        text = st.text_area("Paste rows from a spreadsheet; the first line names the columns", key="eval-paste",
                            height=120)
        if st.button("Use this table", key="eval-paste-use", icon=":material/table:"):
            keep("Pasted table", lambda: read_pasted(text))
    with saved:
        found = records().list_datasets(services.owner())
        if not found:
            st.caption("Datasets you upload are saved here, one version per content.")
        for d in found[:10]:
            st.button(f"{d['name']} · {d['n_rows']:,} rows · version {d['content_hash'][:8]}", key=f"eval-ds-{d['id']}",
                      on_click=lambda i=d["id"]: st.session_state.update({state.EVAL_DATASET: i}))
    problem = st.session_state.get("eval-dataset-problem")
    if problem:
        st.error(problem, icon=":material/warning:")
    dataset_id = st.session_state.get(state.EVAL_DATASET)
    dataset = saved_dataset(dataset_id) if dataset_id else None
    if dataset is None:
        return None
    st.caption(f"**{dataset.name}**: {len(dataset):,} rows, {len(dataset.columns)} columns "
               f"(version {dataset.content_hash[:8]}). The first rows:")
    st.dataframe(pd.DataFrame(dataset.preview(10), columns=dataset.columns), hide_index=True, height=220)
    return dataset


def keep(name: str, read) -> None:
    """Read a dataset; save it when it is good, else say why (and keep nothing)."""
    try:
        dataset = read()
    except DatasetError as exc:
        st.session_state["eval-dataset-problem"] = f"{name}: {exc.message}"
        return
    st.session_state["eval-dataset-problem"] = None
    st.session_state[state.EVAL_DATASET] = records().save_dataset(services.owner(), dataset)


def library_versions() -> dict[str, dict]:
    """Prompt versions from the library: "name v3" -> {"template", "system_prompt", "ref"}."""
    try:
        from egp_core.store.prompts import PromptLibrary
    except ImportError:  # an older store without the library
        return {}
    library = PromptLibrary(services.store())
    out: dict[str, dict] = {}
    for prompt in library.list(services.owner())[:50]:
        for v in library.versions(prompt.id, services.owner())[:10]:
            label = f"{v.content.name} v{v.version}"
            out[label] = {"template": v.content.template, "system_prompt": v.content.system_prompt or "",
                          "ref": {"prompt_id": prompt.id, "version": v.version, "name": v.content.name}}
    return out


def choose_template(dataset: Dataset) -> tuple[str, dict[str, dict]]:
    st.subheader("2. Prompt template", anchor=False)
    first = next((c for c in dataset.columns if c.isidentifier()), None)
    st.session_state.setdefault("eval-template", DEFAULT_TEMPLATE if first in (None, "question")
                                else DEFAULT_TEMPLATE.replace("question", first))
    library = library_versions()
    source = st.radio("Where the prompt comes from", ["Type it here", "From the prompt library"], horizontal=True,
                      key="eval-template-source", disabled=not library,
                      help=None if library else "Save a prompt in the prompt library to use it here.")
    if source == "From the prompt library" and library:
        chosen = st.selectbox("Prompt version", list(library), key="eval-library-version")
        st.code(library[chosen]["template"], language=None, wrap_lines=True)
        template = library[chosen]["template"]
        st.session_state["eval-template-ref"] = chosen
    else:
        template = st.text_area("Write {{column_name}} where a row's value goes; {{name|default}} for a default.",
                                key="eval-template", height=120)
        st.session_state["eval-template-ref"] = None
    return template, library


def template_variables(templates: list[str]) -> list[str]:
    names: list[str] = []
    for t in templates:
        try:
            for v in variables(t):
                if v.name not in names:
                    names.append(v.name)
        except TemplateError:
            continue
    return names


def choose_columns(dataset: Dataset, names: list[str]) -> tuple[dict[str, str | None], str | None]:
    st.subheader("3. Columns", anchor=False)
    guessed = map_columns(names, dataset.columns)
    mapping: dict[str, str | None] = {}
    cols = st.columns(max(1, min(4, len(names) + 1)))
    options = [NONE, *dataset.columns]
    for i, name in enumerate(names):
        key = f"eval-map-{name}"
        if st.session_state.get(key) not in options:
            st.session_state[key] = guessed.get(name) or NONE
        picked = cols[i % len(cols)].selectbox(f"{{{{{name}}}}} comes from", options, key=key)
        mapping[name] = None if picked == NONE else picked
    key = "eval-expected"
    if st.session_state.get(key) not in options:
        st.session_state[key] = guess_expected_column(dataset.columns, [c for c in mapping.values() if c]) or NONE
    expected = cols[len(names) % len(cols)].selectbox("Expected answer (optional)", options, key=key)
    return mapping, None if expected == NONE else expected


def choose_contestants(template: str, library: dict[str, dict]) -> list[Contestant]:
    st.subheader("4. Contestants", anchor=False)
    n = st.segmented_control("How many", list(range(1, MAX_CONTESTANTS + 1)), key="eval-n", default=2,
                             selection_mode="single") or 1
    cols = st.columns(n)
    out = []
    typed_ref = st.session_state.get("eval-template-ref")
    for i in range(n):
        prefix = f"eval{i}-"
        with cols[i].container(border=True):
            st.markdown(f"**{LETTERS[i]}**")
            conn, model, _ = sidebar.connection_and_model(st.container(), key_prefix=prefix)
            temperature = st.slider("Temperature", 0.0, 1.0, 0.2, 0.05, key=prefix + "temperature")
            max_tokens = st.number_input("Max tokens", 1, 32000, 256, 64, key=prefix + "max_tokens")
            at_once = st.number_input("Requests at a time", 1, 32, None, key=prefix + "concurrency",
                                      placeholder="4 (1 for the built-in model)",
                                      help="How many of this connection's requests run at once. A rate limit "
                                           "lowers it by itself during the run.")
            prompt_choice = st.selectbox("Prompt", [TYPED, *library], key=prefix + "prompt",
                                         help="Compare prompt versions on one model: give each contestant its own.")
        if conn is None or model is None:
            continue
        chosen = library.get(prompt_choice) if prompt_choice != TYPED else (library.get(typed_ref) if typed_ref else None)
        api = "chat" if conn.kind == "openai" else sidebar.default_api(conn)
        out.append(Contestant(
            connection_id=conn.id, connection_name=conn.name, kind=conn.kind, base_url=conn.base_url,
            account_id=conn.account_id, model=model, api=api, label=LETTERS[i],
            parameters={"temperature": temperature, "max_tokens": int(max_tokens)},
            template=chosen["template"] if chosen else template,
            system_prompt=chosen["system_prompt"] if chosen else "", prompt_ref=chosen["ref"] if chosen else None,
            concurrency=int(at_once) if at_once else None))
    return out


def choose_graders(has_expected: bool) -> list[dict]:
    st.subheader("5. Graders", anchor=False)
    default = ["contains"] if has_expected else []
    kinds = st.multiselect("How answers are graded (several at once)", list(graders.KINDS),
                           format_func=graders.KINDS.get, default=default, key="eval-graders")
    specs: list[dict] = []
    for kind in kinds:
        spec: dict = {"kind": kind}
        if kind in ("contains", "equals"):
            c1, c2 = st.columns(2)
            spec["ignore_case"] = c1.checkbox("Ignore case", value=kind == "contains", key=f"eval-{kind}-case")
            spec["ignore_whitespace"] = c2.checkbox("Ignore spaces and line breaks", value=kind == "contains",
                                                    key=f"eval-{kind}-space")
        elif kind == "regex":
            spec["pattern"] = st.text_input("Regular expression the answer must match", key="eval-regex")
        elif kind == "json_schema":
            spec["schema"] = st.text_area("JSON schema", '{"type": "object"}', key="eval-schema")
        elif kind == "number":
            spec["tolerance"] = st.number_input("Tolerance (±)", 0.0, value=0.01, format="%.4f", key="eval-tolerance")
        elif kind == "judge":
            spec.update(judge_settings())
        specs.append(spec)
    return specs


def judge_settings() -> dict:
    with st.expander("The judge", expanded=True, icon=":material/gavel:"):
        conn, model, _ = sidebar.connection_and_model(st.container(), key_prefix="evaljudge-")
        rubric = st.text_area("Rubric, in plain words", graders.DEFAULT_RUBRIC, key="eval-rubric")
        prompt = st.text_area("What the judge is asked (editable; {{question}}, {{answer}}, {{expected}}, {{rubric}} "
                              "are filled in)", graders.DEFAULT_JUDGE_PROMPT, height=260, key="eval-judge-prompt")
        pass_score = st.slider("Passes from score", 1, 5, graders.DEFAULT_PASS_SCORE, key="eval-pass-score")
    if conn is None:
        return {"model": ""}
    return {"connection_id": conn.id, "connection_kind": conn.kind, "connection_name": conn.name,
            "base_url": conn.base_url, "account_id": conn.account_id, "model": model or "",
            "api": "chat" if conn.kind == "openai" else sidebar.default_api(conn), "rubric": rubric, "prompt": prompt,
            "pass_score": pass_score}


@st.cache_data(ttl=120, show_spinner=False)
def recent_speeds(owner: str) -> dict[str, dict[str, float]]:
    return speeds_from_history(services.store(), owner)


def setup() -> None:
    dataset = choose_dataset()
    if dataset is None:
        st.info("Start with a dataset: upload a file or paste a table. Each row becomes one prompt.",
                icon=":material/upload_file:")
        return
    template, library = choose_template(dataset)
    contestants = choose_contestants(template, library)
    names = template_variables([template] + [c.template for c in contestants] + [c.system_prompt for c in contestants])
    mapping, expected = choose_columns(dataset, names)
    specs = choose_graders(expected is not None)
    st.subheader("6. Run", anchor=False)
    c1, c2 = st.columns(2)
    repeats = c1.number_input("Repeats per row (to see how stable answers are)", 1, MAX_REPEATS, 1, key="eval-repeats")
    c2.toggle("Blind human review (names hidden, order shuffled per row)", key="eval-blind")
    if not contestants:
        st.warning("Pick a connection and a model for at least one contestant.", icon=":material/warning:")
        return
    dataset_id = st.session_state[state.EVAL_DATASET]
    config = RunConfig(dataset_id=dataset_id, mapping=mapping, contestants=contestants, expected_column=expected,
                       graders=specs, repeats=int(repeats))
    problems = check_plan(config, dataset)
    est = estimate(config, dataset, services.store().get_prices(), recent_speeds(services.owner())) if not problems else None
    if est is not None:
        m1, m2, m3, m4 = st.columns(4)
        m1.metric("Requests", f"{est.requests:,}")
        m2.metric("Tokens (estimate)", f"{est.prompt_tokens + est.completion_tokens:,}")
        m3.metric("Cost (estimate)", format_cost(est.cost) if est.cost is not None else "unknown")
        m4.metric("Time (estimate)", duration(est.seconds))
        if est.unpriced:
            st.caption("No price known for " + ", ".join(est.unpriced) + ": add it in Settings for a cost estimate.")
    confirmed = True
    if est is not None and est.needs_confirmation:
        confirmed = st.checkbox(f"Yes, send {est.requests:,} requests"
                                + (f" (about {format_cost(est.cost)})" if est.cost else "")
                                + f", about {duration(est.seconds)}.", key="eval-confirm")
    if st.button("Run the evaluation", type="primary", icon=":material/play_arrow:", key="eval-run",
                 disabled=not confirmed):
        if problems:
            for p in problems:
                st.error(p, icon=":material/warning:")
            return
        blind = bool(st.session_state.get("eval-blind"))
        title = f"{dataset.name}: " + (f"blind review of {len(contestants)}" if blind
                                       else " vs ".join(c.model for c in contestants))
        config_dict = config.to_dict() | {"blind": blind}
        run_id = records().create_run(services.owner(), title, dataset_id, config_dict, config.total(len(dataset)))
        start(run_id)
        open_run(run_id)
        st.rerun()
    elif problems:
        st.caption("Before it can run: " + " ".join(problems))


def duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


# ----- a run -------------------------------------------------------------------------------------------


def start(run_id: str) -> bool:
    """Start (or resume) the run in this app process; False when another replica runs it."""
    runner = start_run(records(), run_id, client_factory_for(services.connections()), registry=runners())
    return runner is not None


def stop(run_id: str) -> None:
    records().request_stop(run_id)
    runner = runners().get(run_id)
    if runner is not None:
        runner.stop()


def retry_failed(run_id: str) -> None:
    records().delete_failed(run_id)
    start(run_id)


@st.fragment(run_every=1.0)
def progress(run_id: str, letters: list[str], names: list[str]) -> None:
    """Redrawn once a second while the run goes on; the whole page redraws when it ends."""
    recs = records()
    run = recs.get_run(run_id)
    if run is None:
        return
    if run.status != "running" or run.interrupted():
        st.rerun(scope="app")
    p = recs.progress(run_id)
    st.progress(min(1.0, p["done"] / max(1, run.total)), text=f"{p['done']:,} of {run.total:,} done")
    eta = None
    if run.started_at is not None:
        elapsed = (pd.Timestamp.now(tz="UTC") - pd.Timestamp(run.started_at)).total_seconds()
        new = p["done"] - run.done_at_start
        if new > 0 and elapsed > 0:
            eta = (run.total - p["done"]) * elapsed / new
    st.caption(f"Errors: {p['errors']:,} · Tokens: {p['prompt_tokens'] + p['completion_tokens']:,} · "
               f"Cost so far: {format_cost(p['cost'])} · Time left: {duration(eta) if eta is not None else '…'}")
    if run.notice:
        st.info(masked(run.notice, RunConfig.from_dict(run.config), names), icon=":material/speed:")
    latest = recs.latest(run_id)
    if latest:
        st.caption("Just finished:")
        st.dataframe(pd.DataFrame([{
            "Row": r["row_index"] + 1, "Contestant": letters[r["contestant"]],
            "Passed": {True: "✅", False: "❌", None: "—"}[r["passed"]],
            "Answer": cell(r["output"], 120) if r["status"] == "ok" else "⚠ failed"} for r in latest]),
            hide_index=True, width="stretch")


def hidden(run, read_only: bool) -> bool:
    """A blind run whose reviewer has not revealed the names yet (a read-only copy shows them)."""
    return bool(run.config.get("blind")) and not read_only and not st.session_state.get(f"eval-reveal-{run.id}")


def letters_of(run, config: RunConfig, hide: bool) -> list[str]:
    """Each contestant's letter on the page; hidden, the letters are shuffled (per run), so "A" says nothing."""
    letters = list(LETTERS[: len(config.contestants)])
    if hide:
        random.Random(f"letters-{run.id}").shuffle(letters)
    return letters


def names_of(config: RunConfig, letters: list[str], hide: bool) -> list[str]:
    if hide:
        return [f"Contestant {letter}" for letter in letters]
    return [c.name() for c in config.contestants]


def masked(text: str, config: RunConfig, names: list[str]) -> str:
    """A text from the run (a notice, a server's error, a grader's note) with the contestants' names as the
    page shows them: while they are hidden, their models' names are hidden too (a server's error may
    name its model), and their connections' when they differ (a rate-limit notice names its server)."""
    hidden = []
    connections = {c.connection_name or c.connection_id for c in config.contestants}
    for c, name in zip(config.contestants, names, strict=False):
        text = text.replace(c.name(), name)
        if name != c.name():
            hidden += [c.model] + ([c.connection_name or c.connection_id] if len(connections) > 1 else [])
    for word in sorted({w for w in hidden if w}, key=len, reverse=True):  # "gpt-4o" before "gpt-4"
        text = re.sub(rf"(?<!\w){re.escape(word)}(?!\w)", "(hidden)", text, flags=re.IGNORECASE)
    return text


def show_summary(run, config: RunConfig, light: list[dict], names: list[str]) -> None:
    outputs = records().outputs(run.id) if config.repeats > 1 else None
    rows = sorted(summary.contestants(light, names, outputs), key=lambda s: s.name)
    table = pd.DataFrame([{
        "Contestant": s.name,
        "Pass rate": f"{s.pass_rate:.0%} ({s.low:.0%}–{s.high:.0%})" if s.pass_rate is not None else "—",
        "Passed": f"{s.passed:,} of {s.graded:,}", "Errors": s.errors,
        "Judge (1–5)": f"{s.judge_mean:.2f}" if s.judge_mean is not None else "—",
        "p50 latency": f"{s.p50:.2f} s" if s.p50 is not None else "—",
        "p95 latency": f"{s.p95:.2f} s" if s.p95 is not None else "—",
        "Tokens": f"{s.tokens:,}", "Cost": format_cost(s.cost),
        "People (1–5)": f"{s.review_mean:.1f} ({s.reviews:,})" if s.review_mean is not None else "—",
        **({"Repeats agree": f"{s.agreement:.0%}" if s.agreement is not None else "—"} if outputs is not None else {}),
    } for s in rows])
    st.dataframe(table, hide_index=True, width="stretch")
    st.caption("Pass rate with its 95% range (Wilson interval): the true rate is very likely inside it."
               + (" \"Repeats agree\": how often the answers to the same row are the same." if outputs else ""))
    if any(r["passed"] is not None for r in light):
        for v in summary.verdicts(light, names):
            st.markdown(f":material/balance: **{v.sentence}**")
    else:
        st.caption("No answer has a pass or fail grade yet (no rule or judge grades this run), so there is no "
                   "verdict. Open the rows below to review the answers yourself.")
    graded = [s for s in rows if s.pass_rate is not None]
    if graded:
        data = pd.DataFrame([{"contestant": s.name, "pass rate": s.pass_rate, "low": s.low, "high": s.high}
                             for s in graded])
        base = alt.Chart(data).encode(y=alt.Y("contestant:N", title=None))
        chart = (base.mark_bar().encode(x=alt.X("pass rate:Q", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%")),
                                        color=alt.Color("contestant:N", legend=None))
                 + base.mark_rule(strokeWidth=2).encode(x="low:Q", x2="high:Q"))
        st.altair_chart(chart.properties(height=60 + 40 * len(graded)), width="stretch")


def cell(text: str, limit: int = 160) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def show_table(run, config: RunConfig, dataset: Dataset, light: list[dict], letters: list[str], names: list[str]
               ) -> list[int]:
    which = st.segmented_control("Show", summary.FILTERS, default=summary.FILTERS[0], key=f"eval-filter-{run.id}",
                                 selection_mode="single") or summary.FILTERS[0]
    rows = summary.filtered_rows(light, which)
    pages = max(1, -(-len(rows) // PAGE_SIZE))
    page = st.number_input(f"Page (of {pages:,}; {len(rows):,} rows)", 1, pages, 1, key=f"eval-page-{run.id}-{which}")
    shown = rows[(page - 1) * PAGE_SIZE: page * PAGE_SIZE]
    results = sorted(records().results_for_rows(run.id, shown), key=lambda r: letters[r["contestant"]])
    first_var = next((col for col in config.mapping.values() if col), dataset.columns[0])
    table = []
    for row in shown:
        entry = {"Row": row + 1, first_var: cell(dataset.row(row).get(first_var, ""), 80)}
        if config.expected_column:
            entry["Expected"] = cell(dataset.row(row)[config.expected_column], 60)
        for r in results:
            if r["row_index"] != row or r["repeat_index"] != 0:
                continue
            label = letters[r["contestant"]]
            if r["status"] == "error":
                err = error_from_dict(r["error"])
                entry[label] = "⚠ " + cell(masked(err.user_message, config, names) if err else "failed", 100)
            else:
                entry[label] = cell(r["output"])
            entry[f"{label} ✓"] = {True: "✅", False: "❌", None: "—"}[r["passed"]]
            entry[f"{label} s"] = round(r["latency"], 2) if r["latency"] is not None else None
        table.append(entry)
    st.dataframe(pd.DataFrame(table), hide_index=True, width="stretch")
    return shown


def show_row(run, config: RunConfig, dataset: Dataset, shown: list[int], names: list[str], read_only: bool) -> None:
    if not shown:
        return
    row = st.selectbox("Open a row", shown, format_func=lambda r: f"Row {r + 1}", key=f"eval-open-{run.id}")
    results = [r for r in records().results_for_rows(run.id, [row]) if r["repeat_index"] == 0]
    blind = hidden(run, read_only)
    scale = "thumbs"
    if not read_only:
        scale = st.segmented_control("Your review", ["thumbs", "stars"], default="thumbs", key=f"eval-scale-{run.id}",
                                     format_func={"thumbs": "👍 / 👎", "stars": "1–5"}.get) or "thumbs"
    if blind:
        random.Random(f"{run.id}-{row}").shuffle(results)
    st.caption("Input: " + cell(json.dumps(dataset.row(row), ensure_ascii=False), 400))
    cols = st.columns(max(1, len(results)))
    for i, (col, r) in enumerate(zip(cols, results, strict=False)):
        c = config.contestants[r["contestant"]]
        with col:
            st.markdown(f"**Answer {i + 1}**" if blind else f"**{c.name()}**")
            if r["status"] == "error":
                err = error_from_dict(r["error"])
                st.error(masked(err.user_message, config, names) if err else "This request failed.",
                         icon=":material/warning:")
            else:
                st.text(r["output"] or "(no text)")
            for spec, g in zip(config.graders, r["grades"] or [], strict=False):
                mark = {True: "✅", False: "❌", None: "—"}[g["passed"]]
                score = f" {g['score']:g}/5" if g.get("score") is not None else ""
                st.caption(f"{mark} {graders.KINDS.get(spec['kind'])}{score} {masked(g.get('note') or '', config, names)}")
            if not read_only:
                review(run.id, r, scale)
                if not blind and st.button("Open in chat", key=f"eval-chat-{run.id}-{row}-{r['contestant']}",
                             icon=":material/chat:"):
                    open_in_chat(c, dataset, row, config, r["output"])
    ok = [r for r in results if r["status"] == "ok"]
    if len(ok) >= 2:
        a, b = ok[0], ok[1]
        diff = "\n".join(difflib.unified_diff(a["output"].splitlines(), b["output"].splitlines(),
                                              "Answer 1" if blind else LETTERS[a["contestant"]],
                                              "Answer 2" if blind else LETTERS[b["contestant"]], lineterm=""))
        with st.expander("Differences between the first two answers", icon=":material/difference:"):
            st.code(diff or "The two answers are the same.", language="diff")


def review(run_id: str, r: dict, scale: str) -> None:
    """👍/👎 or 1-5 stars, and a note: saved as soon as they change (👍 counts 5, 👎 1)."""
    key = f"eval-review-{run_id}-{r['row_index']}-{r['contestant']}"
    saved = r.get("review_score")
    where = (run_id, r["row_index"], r["contestant"], r["repeat_index"])
    if scale == "thumbs":
        default = {5: 1, 1: 0}.get(saved)
    else:
        default = saved - 1 if saved else None
    st.feedback(scale, key=f"{key}-{scale}", default=default, on_change=save_score, args=(where, f"{key}-{scale}", scale))
    st.text_input("Note", value=r.get("review_note") or "", key=f"{key}-note", label_visibility="collapsed",
                  placeholder="A note on this answer", on_change=save_note, args=(where, f"{key}-note"))


def save_score(where: tuple, key: str, scale: str) -> None:
    value = st.session_state.get(key)
    score = None if value is None else ((5 if value == 1 else 1) if scale == "thumbs" else value + 1)
    records().set_review(*where, score=score)


def save_note(where: tuple, key: str) -> None:
    records().set_review(*where, note=st.session_state.get(key) or None)


def open_in_chat(c: Contestant, dataset: Dataset, row: int, config: RunConfig, answer: str) -> None:
    conv = row_to_conversation(services.store(), services.owner(), c, dataset, row, config.mapping, answer)
    st.switch_page("views/chat.py", query_params={"c": conv})


def show_run(run_id: str, read_only: bool = False) -> None:
    recs = records()
    run = recs.get_run(run_id) if read_only else recs.get_run(run_id, owner=services.owner())
    if run is None:
        st.error("That evaluation no longer exists.", icon=":material/warning:")
        return
    config = RunConfig.from_dict(run.config)
    dataset = saved_dataset(config.dataset_id)
    if dataset is None:
        st.error("The dataset of this evaluation is gone.", icon=":material/warning:")
        return
    st.subheader(run.title, anchor=False)
    hide = hidden(run, read_only)
    letters = letters_of(run, config, hide)
    names = names_of(config, letters, hide)
    if hide:
        st.caption("Blind review: the contestants' names are hidden, their letters shuffled, and each row's "
                   "answers come in their own order. Reveal the names when you are done reviewing.")
        st.button("Reveal the names", key=f"eval-reveal-{run.id}", icon=":material/visibility:",
                  on_click=lambda: st.session_state.update({f"eval-reveal-{run.id}": True}))
    live = runners().get(run_id)
    running = run.status == "running" and not run.interrupted()
    p = recs.progress(run_id)
    if not read_only:
        c1, c2, c3 = st.columns(3)
        if running:
            c1.button("Stop", icon=":material/stop_circle:", on_click=stop, args=(run_id,), key="eval-stop")
        elif p["done"] < run.total:
            why = "interrupted (the app restarted)" if run.status == "running" else "stopped"
            st.warning(f"This run was {why} with {run.total - p['done']:,} requests still to send.",
                       icon=":material/pause_circle:")
            c1.button("Resume", icon=":material/play_arrow:", on_click=start, args=(run_id,), key="eval-resume",
                      type="primary")
        if not running and p["errors"]:
            c2.button(f"Retry failed rows ({p['errors']:,})", icon=":material/refresh:", on_click=retry_failed,
                      args=(run_id,), key="eval-retry")
        c3.button("Share a read-only link", icon=":material/link:", key="eval-share",
                  on_click=lambda: recs.share(run_id, services.owner()), disabled=bool(run.share_token))
        if run.share_token:
            st.code(f"?{SHARE}={run.share_token}", language=None)
            st.caption("Add this to the app's address: anyone with it sees these results, read-only.")
    if running:
        progress(run_id, letters, names)
        if live is None:
            st.caption("Running on another replica of the app; this page follows it.")
    elif run.notice:
        st.info(masked(run.notice, config, names), icon=":material/info:")
    light = recs.light_results(run_id)
    if not light:
        return
    show_summary(run, config, light, names)
    st.markdown("**Results**")
    shown = show_table(run, config, dataset, light, letters, names)
    show_row(run, config, dataset, shown, names, read_only)
    if hide:
        st.caption("Exports, View code and Open in chat name the models: they appear when the names are revealed.")
        return
    c1, c2 = st.columns(2)
    name = f"evaluation-{run_id[:8]}"
    c1.download_button("Export CSV", lambda: results_csv(recs, run), file_name=f"{name}.csv", mime="text/csv",
                       key="eval-csv", icon=":material/download:")
    c2.download_button("Export JSON", lambda: results_json(recs, run), file_name=f"{name}.json",
                       mime="application/json", key="eval-json", icon=":material/data_object:")
    if not read_only:
        with st.expander("View code", icon=":material/code:"):
            st.caption("This run as a Python script with the official SDK. Save the dataset as dataset.csv beside it; "
                       "the key is read from $EGP_API_KEY.")
            st.download_button("Download dataset.csv", dataset_csv(dataset), file_name="dataset.csv", key="eval-ds-csv")
            st.code(script(config, dataset), language="python")


def dataset_csv(dataset: Dataset) -> str:
    from egp_core.evaluate.datasets import to_csv

    return to_csv(dataset.columns, dataset.rows)


def history() -> None:
    found = records().list_runs(services.owner(), limit=20)
    with st.sidebar.expander("Earlier evaluations", icon=":material/history:", expanded=True):
        st.button("New evaluation", key="eval-new", on_click=open_run, args=(None,), icon=":material/add:",
                  use_container_width=True)
        if not found:
            st.caption("Your evaluations will appear here.")
        current = st.session_state.get(state.EVAL_RUN)
        for run in found:
            status = "interrupted" if run.interrupted() else run.status
            st.button(f"{run.title[:60]} · {status}", key=f"eval-open-run-{run.id}", on_click=open_run, args=(run.id,),
                      type="primary" if run.id == current else "secondary", use_container_width=True)


def main() -> None:
    state.init()
    if SHARE in st.query_params:  # a share link, even a blank one (it then says it is not valid)
        run = records().run_for_share((st.query_params.get(SHARE) or "").strip())
        if run is None:
            st.error("This share link is not valid (or the evaluation was deleted).", icon=":material/link:")
            return
        st.title("Evaluation")
        st.caption("A read-only copy shared with you.")
        show_run(run.id, read_only=True)
        return
    wanted = st.query_params.get(QUERY)
    if wanted and wanted != st.session_state.get(state.EVAL_RUN):
        open_run(wanted if records().get_run(wanted, owner=services.owner()) else None)
    history()
    st.title("Evaluate")
    st.caption("Run one prompt over a whole dataset on up to four models, grade the answers, and see which is "
               "better, by how much, and whether the difference is real.")
    run_id = st.session_state.get(state.EVAL_RUN)
    if run_id:
        show_run(run_id)
    else:
        setup()


main()
