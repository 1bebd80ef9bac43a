"""Several sequences decoded together: one llama.cpp context, one batch per step.

`Batcher` owns a llama.cpp context with `n_slots` sequences, each with its own
part of the KV cache (kv_unified off, so a sequence attends only to its own
tokens). Each `step()` puts one token per generating sequence, plus chunks of
prompts still being read, into one `llama_batch`, decodes it with the thread
count `ThreadPolicy` gives, and lets each sequence's own `Sampler` pick its
next token. A sequence's stop sequences, limits and cancellation are its own.

Prefix reuse: a finished sequence keeps its tokens in its slot; a new job goes
to the free slot sharing the longest prefix with it, or gets its prefix back
from the `PrefixCache` (RAM), and only the rest of its prompt is evaluated.
Whatever a slot loses when it is reused is saved to that cache first.

Only the engine's worker thread calls `Batcher` methods.
"""

from __future__ import annotations

import ctypes
import logging
import time
from collections.abc import Callable

import numpy as np

from egp_core.local.jobs import STOPPED_MESSAGE, Delta, Failed, Finished, Job
from egp_core.local.kvcache import PrefixCache, common_prefix
from egp_core.local.sampling import Sampler, TokenLogprob, Vocab
from egp_core.local.textstream import StopScanner, Utf8Joiner
from egp_core.local.threads import ThreadPolicy

log = logging.getLogger(__name__)

N_BATCH = 512  # tokens per decode call
PREFILL_WITH_OTHERS = 128  # prompt tokens per step while other sequences are generating
MIN_SAVE = 64  # a slot's tokens worth saving to RAM before the slot is reused
MIN_RESTORE_GAIN = 32  # restore from RAM only when it saves this many tokens over the best slot
ABORT_FROM = 64  # batches with this many prompt tokens can be aborted mid-way by a cancel


class Slot:
    """One sequence of the KV cache and the job using it, if any."""

    def __init__(self, seq: int) -> None:
        self.seq = seq
        self.cached: list[int] = []  # tokens whose KV is in the cache, positions 0..len-1
        self.pending: list[int] = []  # tokens to evaluate next: the prompt's rest, or the last token
        self.job: Job | None = None
        self.sampler: Sampler | None = None
        self.joiner = Utf8Joiner()
        self.scanner = StopScanner()
        self.logprobs: list[TokenLogprob] = []
        self.produced = 0
        self.max_new = 0
        self.reused = 0
        self.sampled = False  # the prompt is read and a first token was picked: generating
        self.started = 0.0
        self.last_used = 0.0


