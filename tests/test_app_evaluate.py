"""The Evaluate page under AppTest: paste a dataset, map, estimate, run two contestants on two fake EGP
servers, read the verdict, filter failures, open a row, share it read-only; and the plain messages
for bad input. (AppTest has no file upload: the browser test uploads a real file.)"""

from __future__ import annotations

import json
import time

import pytest
from streamlit.testing.v1 import AppTest

from egp_core.connections import Connection
from egp_core.evaluate.records import Records
from egp_core.store import open_store
from tests.fake_egp import FakeEGP
from tests.plugins.apptest import APP, SECRET
from tests.test_app_history import AUTH

EVALUATE = "views/evaluate.py"
ROWS = 12
TABLE = "question\texpected\n" + "".join(f"Where is thing {i}?\tworld\n" for i in range(ROWS))


@pytest.fixture
def second_fake():
    with FakeEGP() as fake:
        yield fake.models(["other-model"]).reply(text="I do not know.")


def page(connections=()) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=90)
    at.session_state["session_connections"] = list(connections)
    at.run()
    at.switch_page(EVALUATE).run()
    assert not at.exception, at.exception
    return at


def paste(at: AppTest, text: str) -> None:
    at.text_area(key="eval-paste").set_value(text).run()
    at.button(key="eval-paste-use").click().run()
    assert not at.exception, at.exception


def texts(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption] + [e.value for e in at.error]
    parts += [i.value for i in at.info] + [w.value for w in at.warning]
    return "\n".join(str(p) for p in parts)


def records(tmp_path) -> Records:
    return Records(open_store(f"sqlite:///{tmp_path / 'history.db'}"))


def test_a_full_run_from_paste_to_verdict(app_env, second_fake, tmp_path):
    fake = app_env.reply(text="Hello world")
    other = Connection(id="session-other", name="Other server", kind="egp", base_url=second_fake.base_url,
                       api_key=SECRET, source="session")
    at = page([other])
    assert "Start with a dataset" in texts(at)
    paste(at, TABLE)
    assert f"{ROWS} rows, 2 columns" in texts(at)
    assert at.text_area(key="eval-template").value == "Answer in one short sentence.\n\n{{question}}"
    assert at.selectbox(key="eval-map-question").value == "question"
    assert at.selectbox(key="eval-expected").value == "expected"
    at.selectbox(key="eval1-connection_id").set_value("session-other").run()
    assert at.selectbox(key="eval1-model").value == "other-model"
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Requests"] == str(2 * ROWS)
    at.button(key="eval-run").click().run()
    assert not at.exception, at.exception

    recs = records(tmp_path)
    run = recs.list_runs("local")[0]
    deadline = time.monotonic() + 60
    while recs.get_run(run.id).status == "running" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert recs.get_run(run.id).status == "complete"
    at.run()
    assert not at.exception, at.exception
    shown = texts(at)
    assert ("A: fake-model passes 12 more of 12 rows than B: other-model; that difference is unlikely to be "
            "chance (p < 0.001).") in shown
    summary = at.dataframe[0].value
    assert list(summary["Pass rate"]) == ["100% (76%–100%)", "0% (0%–24%)"]
    assert {r.body["prompt"] for r in fake.requests if r.method == "POST"} == {f"Answer in one short sentence.\n\nWhere is thing {i}?"
                                                         for i in range(ROWS)}
    assert len([r for r in second_fake.requests if r.method == "POST"]) == ROWS
    assert at.query_params["run"] in (run.id, [run.id])

    at.segmented_control(key=f"eval-filter-{run.id}").set_value("Failures only").run()
    table = at.dataframe[1].value
    assert len(table) == ROWS and set(table["B ✓"]) == {"❌"} and set(table["A ✓"]) == {"✅"}
    assert "I do not know." in set(table["B"])
    texts_now = [t.value for t in at.text]
    assert "Hello world" in texts_now and "I do not know." in texts_now  # the opened row, side by side
    assert any("Contains the expected text" in c.value for c in at.caption)

    at.feedback(key=f"eval-review-{run.id}-0-1-thumbs").set_value(0).run()  # 👎 for B's answer to row 1
    assert not at.exception, at.exception
    assert recs.results_for_rows(run.id, [0])[1]["review_score"] == 1
    assert list(at.dataframe[0].value["People (1–5)"]) == ["—", "1.0 (1)"]

    at.button(key="eval-share").click().run()
    token = recs.get_run(run.id).share_token
    assert token and f"?eval_share={token}" in [c.value for c in at.code]
    shared = AppTest.from_file(APP, default_timeout=60)
    shared.query_params["eval_share"] = token
    shared.run()
    shared.switch_page(EVALUATE).run()
    assert not shared.exception, shared.exception
    assert "A read-only copy shared with you." in texts(shared)
    assert not [b for b in shared.button if b.key in ("eval-stop", "eval-resume", "eval-share")]
    assert "passes 12 more of 12 rows" in texts(shared)
    assert SECRET not in str(recs.get_run(run.id).config)

    stranger = AppTest.from_file(APP, default_timeout=60)  # team mode, not signed in: the link still opens
    stranger.secrets["auth"] = AUTH
    stranger.user = {"is_logged_in": False}
    stranger.query_params["eval_share"] = token
    stranger.run()
    assert not stranger.exception, stranger.exception
    assert "passes 12 more of 12 rows" in texts(stranger) and "Sign in" not in [b.label for b in stranger.button]


