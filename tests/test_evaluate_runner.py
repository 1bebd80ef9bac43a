"""The evaluation runner against the fake EGP server: results, grades, failures, 429s, cut streams,
a dead connection, Stop and Resume, ownership between replicas, the plan's checks and the estimate."""

from __future__ import annotations

import threading
from collections import Counter

import pytest

from egp_core.client import EGPClient
from egp_core.evaluate.datasets import read_pasted
from egp_core.evaluate.records import Records
from egp_core.evaluate.runner import (
    Contestant,
    RunConfig,
    check_plan,
    concurrency_for,
    estimate,
    speeds_from_history,
    start_run,
)
from egp_core.store import open_store
from tests.fake_egp import FakeEGP


def factory(contestant, on_retry):
    return EGPClient(contestant.base_url, api=contestant.api, on_retry=on_retry, max_retries=2,
                     retry_initial_delay=0.01, read_timeout=20)


def dataset(rows: int = 20):
    text = "question\texpected\n" + "".join(f"Question {i}?\tworld\n" for i in range(rows))
    return read_pasted(text)


def contestant(base_url: str, model: str = "fake-model", label: str = "A", **kw) -> Contestant:
    return Contestant(connection_id=kw.pop("connection_id", "fake"), connection_name="Fake", kind="egp",
                      base_url=base_url, model=model, template="Answer: {{question}}", label=label, **kw)


@pytest.fixture
def records(tmp_path):
    store = open_store(f"sqlite:///{tmp_path / 'eval.db'}")
    yield Records(store)
    store.close()


def new_run(records: Records, data, contestants, graders=(), repeats: int = 1) -> str:
    did = records.save_dataset("alice", data)
    config = RunConfig(dataset_id=did, mapping={"question": "question"}, expected_column="expected",
                       contestants=list(contestants), graders=list(graders), repeats=repeats)
    assert check_plan(config, data) == []
    return records.create_run("alice", "test run", did, config.to_dict(), config.total(len(data)))


def keys(records: Records, run_id: str) -> Counter:
    return Counter((r["row_index"], r["contestant"], r["repeat_index"]) for r in records.light_results(run_id))


def test_a_run_sends_every_row_to_every_contestant_and_grades_it(records, fake_egp):
    fake_egp.reply(text="Hello world", usage={"prompt": 10, "completion": 2, "total": 12})
    run = new_run(records, dataset(10), [contestant(fake_egp.base_url, "gpt-4o", "A"),
                                         contestant(fake_egp.base_url, "fake-model", "B")],
                  graders=[{"kind": "contains"}, {"kind": "regex", "pattern": "^Hello"}], repeats=2)
    runner = start_run(records, run, factory)
    assert runner.wait(60)
    assert runner.status == "complete" and records.get_run(run).status == "complete"
    results = records.results_for_rows(run, range(10))
    assert len(results) == 40 and set(keys(records, run).values()) == {1}
    assert all(r["status"] == "ok" and r["output"] == "Hello world" and r["passed"] is True for r in results)
    assert results[0]["grades"] == [{"passed": True, "score": None, "note": ""}] * 2
    prompts = sorted(r.body["prompt"] for r in fake_egp.requests)
    assert prompts[:2] == ["Answer: Question 0?"] * 2 and len(prompts) == 40
    assert {r.body["model"] for r in fake_egp.requests} == {"gpt-4o", "fake-model"}
    progress = records.progress(run)
    assert progress["done"] == 40 and progress["errors"] == 0 and progress["prompt_tokens"] == 400
    # gpt-4o: 20 answers x (10 x 0.0025 + 2 x 0.01) / 1000; fake-model has no price
    assert progress["cost"] == pytest.approx(20 * (10 * 0.0025 + 2 * 0.01) / 1000)