class Batcher:
    """Decodes up to `n_slots` jobs together. See the module docstring."""

    def __init__(
        self,
        model,
        *,
        n_slots: int,
        n_ctx_seq: int,
        policy: ThreadPolicy,
        cache: PrefixCache | None = None,
    ) -> None:
        import llama_cpp
        from llama_cpp._internals import LlamaContext

        self._lib = llama_cpp
        self.model = model
        self.vocab = Vocab.of(model)
        self.policy = policy
        self.cache = cache if cache is not None else PrefixCache()
        params = llama_cpp.llama_context_default_params()
        params.n_ctx = n_ctx_seq * n_slots
        params.n_batch = params.n_ubatch = N_BATCH
        params.n_seq_max = n_slots
        params.kv_unified = False
        params.n_threads = params.n_threads_batch = policy.max_threads
        params.no_perf = True
        self._context = LlamaContext(model=model, params=params, verbose=False)
        self.ctx = self._context.ctx
        self._memory = llama_cpp.llama_get_memory(self.ctx)
        self.n_ctx_seq = llama_cpp.llama_n_ctx_seq(self.ctx)
        self._threads = policy.max_threads
        self.slots = [Slot(i) for i in range(n_slots)]
        self._batch = llama_cpp.llama_batch_init(N_BATCH, 0, 1)
        b = self._batch
        self._tok = np.ctypeslib.as_array(b.token, shape=(N_BATCH,))
        self._pos = np.ctypeslib.as_array(b.pos, shape=(N_BATCH,))
        self._nseq = np.ctypeslib.as_array(b.n_seq_id, shape=(N_BATCH,))
        self._out = np.ctypeslib.as_array(b.logits, shape=(N_BATCH,))
        self._nseq[:] = 1
        self._abort_jobs: list[Job] = []
        self._closing: Callable[[], bool] = lambda: False
        self._abort_cb = llama_cpp.ggml_abort_callback(self._should_abort)
        self._no_cb = llama_cpp.ggml_abort_callback()

    # -- jobs in and out

    @property
    def active(self) -> int:
        return sum(1 for s in self.slots if s.job is not None)

    @property
    def free(self) -> int:
        return len(self.slots) - self.active

    def start(self, job: Job) -> None:
        """Places a job in a free slot, reusing the longest cached prefix (slot or RAM)."""
        tokens = job.tokens
        sampler = Sampler(job.params, self.vocab, tokens)  # may raise (a bad grammar): nothing changed yet
        slot = self._place(tokens)
        reuse = min(common_prefix(slot.cached, tokens), len(tokens) - 1)  # one token left for logits
        self._trim(slot, reuse)
        room = self.n_ctx_seq - len(tokens)
        slot.job = job
        slot.pending = tokens[reuse:]
        slot.reused = reuse
        slot.sampler = sampler
        slot.joiner, slot.scanner = Utf8Joiner(), StopScanner(job.params.stop)
        slot.logprobs = []
        slot.produced = 0
        slot.sampled = False
        slot.max_new = min(job.params.max_tokens or room, room)
        slot.started = slot.last_used = time.monotonic()

    def _place(self, tokens: list[int]) -> Slot:
        """The free slot sharing the most with `tokens` when that is worth it (MIN_SAVE tokens),
        else the one that loses least (an empty one, then the least recently used)."""
        free = [s for s in self.slots if s.job is None]
        shared = {s.seq: common_prefix(s.cached, tokens) for s in free}

        def worth(s: Slot) -> tuple[int, int, float]:
            n = shared[s.seq]
            return (n if n >= MIN_SAVE else 0, n - len(s.cached), -s.last_used)

        best = max(free, key=worth)
        have = shared[best.seq]
        entry, saved = self.cache.best(tokens)
        if entry is not None and saved >= have + MIN_RESTORE_GAIN:
            slot = max(free, key=lambda s: (shared[s.seq] - len(s.cached), -s.last_used))
            self._save(slot)
            if self._restore(slot, entry.state):
                slot.cached = list(entry.tokens)
                self.cache.take(entry)
                return slot
            slot.cached = []
            return slot
        if len(best.cached) - have >= MIN_SAVE:
            self._save(best)
        return best

    def _save(self, slot: Slot) -> None:
        """Copies a slot's KV state to the RAM cache, when it holds enough to be worth it."""
        if len(slot.cached) < MIN_SAVE:
            return
        lib = self._lib
        size = lib.llama_state_seq_get_size(self.ctx, slot.seq)
        if size <= 0 or size > self.cache.budget:
            return
        buf = (ctypes.c_uint8 * size)()
        written = lib.llama_state_seq_get_data(self.ctx, buf, size, slot.seq)
        if written:
            self.cache.put(tuple(slot.cached), bytes(memoryview(buf)[:written]))

    def _restore(self, slot: Slot, state: bytes) -> bool:
        lib = self._lib
        lib.llama_memory_seq_rm(self._memory, slot.seq, -1, -1)
        buf = (ctypes.c_uint8 * len(state)).from_buffer_copy(state)
        if lib.llama_state_seq_set_data(self.ctx, buf, len(state), slot.seq) == 0:
            lib.llama_memory_seq_rm(self._memory, slot.seq, -1, -1)
            return False
        return True

    def _trim(self, slot: Slot, keep: int) -> None:
        if keep < len(slot.cached):
            if not self._lib.llama_memory_seq_rm(self._memory, slot.seq, keep, -1):
                self._lib.llama_memory_seq_rm(self._memory, slot.seq, -1, -1)
                keep = 0
            del slot.cached[keep:]

    def _release(self, slot: Slot) -> None:
        if slot.sampler is not None:
            slot.sampler.close()
        slot.job, slot.sampler, slot.pending = None, None, []
        slot.last_used = time.monotonic()

    def reap(self) -> None:
        """Frees the slots of cancelled jobs; whoever still listens learns the answer ended."""
        for slot in self.slots:
            job = slot.job
            if job is not None and job.cancelled.is_set():
                self._release(slot)
                job.report(Failed(STOPPED_MESSAGE, 503))
                job.done.set()

    def fail_all(self, message: str, status: int = 500) -> None:
        for slot in self.slots:
            job = slot.job
            if job is not None:
                self._release(slot)
                job.report(Failed(message, status))
                job.done.set()

    # -- one step

    def step(self, closing: Callable[[], bool] = lambda: False) -> None:
        """One decode call for every active slot: a token each, or a chunk of its prompt."""
        self.reap()
        busy = [s for s in self.slots if s.job is not None]
        if not busy:
            return
        n, outputs, chunks = 0, [], []
        for slot in busy:
            if slot.sampled:  # generating: its last token
                self._put(n, slot.pending[0], len(slot.cached), slot.seq, True)
                outputs.append((slot, n))
                chunks.append((slot, 1))
                n += 1
        room = N_BATCH - n if n == 0 else min(PREFILL_WITH_OTHERS, N_BATCH - n)
        prompt_tokens = 0
        for slot in sorted((s for s in busy if not s.sampled), key=lambda s: s.started):
            if room <= 0:
                break
            take = slot.pending[:room]
            start = len(slot.cached)
            k = len(take)
            self._tok[n : n + k] = take
            self._pos[n : n + k] = np.arange(start, start + k)
            self._out[n : n + k] = 0
            for i in range(n, n + k):
                self._batch.seq_id[i][0] = slot.seq
            last = k == len(slot.pending)
            if last:
                self._out[n + k - 1] = 1
                outputs.append((slot, n + k - 1))
            chunks.append((slot, k))
            n += k
            room -= k
            prompt_tokens += k
        self._batch.n_tokens = n
        threads = self.policy.threads()
        if threads != self._threads:
            self._lib.llama_set_n_threads(self.ctx, threads, threads)
            self._threads = threads
        rc = self._decode(chunks, prompt_tokens >= ABORT_FROM, closing)
        if rc != 0:
            for slot, _ in chunks:  # nothing of this batch is trusted: drop it from the cache
                self._lib.llama_memory_seq_rm(self._memory, slot.seq, len(slot.cached), -1)
            if rc == 2:  # aborted: every job in it was cancelled (reaped next step)
                return
            raise RuntimeError(f"llama_decode failed ({rc})")
        for slot, k in chunks:
            slot.cached.extend(slot.pending[:k])
            del slot.pending[:k]
        for slot, index in outputs:
            self._pick(slot, index)

    def _put(self, i: int, token: int, pos: int, seq: int, logits: bool) -> None:
        self._tok[i] = token
        self._pos[i] = pos
        self._out[i] = 1 if logits else 0
        self._batch.seq_id[i][0] = seq

    def _decode(self, chunks, abortable: bool, closing: Callable[[], bool]) -> int:
        lib = self._lib
        if not abortable:
            return lib.llama_decode(self.ctx, self._batch)
        self._abort_jobs = [slot.job for slot, _ in chunks]
        self._closing = closing
        lib.llama_set_abort_callback(self.ctx, self._abort_cb, None)
        try:
            return lib.llama_decode(self.ctx, self._batch)
        finally:
            lib.llama_set_abort_callback(self.ctx, self._no_cb, None)
            self._abort_jobs = []

    def _should_abort(self, _data) -> bool:
        return self._closing() or all(j.cancelled.is_set() for j in self._abort_jobs)

    def _pick(self, slot: Slot, index: int) -> None:
        job = slot.job
        token, info = slot.sampler.sample(self.ctx, index)
        slot.sampled = True
        if self._lib.llama_vocab_is_eog(self.vocab.vocab, token):
            return self._finish(slot, "stop")
        slot.produced += 1
        if info is not None:
            slot.logprobs.append(info)
        text, hit = slot.scanner.feed(slot.joiner.feed(self.vocab.piece(token)))
        if text:
            job.report(Delta(text, tuple(slot.logprobs)))
            slot.logprobs = []
        if hit:
            return self._finish(slot, "stop", stopped=True)
        if slot.produced >= slot.max_new:
            return self._finish(slot, "length")
        slot.pending = [token]

    def _finish(self, slot: Slot, reason: str, stopped: bool = False) -> None:
        job = slot.job
        if not stopped:
            text, stopped = slot.scanner.feed(slot.joiner.flush())
            rest = text if stopped else text + slot.scanner.flush()
            if rest:
                job.report(Delta(rest, tuple(slot.logprobs)))
            if stopped:
                reason = "stop"
        self._release(slot)
        job.report(Finished(reason, len(job.tokens), slot.produced, slot.reused))
        job.done.set()

    def close(self) -> None:
        if self._batch is not None:
            self._lib.llama_batch_free(self._batch)
            self._batch = None
        self._context.close()
