"""Summaries of a run (per contestant, paired verdicts, filters, repeats) and its exports: CSV, JSON, and
the "View code" script, which is run for real with the official SDK against the fake server."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys

import pytest

from egp_core.evaluate import summary
from egp_core.evaluate.datasets import read_pasted, to_csv
from egp_core.evaluate.export import results_csv, results_json, script
from egp_core.evaluate.records import Records
from egp_core.evaluate.runner import Contestant, RunConfig, start_run
from tests.test_evaluate_runner import contestant, dataset, factory, new_run, records  # noqa: F401 - a fixture


def light(row, c, passed, rep=0, status="ok", judge=None, latency=1.0):
    return {"row_index": row, "contestant": c, "repeat_index": rep, "status": status, "passed": passed,
            "judge_score": judge, "latency": latency, "cost": 0.001, "prompt_tokens": 10, "completion_tokens": 5,
            "review_score": None}


def test_per_contestant_summary_and_filters():
    rows = [light(0, 0, True, judge=5), light(0, 1, False, judge=2), light(1, 0, True, judge=4),
            light(1, 1, True, judge=4, latency=3.0), light(2, 0, None, status="error"), light(2, 1, True)]
    a, b = summary.contestants(rows, ["A", "B"])
    assert (a.graded, a.passed, a.errors, a.judge_mean) == (2, 2, 1, 4.5)
    assert (b.graded, b.passed, b.p50, b.p95) == (3, 2, 1.0, pytest.approx(2.8))
    assert (round(b.low, 4), round(b.high, 4)) == (0.2077, 0.9385)  # Wilson 2 of 3
    assert summary.filtered_rows(rows, "Failures only") == [0, 2]
    assert summary.filtered_rows(rows, "Disagreements") == [0]
    assert summary.filtered_rows(rows, "All rows") == [0, 1, 2]
    (v,) = summary.verdicts(rows, ["A", "B"])
    assert v.n == 2 and v.sentence.startswith("A passes 1 more of 2 rows than B; not enough evidence yet")


def test_repeats_vote_by_majority_and_their_agreement_is_shown():
    rows = [light(0, 0, True, rep=0), light(0, 0, True, rep=1), light(0, 0, False, rep=2)]
    assert summary.row_verdicts(rows) == {0: {0: True}}
    (s,) = summary.contestants(rows, ["A"], {(0, 0): ["Paris", "paris", "Lyon"]})
    assert s.agreement == pytest.approx(1 / 3)


def test_exports_hold_every_result_and_no_address_or_key(records, fake_egp):  # noqa: F811
    fake_egp.reply(text="Hello world")
    run_id = new_run(records, dataset(3), [contestant(fake_egp.base_url), contestant(fake_egp.base_url, "m2", "B")],
                     graders=[{"kind": "contains"}])
    assert start_run(records, run_id, factory).wait(60)
    run = records.get_run(run_id)
    rows = list(csv.DictReader(io.StringIO(results_csv(records, run))))
    assert len(rows) == 6 and rows[0]["output"] == "Hello world" and rows[0]["passed"] == "True"
    assert [(r["row"], r["contestant"]) for r in rows[:2]] == [("1", "A"), ("1", "B")]
    doc = json.loads(results_json(records, run))
    assert doc["format"] == "egp-playground-evaluation" and len(doc["results"]) == 6
    assert fake_egp.base_url not in json.dumps(doc)


def test_view_code_script_runs_the_evaluation_with_the_official_sdk(fake_egp, tmp_path):
    fake_egp.reply(text="Paris.")
    data = read_pasted("question\texpected\nCapital of France?\tParis\nCapital of Italy?\tRome\n")
    c = Contestant(connection_id="x", model="fake-model", base_url=fake_egp.base_url, label="A",
                   template="Q: {{question}} {{tone|Be brief.}}", parameters={"temperature": 0.2, "max_tokens": 20})
    config = RunConfig(dataset_id="d", mapping={"question": "question", "tone": None}, contestants=[c], repeats=2)
    code = script(config, data)
    (tmp_path / "run.py").write_text(code)
    (tmp_path / "dataset.csv").write_text(to_csv(data.columns, data.rows))
    env = {**os.environ, "EGP_API_KEY": "sk-script-key"}
    proc = subprocess.run([sys.executable, "run.py"], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = list(csv.DictReader((tmp_path / "results.csv").open()))
    assert [(r["row"], r["repeat"], r["output"]) for r in out] == [("1", "1", "Paris."), ("1", "2", "Paris."),
                                                                  ("2", "1", "Paris."), ("2", "2", "Paris.")]
    bodies = [r.body for r in fake_egp.requests if r.method == "POST"]
    assert bodies[0]["prompt"] == "Q: Capital of France? Be brief."
    assert {k: v for k, v in bodies[0]["model_parameters"].items() if v is not None} == {"temperature": 0.2,
                                                                                        "max_tokens": 20}
    assert fake_egp.requests[-1].headers["x-api-key"] == "sk-script-key"
    assert "sk-script-key" not in code


def test_reviews_are_saved_per_answer(records, fake_egp):  # noqa: F811
    fake_egp.reply(text="Hello world")
    run_id = new_run(records, dataset(1), [contestant(fake_egp.base_url)])
    assert start_run(records, run_id, factory).wait(60)
    assert records.set_review(run_id, 0, 0, 0, score=1, note="Too short.")  # 👎
    assert records.set_review(run_id, 0, 0, 0, score=4)  # the note stays
    r = records.results_for_rows(run_id, [0])[0]
    assert (r["review_score"], r["review_note"]) == (4, "Too short.")
    assert not records.set_review(run_id, 5, 0, 0, score=5)
    with pytest.raises(ValueError):
        records.set_review(run_id, 0, 0, 0, score=9)
    (s,) = summary.contestants(records.light_results(run_id), ["A"])
    assert (s.reviews, s.review_mean) == (1, 4.0)


def test_records_keep_datasets_once_per_content(records):  # noqa: F811
    a = records.save_dataset("alice", read_pasted("q\n1\n"))
    assert records.save_dataset("alice", read_pasted("q\n1\n")) == a
    assert records.save_dataset("alice", read_pasted("q\n2\n")) != a
    assert records.save_dataset("bob", read_pasted("q\n1\n")) != a
    assert isinstance(records, Records) and records.get_dataset(a).rows == [["1"]]