def test_server_errors_rate_limits_and_cut_streams_still_finish_every_row(records, fake_egp):
    fake_egp.reply(text="Hello world")
    fake_egp.fail(500, times=3).fail(429, retry_after=0, times=12)
    run = new_run(records, dataset(30), [contestant(fake_egp.base_url)], graders=[{"kind": "contains"}])
    runner = start_run(records, run, factory)
    assert runner.wait(60)
    assert records.progress(run) == {**records.progress(run), "done": 30, "errors": 0}
    assert "slow down" in (records.get_run(run).notice or "")
    # cut streams: every answer is cut after one event until the fake is told to stop cutting
    fake_egp.reset()
    fake_egp.reply(text="Hello big wide world", pace=200).drop_after(1)
    run2 = new_run(records, dataset(8), [contestant(fake_egp.base_url, "other-model")])
    runner = start_run(records, run2, factory)
    while len(fake_egp.requests) < 6 and not runner.done:  # the first four were cut and sent again
        runner.wait(0.01)
    fake_egp._script.drop_after = None
    assert runner.wait(60)
    results = records.results_for_rows(run2, range(8))
    failed = [r for r in results if r["status"] == "error"]
    assert len(results) == 8 and len(fake_egp.requests) > 8
    assert all(r["output"] == "Hello big wide world" for r in results if r["status"] == "ok")
    assert all("cut" in r["error"] for r in failed)  # at most the rows cut three times in a row


def test_a_dead_connection_fails_its_rows_and_the_others_carry_on(records, fake_egp):
    fake_egp.reply(text="Hello world")
    dead = contestant("http://127.0.0.1:9", "gone-model", "B", connection_id="dead")  # nothing listens there
    run = new_run(records, dataset(12), [contestant(fake_egp.base_url), dead])
    runner = start_run(records, run, factory)
    assert runner.wait(60) and runner.status == "complete"
    results = records.results_for_rows(run, range(12))
    a = [r for r in results if r["contestant"] == 0]
    b = [r for r in results if r["contestant"] == 1]
    assert all(r["status"] == "ok" for r in a) and len(a) == 12
    assert all(r["status"] == "error" for r in b) and len(b) == 12
    not_sent = sum("Not sent" in r["error"] for r in b)
    assert 12 - 5 - 3 <= not_sent <= 12 - 5  # given up after 5 failures (4 may be in flight at once)
    notice = records.get_run(run).notice
    assert "B: gone-model: every request failed (Could not reach the server" in notice
    assert "carries on for the others" in notice
    assert records.delete_failed(run) == 12  # "Retry failed rows": B's requests are sent again, A's are kept
    again = start_run(records, run, factory)
    assert again is not None and again.pending_at_start == 12
    assert again.wait(60) and len(keys(records, run)) == 24


def test_stop_then_resume_finishes_only_the_missing_rows(records, fake_egp):
    fake_egp.reply(text="Hello world").delay_first_byte(0.05)
    run = new_run(records, dataset(40), [contestant(fake_egp.base_url, concurrency=2)])
    runner = start_run(records, run, factory)
    while records.progress(run)["done"] < 4 and not runner.done:
        runner.wait(0.02)
    runner.stop()
    assert runner.wait(30) and runner.status == "stopped"
    assert records.get_run(run).status == "stopped"
    stopped_at = records.progress(run)["done"]
    assert 4 <= stopped_at < 40
    saved = {f"Answer: Question {row}?" for row, _, _ in keys(records, run)}
    sent_before = len(fake_egp.requests)
    runner = start_run(records, run, factory)
    assert runner.pending_at_start == 40 - stopped_at
    assert runner.wait(60) and runner.status == "complete"
    assert set(keys(records, run).values()) == {1} and len(keys(records, run)) == 40
    again = [r.body["prompt"] for r in fake_egp.requests[sent_before:]]
    assert not saved & set(again)  # nothing saved before was sent again


def test_a_live_run_belongs_to_its_replica_until_it_stops_beating(records, fake_egp):
    fake_egp.reply(text="Hello world").delay_first_byte(0.05)
    run = new_run(records, dataset(30), [contestant(fake_egp.base_url, concurrency=1)])
    first = start_run(records, run, factory, replica="replica-1")
    assert start_run(records, run, factory, replica="replica-2") is None  # it is alive elsewhere
    assert records.request_stop(run)  # Stop pressed on replica 2: replica 1 sees it at its next beat
    assert first.wait(30) and first.status == "stopped"
    second = start_run(records, run, factory, replica="replica-2")
    assert second is not None and second.wait(60) and second.status == "complete"
    assert len(keys(records, run)) == 30


