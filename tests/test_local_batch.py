"""The engine decodes several requests together: same tokens as alone, own stops, own cancel.

These run the real bundled model in this process (no HTTP): they check what
batching must not change, token by token; bench/local_streams.py measures
what it gains.
"""

from __future__ import annotations

import threading

import pytest

from egp_core.local.engine import Delta, Engine, Finished, Job, SamplingParams, model_specs, wait_until

pytestmark = pytest.mark.model

PROMPTS = [
    "Write a very long story about a dragon and a knight, with many chapters.",
    "How do I make a cup of tea?",
    "Explain photosynthesis to a ten-year-old.",
]
GREEDY = SamplingParams(temperature=0, max_tokens=40, logprobs=True)


@pytest.fixture(scope="module")
def engine():
    e = Engine(model_specs("")[0], n_ctx=2048, slots=3)
    e.load()
    assert e.state == "ready", e.error_detail
    yield e
    e.close()


class Collect:
    """A job's sink: its texts, tokens, and how it ended."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.tokens: list[bytes] = []
        self.end = None
        self.first = threading.Event()

    def __call__(self, event) -> None:
        if isinstance(event, Delta):
            self.texts.append(event.text)
            self.tokens.extend(t.token for t in event.logprobs)
            self.first.set()
        else:
            self.end = event

    @property
    def text(self) -> str:
        return "".join(self.texts)


def run_together(engine: Engine, jobs: list[tuple[str, SamplingParams]]) -> list[Collect]:
    sinks = [Collect() for _ in jobs]
    submitted = [engine.submit(Job(engine.tokenize_prompt(p), params, s)) for (p, params), s in zip(jobs, sinks, strict=True)]
    for job in submitted:
        assert job.done.wait(300)
    return sinks


def alone(engine: Engine, prompt: str, params: SamplingParams) -> Collect:
    return run_together(engine, [(prompt, params)])[0]


def test_batched_greedy_outputs_equal_each_alone_token_for_token(engine):
    singles = [alone(engine, p, GREEDY) for p in PROMPTS]
    together = run_together(engine, [(p, GREEDY) for p in PROMPTS])
    for one, batched in zip(singles, together, strict=True):
        assert isinstance(batched.end, Finished)
        assert batched.tokens == one.tokens and len(one.tokens) > 5
        assert batched.text == one.text
        assert batched.end.completion_tokens == one.end.completion_tokens


def test_a_stream_joining_late_gets_the_same_tokens(engine):
    """One stream starts while another is half-way: the mixed batch (a prompt and a token) changes nothing."""
    params = SamplingParams(temperature=0, max_tokens=60, logprobs=True)
    reference = alone(engine, PROMPTS[2], params)
    first, second = Collect(), Collect()
    job = engine.submit(Job(engine.tokenize_prompt(PROMPTS[0]), SamplingParams(temperature=0, max_tokens=400), first))
    assert wait_until(lambda: len(first.texts) >= 10, 120)
    late = engine.submit(Job(engine.tokenize_prompt(PROMPTS[2]), params, second))
    assert late.done.wait(300)
    engine.cancel(job)
    assert second.tokens == reference.tokens


def test_one_streams_stop_sequence_never_affects_another(engine):
    free = alone(engine, PROMPTS[1], GREEDY)
    words = free.text.split()
    stop = words[len(words) // 2]
    assert free.text.count(stop) >= 1
    stopped_params = SamplingParams(temperature=0, max_tokens=40, stop=(stop,))
    stopped, unstopped = run_together(engine, [(PROMPTS[1], stopped_params), (PROMPTS[1], GREEDY)])
    assert stopped.end.finish_reason == "stop"
    assert stopped.text == free.text[: free.text.index(stop)]
    assert unstopped.text == free.text
    assert unstopped.end.finish_reason == free.end.finish_reason


def test_cancelling_one_of_three_streams_frees_its_slot_at_once(engine):
    long = SamplingParams(temperature=0, max_tokens=1500)
    sinks = [Collect() for _ in range(4)]
    jobs = [engine.submit(Job(engine.tokenize_prompt(PROMPTS[0]), long, s)) for s in sinks]
    try:
        assert wait_until(lambda: all(s.first.is_set() for s in sinks[:3]), 120)
        assert engine.active == 3 and engine.queue_length == 1  # the fourth waits for a slot
        assert not sinks[3].first.is_set()
        engine.cancel(jobs[1])
        assert jobs[1].done.wait(30)
        assert sinks[3].first.wait(60)  # the freed slot went to the waiting job
        assert engine.active == 3
        assert not jobs[0].done.is_set() and not jobs[2].done.is_set()  # the others run on
        before = [len(sinks[0].texts), len(sinks[2].texts)]
        assert wait_until(lambda: len(sinks[0].texts) > before[0] and len(sinks[2].texts) > before[1], 60)
    finally:
        for job in jobs:
            engine.cancel(job)
    assert wait_until(lambda: engine.active == 0, 30)


def test_the_same_seed_gives_the_same_text_alone_or_batched(engine):
    seeded = SamplingParams(temperature=0.9, top_p=1.0, max_tokens=40, seed=1234)
    first = alone(engine, PROMPTS[1], seeded)
    again, _other = run_together(engine, [(PROMPTS[1], seeded), (PROMPTS[2], GREEDY)])
    other_seed = alone(engine, PROMPTS[1], SamplingParams(temperature=0.9, top_p=1.0, max_tokens=40, seed=99))
    assert again.text == first.text
    assert other_seed.text != first.text


def test_top_logprobs_come_with_each_token(engine):
    # no anti-loop penalties: the greedy token is then the likeliest one (logprobs are before penalties)
    params = SamplingParams(temperature=0, max_tokens=8, logprobs=True, top_logprobs=3, repeat_penalty=1.0,
                            dry_multiplier=0.0)
    events = [e for e in engine.run(engine.tokenize_prompt(PROMPTS[1]), params) if isinstance(e, Delta)]
    infos = [t for e in events for t in e.logprobs]
    assert len(infos) == 8
    for info in infos:
        assert len(info.top) == 3 and info.logprob <= 0
        assert info.top[0][0] == info.token  # greedy: the chosen token is the most likely one
        assert info.top[0][1] >= info.top[1][1] >= info.top[2][1]


def test_a_conversation_comes_back_from_the_ram_cache_with_the_same_answer():
    """One slot, two long conversations in turn: the first one's KV state is saved to RAM when
    the second takes the slot, and restored (not re-evaluated) when it comes back."""
    one = Engine(model_specs("")[0], n_ctx=1024, slots=1)
    one.load()
    try:
        notes = " ".join(f"Note {i}: the bridge in the old town needs {i % 7 + 2} more hours of work." for i in range(30))
        a = one.tokenize_prompt(f"{notes}\nWhich note mentions the most hours?")
        b = one.tokenize_prompt(f"{notes.replace('bridge', 'bakery')}\nWhich note is the last one?")
        params = SamplingParams(temperature=0, max_tokens=12)
        first = [e for e in one.run(a, params)]
        [e for e in one.run(b, params)]
        again = [e for e in one.run(a, params)]
        assert len(a) > 300
        assert again[-1].cached_tokens == len(a) - 1  # all but the last prompt token came from RAM
        assert one._batcher.cache.hits == 1
        assert "".join(e.text for e in again[:-1]) == "".join(e.text for e in first[:-1])
    finally:
        one.close()
