"""Sampling for one sequence: the parameters, their defaults, and a per-sequence sampler.

Defaults when a request leaves a parameter out (`DEFAULTS`), chosen for a
135M-parameter model, which falls into loops without a repetition penalty
(bench/loops.py measures it):

- temperature 0.2, top_p 0.95, top_k 40, min_p 0.05;
- against loops: a repetition penalty of 1.18 over the last 64 tokens (prompt
  included), the way llama.cpp and Ollama apply `repeat_penalty` (a positive
  logit is divided by it, a negative one multiplied), except that tokens
  without a letter (line breaks, spaces, punctuation, digits) are exempt, so
  lists, numbering, code and paragraphs keep their shape; and llama.cpp's DRY
  sampler ("don't repeat yourself": a token that would extend a sequence of 3
  or more tokens already seen in the last 1,024 generated tokens is penalised,
  0.8 x 1.75^(length - 3)). Only ":", quotes and "*" end a DRY sequence, not
  line breaks (llama.cpp's default list has "\n" too): a 135M model's loops are
  mostly lines and verses coming back, which "\n" would hide from DRY. A
  list marker or an indent after a line break repeats fewer than 3 tokens,
  and DRY only penalises the one token that continued a repeat last time
  (the same first word of an item), so lists and code keep their shape.
- Explicit parameters keep their meaning. A request that sets
  `frequency_penalty` or `presence_penalty` (any value, 0 included) gets
  exactly the OpenAI penalties it asked for (minus penalty x count, minus
  penalty if present, over the last 64 tokens, as llama.cpp applies them, on
  every token) and neither default above: they never stack. Explicit zeros
  therefore mean no penalty at all. Requests carry no `repeat_penalty` or DRY
  setting (those fields are ignored like any unknown one).

`Sampler` owns a llama.cpp sampler chain (top_k, top_p, min_p, temperature,
then a seeded draw; greedy at temperature 0). The penalties are applied in
place on the sequence's logits row before the chain runs, so any sampler
llama.cpp offers can be added to the chain without touching the batching.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from egp_core.types import ModelParameters

DEFAULT_TEMPERATURE = 0.2
DEFAULT_TOP_P = 0.95
DEFAULT_TOP_K = 40
DEFAULT_MIN_P = 0.05
DEFAULT_REPEAT_PENALTY = 1.18
DEFAULT_PENALTY_WINDOW = 64
DEFAULT_DRY_MULTIPLIER = 0.8  # DRY ("don't repeat yourself"), as proposed by its author
DEFAULT_DRY_BASE = 1.75
DEFAULT_DRY_ALLOWED = 3
DEFAULT_DRY_WINDOW = 1024
DRY_BREAKERS = (":", '"', "*")  # not "\n": see above
MAX_TOP_LOGPROBS = 5

DEFAULTS = (
    f"temperature {DEFAULT_TEMPERATURE}, top p {DEFAULT_TOP_P}, top k {DEFAULT_TOP_K}, min p {DEFAULT_MIN_P}; "
    f"against loops, a repetition penalty of {DEFAULT_REPEAT_PENALTY} on words seen in the last "
    f"{DEFAULT_PENALTY_WINDOW} tokens (line breaks, punctuation and numbers exempt) and DRY (multiplier "
    f"{DEFAULT_DRY_MULTIPLIER}, base {DEFAULT_DRY_BASE}, allowed length {DEFAULT_DRY_ALLOWED}, last "
    f"{DEFAULT_DRY_WINDOW:,} tokens, sequences broken only at colons, quotes and asterisks), both off when the "
    "request sets a frequency or presence penalty, which then applies alone; "
    "answers up to the rest of the context"
)


@dataclass(frozen=True, slots=True)
class SamplingParams:
    """How one sequence picks its tokens. Add a field here, then read it in `Sampler`.

    `seed`: None draws a fresh one; the same seed and parameters give the same
    text. `top_logprobs`: 0 to 5 alternatives reported per token (with
    `logprobs`). `grammar`: a GBNF grammar (root rule `root`), e.g. JSON mode.
    """

    temperature: float = DEFAULT_TEMPERATURE
    max_tokens: int | None = None
    stop: tuple[str, ...] = ()
    top_p: float = DEFAULT_TOP_P
    top_k: int = DEFAULT_TOP_K
    min_p: float = DEFAULT_MIN_P
    repeat_penalty: float = DEFAULT_REPEAT_PENALTY
    penalty_window: int = DEFAULT_PENALTY_WINDOW
    frequency_penalty: float = 0.0
    presence_penalty: float = 0.0
    dry_multiplier: float = DEFAULT_DRY_MULTIPLIER
    dry_base: float = DEFAULT_DRY_BASE
    dry_allowed_length: int = DEFAULT_DRY_ALLOWED
    dry_window: int = DEFAULT_DRY_WINDOW
    seed: int | None = None
    logprobs: bool = False
    top_logprobs: int = 0
    grammar: str | None = None

    @classmethod
    def of(
        cls,
        *,
        temperature: float | None = None,
        top_p: float | None = None,
        top_k: int | None = None,
        frequency_penalty: float | None = None,
        presence_penalty: float | None = None,
        **rest,
    ) -> SamplingParams:
        """A request's parameters, None where it left one out: those get the defaults, and an
        explicit frequency or presence penalty switches the anti-loop defaults off."""
        explicit = frequency_penalty is not None or presence_penalty is not None
        return cls(
            temperature=DEFAULT_TEMPERATURE if temperature is None else temperature,
            top_p=DEFAULT_TOP_P if top_p is None else top_p,
            top_k=DEFAULT_TOP_K if top_k is None else top_k,
            repeat_penalty=1.0 if explicit else DEFAULT_REPEAT_PENALTY,
            dry_multiplier=0.0 if explicit else DEFAULT_DRY_MULTIPLIER,
            frequency_penalty=frequency_penalty or 0.0,
            presence_penalty=presence_penalty or 0.0,
            **rest,
        )

    @classmethod
    def from_model_parameters(cls, p: ModelParameters | None) -> SamplingParams:
        from egp_core.types import ModelParameters

        p = p or ModelParameters()
        return cls.of(
            temperature=p.temperature,
            max_tokens=p.max_tokens,
            stop=tuple(p.stop_sequences or ()),
            top_p=p.top_p,
            top_k=p.top_k,
            frequency_penalty=p.frequency_penalty,
            presence_penalty=p.presence_penalty,
        )


@dataclass(frozen=True, slots=True)
class TokenLogprob:
    """One generated token with its log probability and the most likely alternatives."""

    token: bytes
    logprob: float
    top: tuple[tuple[bytes, float], ...] = ()


@dataclass(slots=True)
class Vocab:
    """What every sampler of one model shares: the llama.cpp vocab, token texts, and the tokens
    the repetition penalty leaves alone (no letter in them: line breaks, spaces, punctuation,
    digits, list markers)."""

    vocab: object  # llama_vocab_p
    n_vocab: int
    piece: object  # Callable[[int], bytes]
    exempt: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))  # per token: from repeat_penalty

    @classmethod
    def of(cls, model) -> Vocab:
        """From a llama_cpp._internals.LlamaModel."""
        import ctypes

        import llama_cpp

        n = model.n_vocab()
        buf = ctypes.create_string_buffer(256)

        def piece(token: int) -> bytes:
            size = llama_cpp.llama_token_to_piece(model.vocab, token, buf, len(buf), 0, False)
            return buf.raw[: max(size, 0)]

        pieces = [piece(t) for t in range(n)]
        exempt = [not any(c.isalpha() for c in b.decode("utf-8", "ignore")) for b in pieces]
        return cls(model.vocab, n, pieces.__getitem__, np.array(exempt, dtype=bool))


class Sampler:
    """Picks the next token of one sequence from its row of logits."""

    def __init__(self, params: SamplingParams, vocab: Vocab, prompt: list[int] | None = None) -> None:
        """`prompt`: its last tokens count for the penalties, as in llama.cpp's server."""
        import ctypes

        import llama_cpp

        self.params = params
        self.vocab = vocab
        self.seed = params.seed if params.seed is not None else random.randrange(2**31)
        self.history: list[int] = list((prompt or [])[-params.penalty_window :]) if params.penalty_window else []
        self._lib = llama_cpp
        chain = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())
        add = lambda s: llama_cpp.llama_sampler_chain_add(chain, s)  # noqa: E731
        if params.grammar:
            grammar = llama_cpp.llama_sampler_init_grammar(vocab.vocab, params.grammar.encode(), b"root")
            if not grammar:
                llama_cpp.llama_sampler_free(chain)
                raise ValueError("The grammar could not be parsed (GBNF, with a rule named root).")
            add(grammar)
        if params.dry_multiplier > 0:
            breakers = (ctypes.c_char_p * len(DRY_BREAKERS))(*(b.encode() for b in DRY_BREAKERS))
            add(
                llama_cpp.llama_sampler_init_dry(
                    vocab.vocab, params.dry_multiplier, params.dry_base, params.dry_allowed_length,
                    params.dry_window, breakers, len(DRY_BREAKERS),
                )
            )
        if params.temperature <= 0:
            add(llama_cpp.llama_sampler_init_greedy())
        else:
            if params.top_k > 0:
                add(llama_cpp.llama_sampler_init_top_k(params.top_k))
            if params.top_p < 1.0:
                add(llama_cpp.llama_sampler_init_top_p(params.top_p, 1))
            if params.min_p > 0:
                add(llama_cpp.llama_sampler_init_min_p(params.min_p, 1))
            add(llama_cpp.llama_sampler_init_temp(params.temperature))
            add(llama_cpp.llama_sampler_init_dist(self.seed))
        self._chain = chain

    def sample(self, ctx, index: int) -> tuple[int, TokenLogprob | None]:
        """The next token from output row `index` of the last decode (and its logprobs if asked)."""
        lib = self._lib
        row = np.ctypeslib.as_array(lib.llama_get_logits_ith(ctx, index), shape=(self.vocab.n_vocab,))
        raw = row.copy() if self.params.logprobs else None  # logprobs: before penalties and temperature
        self.penalise(row)
        token = lib.llama_sampler_sample(self._chain, ctx, index)
        self.history.append(token)
        if len(self.history) > 4 * self.params.penalty_window:
            del self.history[: -self.params.penalty_window]
        return token, None if raw is None else self._logprob(raw, token)

    def penalise(self, row: np.ndarray) -> None:
        """Applies the repetition, frequency and presence penalties to a row of logits, in place."""
        p = self.params
        if not self.history or (
            p.repeat_penalty == 1.0 and not p.frequency_penalty and not p.presence_penalty
        ):
            return
        ids, counts = np.unique(np.asarray(self.history[-p.penalty_window :], dtype=np.int32), return_counts=True)
        if p.repeat_penalty != 1.0:
            keep = ~self.vocab.exempt[ids] if len(self.vocab.exempt) else slice(None)  # a lookup: np.isin cost 0.4 ms
            rep = ids[keep]
            values = row[rep]
            row[rep] = np.where(values > 0, values / p.repeat_penalty, values * p.repeat_penalty)
        if p.frequency_penalty or p.presence_penalty:
            row[ids] -= counts * p.frequency_penalty + p.presence_penalty

    def _logprob(self, row: np.ndarray, token: int) -> TokenLogprob:
        shifted = row - row.max()
        logp = shifted - np.log(np.exp(shifted).sum())
        n = min(max(self.params.top_logprobs, 0), MAX_TOP_LOGPROBS)
        top: tuple[tuple[bytes, float], ...] = ()
        if n:
            best = np.argpartition(-logp, n)[:n]
            best = best[np.argsort(-logp[best])]
            top = tuple((self.vocab.piece(int(t)), float(logp[t])) for t in best)
        return TokenLogprob(self.vocab.piece(token), float(logp[token]), top)

    def close(self) -> None:
        if self._chain is not None:
            self._lib.llama_sampler_free(self._chain)
            self._chain = None

    def __del__(self) -> None:
        self.close()
