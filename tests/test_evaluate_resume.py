"""Resume after a crash: a process running an evaluation is SIGKILLed; another replica takes the run over
and finishes only the missing rows, without duplicates, on SQLite and on PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

from egp_core.client import EGPClient
from egp_core.evaluate.datasets import read_pasted
from egp_core.evaluate.records import Records
from egp_core.evaluate.runner import Contestant, RunConfig, start_run
from egp_core.store import open_store

ROOT = Path(__file__).resolve().parents[1]
WORKER = textwrap.dedent("""
    import sys, threading
    from egp_core.client import EGPClient
    from egp_core.evaluate.records import Records
    from egp_core.evaluate.runner import start_run
    from egp_core.store import open_store

    records = Records(open_store(sys.argv[1]))
    runner = start_run(records, sys.argv[2], lambda c, on_retry: EGPClient(c.base_url, on_retry=on_retry),
                       replica="doomed-replica", flush_every=0.05)
    print("started" if runner else "refused", flush=True)
    threading.Event().wait()  # run until killed
""")


def factory(c, on_retry):
    return EGPClient(c.base_url, on_retry=on_retry)


def test_resume_after_sigkill_finishes_only_the_missing_rows(db_url, fake_egp):
    fake_egp.reply(text="Hello world").delay_first_byte(0.03)
    store = open_store(db_url)
    records = Records(store)
    rows = 60
    data = read_pasted("question\n" + "".join(f"q{i}\n" for i in range(rows)))
    did = records.save_dataset("alice", data)
    contestants = [Contestant(connection_id=f"c{i}", model=f"m{i}", base_url=fake_egp.base_url, template="{{question}}",
                              label="AB"[i], concurrency=2) for i in range(2)]
    config = RunConfig(dataset_id=did, mapping={"question": "question"}, contestants=contestants)
    run_id = records.create_run("alice", "crash test", did, config.to_dict(), config.total(rows))

    proc = subprocess.Popen([sys.executable, "-c", WORKER, db_url, run_id], cwd=ROOT, stdout=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        assert proc.stdout.readline().strip() == "started"
        deadline = time.monotonic() + 60
        while records.progress(run_id)["done"] < 20 and time.monotonic() < deadline:
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)

    saved = records.progress(run_id)["done"]
    assert 20 <= saved < 2 * rows, "the crash must come in the middle of the run"
    run = records.get_run(run_id)
    assert run.status == "running" and run.replica == "doomed-replica"
    assert start_run(records, run_id, factory, replica="survivor") is None  # not yet: it beat a moment ago
    time.sleep(1.2)
    assert records.get_run(run_id).interrupted(stale_after=1.0)  # the page shows "interrupted", with Resume
    saved_prompts = {f"q{r['row_index']}" for r in records.light_results(run_id) if r["contestant"] == 0}
    sent_before = len(fake_egp.requests)
    runner = start_run(records, run_id, factory, replica="survivor", stale_after=1.0)
    assert runner is not None and runner.pending_at_start == 2 * rows - saved
    assert runner.wait(120) and runner.status == "complete"

    counts = Counter((r["row_index"], r["contestant"], r["repeat_index"]) for r in records.light_results(run_id))
    assert len(counts) == 2 * rows and set(counts.values()) == {1}
    assert all(r["status"] == "ok" for r in records.light_results(run_id))
    again = [r.body["prompt"] for r in fake_egp.requests[sent_before:] if r.body["model"] == "m0"]
    assert not saved_prompts & set(again)  # only the missing ones were sent again (the dead one's last
    # requests in flight may reach the server late, so the count is not compared)
    final = records.get_run(run_id)
    assert (final.status, final.replica) == ("complete", "survivor")
    store.close()
