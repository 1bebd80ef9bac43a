"""Benchmark: an evaluation of 1,000 rows x 2 contestants, and a 10,000-row dataset on the page's path.

    .venv/bin/python bench/evaluate.py [--rows 1000] [--latency 0.05] [--concurrency 8] [--big 10000]

1. The run: two fake EGP servers (tests/fake_egp.py, each its own process, so
   they do not share our GIL), each answering every request after `--latency`
   seconds (default 50 ms). Two contestants, one per server, `--concurrency`
   requests at a time each (default 8), through the app's own runner
   (egp_core.evaluate.runner: threads, our client, batched writes into a real
   SQLite store). Printed: the wall time over the ideal one
   (rows x latency / concurrency, both servers at once), target <= 1.2; the
   same over a baseline measured in the same run on the same servers (a plain
   pool of `--concurrency` threads per server, one `requests` POST each,
   nothing parsed or saved: what this busy machine allows at best); and
   this process's memory growth (RSS), target <= 150 MB. The page redraws the
   progress once a second (a fragment with run_every=1.0), within the
   "at most 4 redraws per second" target by construction.
2. The dataset: a `--big`-row CSV read (egp_core.evaluate.datasets.read_file),
   previewed (first 10 rows) and mapped to the template's variables, against
   the baseline of pandas reading the same bytes alone; target <= 2 s. Then
   one page of the results table of a finished `--big` x 2 run (the light
   results, the filter, the page's 25 rows with their texts) against loading
   every result with its text: the page never loads everything at once.
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402

from egp_core.client import EGPClient  # noqa: E402
from egp_core.evaluate import summary  # noqa: E402
from egp_core.evaluate.datasets import map_columns, read_file  # noqa: E402
from egp_core.evaluate.records import Records  # noqa: E402
from egp_core.evaluate.runner import Contestant, RunConfig, start_run  # noqa: E402
from egp_core.store import open_store  # noqa: E402


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def start_fake(latency: float) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "tests.fake_egp", "--port", "0", "--text", "Paris is the answer."],
                            cwd=ROOT, stdout=subprocess.PIPE, text=True)
    url = proc.stdout.readline().strip().rsplit(" ", 1)[-1]
    requests.post(url + "/_fake/script", json={"delay_first_byte": {"seconds": latency}}, timeout=5).raise_for_status()
    return proc, url


def csv_bytes(rows: int) -> bytes:
    buf = io.StringIO()
    buf.write("question,expected,notes\n")
    for i in range(rows):
        buf.write(f'"What is the capital of country number {i}, in one word?",Paris,"row {i}, some notes"\n')
    return buf.getvalue().encode()


def baseline(urls: list[str], rows: int, concurrency: int) -> float:
    """Seconds for a bare thread pool to send the same requests (no parsing, no grading, no saving)."""
    from concurrent.futures import ThreadPoolExecutor

    def send(url: str, n: int) -> None:
        session = requests.Session()
        for _ in range(n):
            session.post(url + "/v2/completions", json={"model": "m", "prompt": "q"}, timeout=30).json()

    started = time.perf_counter()
    with ThreadPoolExecutor(len(urls) * concurrency) as pool:
        jobs = [pool.submit(send, url, rows // concurrency) for url in urls for _ in range(concurrency)]
        for job in jobs:
            job.result()
    return time.perf_counter() - started


def bench_run(store, rows: int, latency: float, concurrency: int) -> None:
    fakes = [start_fake(latency) for _ in range(2)]
    try:
        records = Records(store)
        data = read_file("bench.csv", csv_bytes(rows))
        did = records.save_dataset("bench", data)
        contestants = [Contestant(connection_id=f"fake{i}", connection_name=f"fake {i}", base_url=url, model=f"m{i}",
                                  template="{{question}}", label="AB"[i], concurrency=concurrency)
                       for i, (_, url) in enumerate(fakes)]
        config = RunConfig(dataset_id=did, mapping={"question": "question"}, contestants=contestants,
                           expected_column="expected", graders=[{"kind": "contains"}])
        run_id = records.create_run("bench", "bench", did, config.to_dict(), config.total(rows))

        def factory(c, on_retry):
            return EGPClient(c.base_url, on_retry=on_retry)

        before = rss_mb()
        started = time.perf_counter()
        runner = start_run(records, run_id, factory)
        runner.wait()
        elapsed = time.perf_counter() - started
        grown = rss_mb() - before
        done = records.progress(run_id)
        ideal = rows * latency / concurrency
        base = baseline([url for _, url in fakes], rows, concurrency)
        print(f"run: {rows:,} rows x 2 contestants, {latency * 1000:.0f} ms per answer, {concurrency} at a time each")
        print(f"  {done['done']:,} results ({done['errors']} errors) in {elapsed:.2f} s; ideal {ideal:.2f} s; "
              f"ratio {elapsed / ideal:.3f} (target <= 1.2)")
        print(f"  bare thread pool on the same servers: {base:.2f} s ({base / ideal:.3f} x ideal); "
              f"the runner takes {elapsed / base:.3f} x the bare pool")
        print(f"  memory growth: {grown:.1f} MB (target <= 150 MB)")
    finally:
        for proc, _ in fakes:
            proc.terminate()
            proc.wait(10)


def bench_dataset(store, big: int) -> None:
    data = csv_bytes(big)
    import pandas as pd

    t0 = time.perf_counter()
    pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False)
    baseline = time.perf_counter() - t0
    t0 = time.perf_counter()
    dataset = read_file("big.csv", data)
    dataset.preview(10)
    map_columns(["question", "notes"], dataset.columns)
    ours = time.perf_counter() - t0
    print(f"dataset: {big:,} rows, {len(data) / 2**20:.1f} MB")
    print(f"  read + preview + map: {ours:.3f} s (target <= 2 s); pandas alone {baseline:.3f} s; "
          f"ratio {ours / baseline:.2f}")

    records = Records(store)
    did = records.save_dataset("bench", dataset)
    contestants = [Contestant(connection_id=f"c{i}", model=f"m{i}", template="{{question}}", label="AB"[i])
                   for i in range(2)]
    config = RunConfig(dataset_id=did, mapping={"question": "question"}, contestants=contestants)
    run_id = records.create_run("bench", "big", did, config.to_dict(), config.total(big))
    answer = "An answer of a few sentences. " * 20
    batch = [{"run_id": run_id, "row_index": r, "contestant": c, "repeat_index": 0, "status": "ok",
              "output": answer, "passed": (r + c) % 3 != 0, "latency": 0.5, "cost": 0.0001}
             for r in range(big) for c in range(2)]
    for i in range(0, len(batch), 1000):
        records.add_results(batch[i:i + 1000])
    t0 = time.perf_counter()
    light = records.light_results(run_id)
    rows = summary.filtered_rows(light, summary.FILTERS[1])
    page = records.results_for_rows(run_id, rows[:25])
    summary.contestants(light, ["A", "B"])
    one_page = time.perf_counter() - t0
    t0 = time.perf_counter()
    everything = list(records.all_results(run_id))
    whole = time.perf_counter() - t0
    page_bytes = len(json.dumps([r["output"] for r in page]))
    all_bytes = len(json.dumps([r["output"] for r in everything]))
    print(f"results table: {big:,} x 2 results; one page (filter, statistics, 25 rows of text) {one_page:.3f} s "
          f"vs loading all {whole:.3f} s; texts loaded {page_bytes / 1024:.0f} KB vs {all_bytes / 2**20:.1f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--big", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(f"sqlite:///{tmp}/bench.db")
        try:
            bench_run(store, args.rows, args.latency, args.concurrency)
            bench_dataset(store, args.big)
        finally:
            store.close()


if __name__ == "__main__":
    main()