def test_bad_pastes_get_a_plain_message_and_nothing_is_saved(app_env, tmp_path):
    at = page()
    paste(at, "question\tQuestion\nq\tq2\n")
    assert 'Columns 1 and 2 are both called "Question"' in texts(at)
    paste(at, "question\t\tx\n1\t2\t3\n")
    assert "Column 2 has no name" in texts(at)
    paste(at, "question\n")
    assert "column names but no rows" in texts(at)
    assert records(tmp_path).list_datasets("local") == []
    assert "Start with a dataset" in texts(at)
    upload = at.get("file_uploader")[0].proto  # its box says the page's limit (not Streamlit's 200 MB)
    assert upload.max_upload_size_mb == 20 and "20 MB" in upload.label


def test_a_variable_with_no_column_stops_the_run_before_anything_is_saved(app_env, tmp_path):
    at = page()
    paste(at, TABLE)
    at.text_area(key="eval-template").set_value("{{question}} about {{topic}}").run()
    assert at.selectbox(key="eval-map-topic").value == "(no column)"
    at.button(key="eval-run").click().run()
    assert not at.exception, at.exception
    errors = [e.value for e in at.error]
    assert any("the variable {{topic}} has no column" in e for e in errors)
    assert records(tmp_path).list_runs("local") == []
    at.text_area(key="eval-template").set_value("{{question}} about {{topic|anything}}").run()
    assert not [e for e in at.error if "no column" in e.value]


def test_an_interrupted_run_resumes_here_and_a_row_opens_in_chat(app_env, tmp_path):
    from datetime import timedelta

    import sqlalchemy as sa

    from egp_core.evaluate.datasets import read_pasted
    from egp_core.evaluate.runner import Contestant, RunConfig
    from egp_core.store import schema as s

    fake = app_env.reply(text="Hello world")
    recs = records(tmp_path)
    data = read_pasted(TABLE)
    did = recs.save_dataset("local", data)
    c = Contestant(connection_id="env-egp", connection_name="EGP workspace", base_url=fake.base_url,
                   model="fake-model", template="{{question}}", label="A")
    config = RunConfig(dataset_id=did, mapping={"question": "question"}, contestants=[c], expected_column="expected",
                       graders=[{"kind": "contains"}])
    run_id = recs.create_run("local", "crashed run", did, config.to_dict(), config.total(ROWS))
    assert recs.claim(run_id, "a-replica-that-died")
    recs.add_results([{"run_id": run_id, "row_index": i, "contestant": 0, "repeat_index": 0, "status": "ok",
                       "output": "world", "passed": True} for i in range(4)])
    with recs.engine.begin() as conn:  # its last heartbeat was a minute ago
        conn.execute(sa.update(s.eval_runs).values(heartbeat_at=s.utcnow() - timedelta(minutes=1)))

    at = AppTest.from_file(APP, default_timeout=90)
    at.run()
    at.switch_page(EVALUATE)
    at.query_params["run"] = run_id
    at.run()
    assert not at.exception, at.exception
    assert f"This run was interrupted (the app restarted) with {ROWS - 4} requests still to send." in texts(at)
    at.button(key="eval-resume").click().run()
    deadline = time.monotonic() + 60
    while recs.get_run(run_id).status == "running" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert recs.get_run(run_id).status == "complete"
    assert sorted(r.body["prompt"] for r in fake.requests if r.method == "POST") == sorted(
        f"Where is thing {i}?" for i in range(4, ROWS))
    at.run()
    assert "interrupted" not in texts(at)

    at.button(key=f"eval-chat-{run_id}-0-0").click().run()
    assert not at.exception, at.exception
    (conv,) = open_store(f"sqlite:///{tmp_path / 'history.db'}").list_conversations("local")
    assert conv.title == "Row 1 of Pasted table"
    assert at.query_params["c"] in (conv.id, [conv.id])
    questions = [t.value for t in at.text] + [m.value for m in at.markdown]  # questions show as typed (st.text)
    assert "Where is thing 0?" in questions and "world" in [m.value for m in at.markdown]


