"""The built-in model's sampling defaults (egp_core/local/sampling.py), with the real model.

A request that leaves the penalties out gets the anti-loop defaults (a repetition
penalty on words and DRY); one that sets `frequency_penalty` or `presence_penalty`
gets exactly the penalties it asked for, with no default on top. Each answer comes
over HTTP from the real local server and is compared, token for token, with the same
model run in this process with every parameter spelled out (greedy, so the text
depends on the parameters only).
"""

from __future__ import annotations

import numpy as np
import pytest
import requests

from bench.loops import loops
from egp_core.local import DEFAULT_MODEL_ID
from egp_core.local.engine import Delta, Engine, SamplingParams, default_model_path, model_specs
from egp_core.local.sampling import DEFAULT_REPEAT_PENALTY, Sampler, Vocab
from egp_core.types import Message

pytestmark = pytest.mark.model

PROMPT = "Explain photosynthesis to a ten-year-old."
MAX_TOKENS = 160
NO_DEFAULTS = {"repeat_penalty": 1.0, "dry_multiplier": 0.0}
PATHS = ["/v2/completions", "/v5/chat/completions"]


@pytest.fixture(scope="module")
def engine():
    """The same model in this process, for the references."""
    e = Engine(model_specs("")[0], n_ctx=1024, slots=1, n_threads=2)
    e.load()
    assert e.state == "ready", e.error_detail
    yield e
    e.close()


def ask(server, path: str, penalties: dict) -> str:
    """The server's greedy answer to PROMPT, as an EGP or a v5 client sends it."""
    settings = {"temperature": 0, "max_tokens": MAX_TOKENS, **penalties}
    if path.startswith("/v5"):
        body = {"model": DEFAULT_MODEL_ID, "messages": [{"role": "user", "content": PROMPT}], **settings}
    else:
        body = {"model": DEFAULT_MODEL_ID, "prompt": PROMPT, "model_parameters": settings}
    server.wait_idle()
    response = requests.post(server.base_url + path, json=body, timeout=300)
    assert response.status_code == 200, response.text
    data = response.json()
    return data["choices"][0]["message"]["content"] if path.startswith("/v5") else data["completion"]["text"]


def reference(engine: Engine, **params) -> str:
    """The greedy answer to PROMPT in this process, with `params` on top of SamplingParams' defaults."""
    tokens = engine.tokenize_messages([Message(role="user", content=PROMPT)])
    events = engine.run(tokens, SamplingParams(temperature=0, max_tokens=MAX_TOKENS, **params))
    return "".join(e.text for e in events if isinstance(e, Delta))


@pytest.mark.parametrize("path", PATHS)
def test_a_request_without_penalties_gets_the_anti_loop_defaults(local_server, engine, path):
    plain = reference(engine, **NO_DEFAULTS)
    assert loops(plain), plain  # this prompt loops without a penalty...
    answer = ask(local_server, path, {})
    assert answer == reference(engine)  # ...the server applies the defaults when none is asked for...
    assert not loops(answer), answer  # ...and they stop the loop


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("penalty", ["frequency_penalty", "presence_penalty"])
def test_an_explicit_penalty_replaces_the_defaults(local_server, engine, path, penalty):
    alone = reference(engine, **NO_DEFAULTS, **{penalty: 0.5})
    stacked = reference(engine, **{penalty: 0.5})
    assert alone != stacked  # so the answer tells which one the server did
    assert ask(local_server, path, {penalty: 0.5}) == alone


def test_explicit_zero_penalties_mean_no_penalty_at_all(local_server, engine):
    answer = ask(local_server, "/v5/chat/completions", {"frequency_penalty": 0, "presence_penalty": 0})
    assert answer == reference(engine, **NO_DEFAULTS)
    assert loops(answer)


def test_the_repeat_penalty_leaves_line_breaks_list_markers_and_code_punctuation_alone():
    import llama_cpp
    from llama_cpp._internals import LlamaModel

    params = llama_cpp.llama_model_default_params()
    params.vocab_only = True
    model = LlamaModel(path_model=str(default_model_path()), params=params, verbose=False)
    vocab = Vocab.of(model)
    seen = model.tokenize(b"1. Apples\n2. Pears\n- Milk\n* Eggs\n\ndef f(x):\n    return x[0]\n", add_bos=False, special=False)
    sampler = Sampler(SamplingParams(), vocab, seen)
    try:
        row = np.full(vocab.n_vocab, 2.0, dtype=np.float32)
        sampler.penalise(row)
    finally:
        sampler.close()
    value = {vocab.piece(t).decode(): float(row[t]) for t in seen}
    for structural in ("\n", "1", "2", ".", "-", "*", "(", "):", "\n   ", "[", "0", "]"):
        assert value[structural] == 2.0, structural  # seen, not penalised
    for word in (" Apples", " Milk", "def", " return", "x"):
        assert value[word] == pytest.approx(2.0 / DEFAULT_REPEAT_PENALTY), word
    assert row[model.tokenize(b" Bananas", add_bos=False, special=False)[0]] == 2.0  # not seen
