"""Several writers at once: threads sharing one Store, two Stores, and two processes on one database."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable
from pathlib import Path

from egp_core.store import open_store

ROOT = Path(__file__).resolve().parents[1]


def _run_threads(targets: list[Callable[[], None]]) -> list[BaseException]:
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(targets))

    def wrap(fn: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                barrier.wait()
                fn()
            except BaseException as exc:  # noqa: BLE001 - reported by the test
                errors.append(exc)
        return run

    threads = [threading.Thread(target=wrap(t)) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a writer hung"
    return errors


def test_threads_sharing_one_store(db_url: str) -> None:
    store = open_store(db_url)
    try:
        cid = store.create_conversation("alice", "busy")
        made: list[str] = []

        def writer(n: int) -> Callable[[], None]:
            def run() -> None:
                for i in range(25):
                    store.add_message(cid, "user", f"w{n}-{i}")
                    if i % 5 == 0:
                        made.append(store.create_conversation("alice", f"c{n}-{i}"))
                        store.list_conversations("alice", "w1")
            return run

        assert _run_threads([writer(n) for n in range(8)]) == []
        msgs = store.messages(cid)
        assert len(msgs) == 200
        assert [m.seq for m in msgs] == list(range(1, 201))
        assert {m.text for m in msgs} == {f"w{n}-{i}" for n in range(8) for i in range(25)}
        for n in range(8):  # each writer's messages stay in its own order
            mine = [int(m.text.split("-")[1]) for m in msgs if m.text.startswith(f"w{n}-")]
            assert mine == sorted(mine)
        assert len(store.list_conversations("alice", limit=1000)) == 1 + len(made) == 41
    finally:
        store.close()


def test_two_stores_streaming_adding_and_truncating_at_once(db_url: str) -> None:
    one, two = open_store(db_url), open_store(db_url)
    try:
        cid = one.create_conversation("alice", "shared")
        question = one.add_message(cid, "user", "q")
        answer = one.add_message(cid, "assistant", "", status="streaming", model="m")
        scratch = two.create_conversation("alice", "scratch")
        kept = two.add_message(scratch, "assistant", "", status="streaming")
        words = [f"word{i} " for i in range(60)]

        def stream() -> None:  # like the page: saves the growing answer, then finishes it
            text = ""
            for w in words:
                text += w
                assert one.update_message(answer, text=text)
            assert one.update_message(answer, status="complete", usage={"prompt": 1, "completion": 60, "total": 61})

        def add() -> None:  # another tab of the same conversation
            for i in range(30):
                two.add_message(cid, "user", f"other tab {i}")

        def regenerate_loop() -> None:  # a third session editing and resending elsewhere
            for i in range(20):
                mid = two.add_message(scratch, "user", f"edit {i}")
                two.add_message(scratch, "assistant", f"reply {i}")
                assert two.delete_messages_from(scratch, mid) == 2

        def update_scratch() -> None:
            for i in range(40):
                assert one.update_message(kept, text=f"kept {i}")

        def read() -> None:
            for _ in range(30):
                assert one.get_conversation(cid) is not None
                two.messages(cid)
                one.list_conversations("alice", "word1")

        assert _run_threads([stream, add, regenerate_loop, update_scratch, read]) == []
        final = two.get_message(answer)
        assert (final.text, final.status, final.usage["total"]) == ("".join(words), "complete", 61)
        msgs = one.messages(cid)
        assert [m.id for m in msgs[:2]] == [question, answer]
        assert len(msgs) == 32 and [m.seq for m in msgs] == list(range(1, 33))
        assert [m.text for m in two.messages(scratch)] == ["kept 39"]
    finally:
        one.close()
        two.close()


WRITER = textwrap.dedent("""
    import sys
    from egp_core.store import open_store
    store = open_store(sys.argv[1])
    for i in range(40):
        mid = store.add_message(sys.argv[2], "assistant", f"proc-{i}", status="streaming")
        assert store.update_message(mid, status="complete")
    store.close()
""")


def test_two_processes_on_one_database(db_url: str) -> None:
    store = open_store(db_url)
    try:
        cid = store.create_conversation("alice", "two replicas")
        proc = subprocess.Popen([sys.executable, "-c", WRITER, db_url, cid], cwd=ROOT,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for i in range(40):
            store.add_message(cid, "user", f"main-{i}")
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        msgs = store.messages(cid)
        assert len(msgs) == 80 and [m.seq for m in msgs] == list(range(1, 81))
        assert sum(m.text.startswith("proc-") and m.status == "complete" for m in msgs) == 40
    finally:
        store.close()