def test_blind_review_hides_the_names_and_shuffles_each_row(app_env, tmp_path):
    from egp_core.evaluate.datasets import read_pasted
    from egp_core.evaluate.runner import Contestant, RunConfig

    recs = records(tmp_path)
    data = read_pasted(TABLE)
    did = recs.save_dataset("local", data)
    cs = [Contestant(connection_id=conn, connection_name=name, model=m, template="{{question}}", label=label)
          for m, conn, name, label in (("model-one", "env-egp", "EGP", "A"), ("model-two", "other", "Other server", "B"))]
    config = RunConfig(dataset_id=did, mapping={"question": "question"}, contestants=cs, graders=[{"kind": "json"}])
    run_id = recs.create_run("local", "blind run", did, config.to_dict() | {"blind": True}, config.total(ROWS))
    # a server's error and a judge's note may name the model; a given-up contestant's rows name it too
    failed = {(0, 1): "The model Model-Two does not exist on this account.",
              (1, 0): "Not sent: A: model-one failed on its first 5 requests (model-one is overloaded.)"}
    recs.add_results([{"run_id": run_id, "row_index": r, "contestant": c, "repeat_index": 0, "status": "ok",
                       "output": f"answer of {'AB'[c]} to {r}",
                       "grades": [{"passed": None, "note": f"The judge could not be asked: {cs[c].model} is busy."}]}
                      for r in range(ROWS) for c in range(2) if (r, c) not in failed])
    recs.add_results([{"run_id": run_id, "row_index": r, "contestant": c, "repeat_index": 0, "status": "error",
                       "output": "", "error": json.dumps({"kind": "NotFoundError", "message": text})}
                      for (r, c), text in failed.items()])
    assert recs.claim(run_id, "elsewhere") and recs.finish(run_id, "elsewhere", "complete")
    recs.set_notice(run_id, "The server of Other server asked us to slow down (rate limit): now 2 requests at a time.")

    at = AppTest.from_file(APP, default_timeout=90)
    at.run()
    at.switch_page(EVALUATE)
    at.query_params["run"] = run_id
    at.run()
    assert not at.exception, at.exception
    assert "so there is no verdict" in texts(at)
    orders = []
    for row in range(ROWS):
        at.selectbox(key=f"eval-open-{run_id}").set_value(row).run()
        labels = [m.value for m in at.markdown if m.value.startswith("**") and m.value != "**Results**"]
        assert labels == ["**Answer 1**", "**Answer 2**"]
        orders.append(tuple(t.value for t in at.text))
        shown = everything(at).lower()
        assert "model-one" not in shown and "model-two" not in shown  # no name anywhere, summary included
        assert "other server" not in shown  # nor B's connection (A's and B's differ)
        assert "does not exist on this account" in shown  # the errors show, without the names
    table = at.dataframe[1].value.to_csv()
    assert "The model (hidden) does not exist" in table
    assert "Not sent: Contestant " in table and "failed on its first 5 requests ((hidden) is overloaded.)" in table
    assert any(c.value.endswith("The judge could not be asked: (hidden) is busy.") for c in at.caption)
    assert [i.value for i in at.info] == ["The server of (hidden) asked us to slow down (rate limit): now 2 requests "
                                          "at a time."]
    assert {o[0].split()[2] for o in orders} == {"A", "B"}  # each row in its own order
    summary = at.dataframe[0].value
    assert sorted(summary["Contestant"]) == ["Contestant A", "Contestant B"]
    assert not [b for b in at.button if b.key in ("eval-csv", "eval-json") or (b.key or "").startswith("eval-chat-")]

    at.button(key=f"eval-reveal-{run_id}").click().run()
    assert not at.exception, at.exception
    assert list(at.dataframe[0].value["Contestant"]) == ["A: model-one", "B: model-two"]
    labels = [m.value for m in at.markdown if m.value.startswith("**") and m.value != "**Results**"]
    assert labels == ["**A: model-one**", "**B: model-two**"]  # revealed: names, in their own order
    assert "The model Model-Two does not exist" in str(at.dataframe[1].value.to_csv())
    assert "The server of Other server asked us" in at.info[0].value


def everything(at: AppTest) -> str:
    """Every text the page shows: markdown, captions, messages, headers, buttons and tables."""
    parts = [texts(at)] + [str(e.value) for kind in ("text", "subheader", "title", "code") for e in getattr(at, kind)]
    parts += [b.label for b in at.button] + [s.label for s in at.selectbox]
    parts += [df.value.to_csv() for df in at.dataframe]
    parts += [str(o) for s in at.selectbox for o in s.options]
    return "\n".join(parts)


def test_a_big_run_asks_for_confirmation_first(app_env, tmp_path):
    at = page()
    paste(at, "question\texpected\n" + "".join(f"q{i}\tworld\n" for i in range(300)))
    assert {m.label: m.value for m in at.metric}["Requests"] == "600"
    assert at.button(key="eval-run").disabled
    at.checkbox(key="eval-confirm").check().run()
    assert "Yes, send 600 requests" in at.checkbox(key="eval-confirm").label
    assert not at.button(key="eval-run").disabled


def test_streamlit_does_not_collect_all_garbage_after_every_script_run():
    """Streamlit's default full garbage collection after each script run holds the GIL ~0.13 s with the
    app's objects, so each redraw of a run's progress stalled the run's threads (bench/evaluate.py:
    1.21-1.29x the ideal time with it, 1.05-1.10x without). The app's config turns it off."""
    import tomllib
    from pathlib import Path

    config = tomllib.loads((Path(APP).parent / ".streamlit" / "config.toml").read_text())
    assert config["runner"]["postScriptGC"] is False