def test_the_judge_scores_each_answer(records, fake_egp):
    fake_egp.reply(text="Score: 4\nReason: Close enough.")
    judge = {"kind": "judge", "connection_id": "fake", "connection_kind": "egp", "base_url": fake_egp.base_url,
             "model": "judge-model", "rubric": "Be strict."}
    run = new_run(records, dataset(3), [contestant(fake_egp.base_url)], graders=[judge])
    assert start_run(records, run, factory).wait(60)
    results = records.results_for_rows(run, range(3))
    assert [r["judge_score"] for r in results] == [4.0] * 3
    assert results[0]["grades"] == [{"passed": True, "score": 4.0, "note": "Close enough."}]
    judge_prompts = [r.body["prompt"] for r in fake_egp.requests if r.body["model"] == "judge-model"]
    assert len(judge_prompts) == 3 and "Rubric: Be strict." in judge_prompts[0]
    assert "Answer: Question 0?" in judge_prompts[0] or "Answer: Question" in judge_prompts[0]


def judge_on(fake, connection_id: str = "judge-conn", kind: str = "egp") -> dict:
    return {"kind": "judge", "connection_id": connection_id, "connection_kind": kind, "connection_name": "Judge server",
            "base_url": fake.base_url, "model": "judge-model"}


def test_the_judge_keeps_to_its_connections_limit_and_backs_off_on_a_429(records, fake_egp):
    fake_egp.reply(text="Hello world")
    with FakeEGP() as judge_fake:
        judge_fake.reply(text="Score: 5\nReason: Fine.").delay_first_byte(0.05)
        # 8 contestant requests at a time, but the judge's connection takes 4 (the default)
        run = new_run(records, dataset(24), [contestant(fake_egp.base_url, concurrency=8)],
                      graders=[judge_on(judge_fake)])
        assert start_run(records, run, factory).wait(60)
        assert [r["judge_score"] for r in records.results_for_rows(run, range(24))] == [5.0] * 24
        assert 2 <= judge_fake.max_in_flight <= 4

        # the built-in model judges one at a time (it cannot say it batches: no /health here)
        judge_fake.reset()
        judge_fake.reply(text="Score: 5\nReason: Fine.").delay_first_byte(0.02)
        run = new_run(records, dataset(8), [contestant(fake_egp.base_url, concurrency=8)],
                      graders=[judge_on(judge_fake, "judge-local", kind="local")])
        assert start_run(records, run, factory).wait(60)
        assert judge_fake.max_in_flight == 1 and len([r for r in judge_fake.requests if r.method == "POST"]) == 8

        # rate limits: the judge's connection slows down and says so; every answer is still judged
        judge_fake.reset()
        judge_fake.reply(text="Score: 4\nReason: Fine.").fail(429, retry_after=0, times=16)
        run = new_run(records, dataset(12), [contestant(fake_egp.base_url, concurrency=8)],
                      graders=[judge_on(judge_fake)])
        assert start_run(records, run, factory).wait(60)
        assert [r["judge_score"] for r in records.results_for_rows(run, range(12))] == [4.0] * 12
        notice = records.get_run(run).notice or ""
        assert "The server of Judge server asked us to slow down" in notice and "Fake" not in notice


def test_the_built_in_model_gets_as_many_at_a_time_as_it_decodes_together():
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Health(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            body = b'{"status": "ok", "slots": 3}' if self.path == "/health" else b"{}"
            self.send_response(200 if self.path == "/health" else 404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        assert concurrency_for(Contestant(connection_id="local", model="m", template="", kind="local", base_url=url)) == 3
        assert concurrency_for(Contestant(connection_id="local", model="m", template="", kind="local",
                                          base_url="http://127.0.0.1:9")) == 1  # it cannot say: one at a time
        assert concurrency_for(Contestant(connection_id="x", model="m", template="", base_url=url)) == 4
    finally:
        server.shutdown()
        server.server_close()


def test_a_judge_on_a_contestants_connection_shares_its_limit(records, fake_egp):
    fake_egp.reply(text="Score: 5\nReason: Fine.").delay_first_byte(0.03)
    run = new_run(records, dataset(16), [contestant(fake_egp.base_url, concurrency=3)],
                  graders=[judge_on(fake_egp, connection_id="fake")])
    assert start_run(records, run, factory).wait(60)
    assert len(fake_egp.requests) == 32 and 2 <= fake_egp.max_in_flight <= 3


def test_a_judge_without_a_score_is_said_plainly(records, fake_egp):
    fake_egp.reply(text="I refuse to grade.")
    judge = {"kind": "judge", "connection_id": "fake", "base_url": fake_egp.base_url, "model": "judge-model"}
    run = new_run(records, dataset(2), [contestant(fake_egp.base_url)], graders=[judge])
    assert start_run(records, run, factory).wait(60)
    r = records.results_for_rows(run, [0])[0]
    assert r["passed"] is None and r["judge_score"] is None
    assert r["grades"][0]["note"] == "The judge gave no score: “I refuse to grade.”."


# ----- the plan's checks (nothing is saved when they fail) -----------------------------------------


def plan(template: str, mapping: dict, text: str = "question\texpected\nq1\ta\n\tb\n"):
    data = read_pasted(text)
    c = Contestant(connection_id="x", model="m", template=template, label="A")
    return check_plan(RunConfig(dataset_id="d", mapping=mapping, contestants=[c], expected_column="expected"), data)


def test_a_variable_with_no_column():
    problems = plan("{{question}} {{topic}}", {"question": "question", "topic": None})
    assert problems == ["A: m: the variable {{topic}} has no column. Pick one for it under \"Columns\", or give it "
                        "a default in the prompt: {{topic|...}}."]
    full = "question\texpected\nq1\ta\n"
    assert plan("{{question}} {{topic|general}}", {"question": "question", "topic": None}, full) == []


def test_a_row_whose_value_breaks_the_template():
    problems = plan("Q: {{question}}", {"question": "question"})
    assert len(problems) == 1
    assert problems[0] == ("A: m: 1 row cannot fill the prompt (Fill in question: the prompt has no value for it): "
                           "row 2. Fill those cells, or give the variable a default.")
    many = plan("Q: {{question}}", {"question": "question"}, "question\texpected\n" + "\tb\n" * 8 + "q\ta\n")
    assert "8 rows cannot fill the prompt" in many[0] and "rows 1, 2, 3, 4, 5 and 3 more." in many[0]


def test_a_broken_template_and_other_mistakes():
    assert "cannot be used" in plan("{{ question }}", {"question": "question"})[0]
    assert "has no {{variables}}" in plan("Same prompt", {})[0]
    data = read_pasted("q\nx\n")
    c = Contestant(connection_id="x", model="", template="{{q}}", label="A")
    bad = RunConfig(dataset_id="d", mapping={"q": "q"}, contestants=[c] * 5, repeats=9,
                    graders=[{"kind": "contains"}, {"kind": "regex", "pattern": "("}])
    problems = check_plan(bad, data)
    assert "Choose 1 to 4 contestants." in problems and "Repeats must be 1 to 5." in problems
    assert any("choose the column that holds the expected answer" in p for p in problems)
    assert any("regular expression is not valid" in p for p in problems)
    assert any(p.endswith("pick a model.") for p in problems)


def test_estimate_counts_requests_tokens_cost_and_time():
    data = read_pasted("question\n" + "x" * 40 + "\n" + "y" * 40 + "\n")
    a = Contestant(connection_id="w", model="gpt-4o", template="{{question}}", parameters={"max_tokens": 100})
    b = Contestant(connection_id="local", kind="local", model="SmolLM2-135M-Instruct", template="{{question}}")
    config = RunConfig(dataset_id="d", mapping={"question": "question"}, contestants=[a, b], repeats=2)
    est = estimate(config, data, history={"SmolLM2-135M-Instruct": {"completion_tokens": 30, "latency": 3.0}})
    assert est.requests == 8
    assert est.prompt_tokens == 2 * 4 * 11  # 40 characters: about 11 tokens; 2 contestants x 2 rows x 2 repeats
    assert est.completion_tokens == 4 * 50 + 4 * 30
    assert est.cost == pytest.approx(4 * 11 * 0.0025 / 1000 + 4 * 50 * 0.01 / 1000)
    assert est.seconds == pytest.approx(4 * 3.0 / 1)  # the local model, one at a time, is the slowest lane
    assert not est.needs_confirmation
    unknown = estimate(RunConfig(dataset_id="d", mapping={"question": "question"},
                                 contestants=[Contestant(connection_id="w", model="mystery", template="{{question}}")]),
                       data)
    assert unknown.cost is None and unknown.unpriced == ["mystery"]
    judged = RunConfig(dataset_id="d", mapping={"question": "question"}, contestants=[a],
                       graders=[{"kind": "judge", "model": "gpt-4o-mini", "prompt": "x" * 400}])
    with_judge = estimate(judged, data)
    assert with_judge.requests == 4
    judge_in = 2 * (101 + 11 + 50)  # its prompt (400 characters), the question and the answer, per answer
    assert with_judge.prompt_tokens == 2 * 11 + judge_in and with_judge.completion_tokens == 2 * 50 + 2 * 30
    assert with_judge.cost == pytest.approx((2 * 11 * 0.0025 + 2 * 50 * 0.01) / 1000
                                            + (judge_in * 0.00015 + 60 * 0.0006) / 1000)
    assert with_judge.seconds == pytest.approx(2 * (2.0 + 2.0) / 4)


def test_estimate_counts_the_judges_time_on_the_judges_connection():
    data = read_pasted("question\n" + "".join(f"q{i}\n" for i in range(100)))
    a = Contestant(connection_id="w", model="m-a", template="{{question}}", concurrency=4)
    b = Contestant(connection_id="v", model="m-b", template="{{question}}", concurrency=8)
    speeds = {"m-a": {"latency": 2.0}, "m-b": {"latency": 2.0}, "j": {"latency": 1.0}}

    def seconds(judge: dict) -> float:
        config = RunConfig(dataset_id="d", mapping={"question": "question"}, contestants=[a, b],
                           graders=[{"kind": "judge", "model": "j", **judge}])
        return estimate(config, data, history=speeds).seconds

    # on a connection of its own (4 at a time): 200 answers judged in 50 s; A's workers wait for its
    # judge too: 100 x (2 + 1) s over 4 = 75 s, the longest
    assert seconds({"connection_id": "judges"}) == pytest.approx(75)
    # the built-in model judging, one at a time: 200 x 1 s
    assert seconds({"connection_id": "local", "connection_kind": "local"}) == pytest.approx(200)
    # on B's connection, sharing its 8 places: its own 100 x 2 s and 200 judgings x 1 s over 8 = 50 s;
    # A's workers: 100 x 3 s over 4 = 75 s
    assert seconds({"connection_id": "v"}) == pytest.approx(75)
    # on A's connection, sharing its 4 places: 100 x 2 s + 200 x 1 s over 4
    assert seconds({"connection_id": "w"}) == pytest.approx(100)


def test_evaluation_requests_count_in_the_usage_totals(records, fake_egp):
    from egp_core.store.usage import usage_rows

    fake_egp.reply(text="Hello world", usage={"prompt": 10, "completion": 2, "total": 12})
    run = new_run(records, dataset(5), [contestant(fake_egp.base_url, "gpt-4o")])
    assert start_run(records, run, factory).wait(60)
    rows = usage_rows(records.store, "alice")
    assert len(rows) == 5 and {r["conversation_title"] for r in rows} == {"Evaluation: test run"}
    assert {r["model"] for r in rows} == {"gpt-4o"} and sum(r["total_tokens"] for r in rows) == 60
    assert sum(r["cost"] for r in rows) == pytest.approx(records.progress(run)["cost"])
    assert usage_rows(records.store, "bob") == []
    speeds = speeds_from_history(records.store, "alice")  # what the next estimate reads
    assert speeds["gpt-4o"]["completion_tokens"] == 2 and speeds["gpt-4o"]["latency"] > 0


def test_a_library_prompt_fills_its_system_prompt_too(records, fake_egp):
    fake_egp.reply(text="Hello world")
    c = contestant(fake_egp.base_url, system_prompt="You answer questions about {{topic|geography}}.",
                   prompt_ref={"prompt_id": "p1", "version": 3, "name": "Quiz"})
    assert c.name() == "A: fake-model · Quiz v3"
    run = new_run(records, dataset(2), [c])
    assert start_run(records, run, factory).wait(60)
    prompts = sorted(r.body["prompt"] for r in fake_egp.requests)
    assert prompts[0] == ("System: You answer questions about geography.\n\nUser: Answer: Question 0?\n\n"
                          "Assistant:")
    data = dataset(1)
    needs_topic = Contestant(connection_id="x", model="m", template="{{question}}", label="A",
                             system_prompt="About {{topic}}.")
    problems = check_plan(RunConfig(dataset_id="d", mapping={"question": "question", "topic": None},
                                    contestants=[needs_topic]), data)
    assert any("the variable {{topic}} has no column" in p for p in problems)
