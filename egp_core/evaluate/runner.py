"""Running an evaluation: every (row, contestant, repeat) sent, graded and saved, in background threads.

    config = RunConfig(dataset_id=..., mapping={"question": "Question"}, expected_column="Expected",
                       contestants=[Contestant(...), Contestant(...)], graders=[{"kind": "contains"}])
    problems = check_plan(config, dataset)            # plain sentences; empty when it can run
    run_id = records.create_run(owner, title, dataset_id, config.to_dict(), config.total(len(dataset)))
    runner = start_run(records, run_id, client_factory)   # None when another live replica runs it
    runner.stop(); runner.wait()

Threads of the app process: per connection a limiter of requests at a time
(4 by default; the built-in model 1, or its slots when it batches) and a lane
of workers, each with its own clients. A judge's requests wait for a place in
their connection's limiter too (shared with the contestants on it), after the
answer's own place is given back. On a 429 the connection halves its
concurrency, says so in the run's notice, waits and tries again; it creeps
back up after a run of successes.
Results are written in batches (every half second or 25 results). A result
exists once per (run, row, contestant, repeat), so Resume, after a Stop, a
crash or on another replica, sends only what is missing. The owner beats
every second; a replica that stops beating (crashed) leaves the run
"interrupted", and any replica may take it over with Resume (`start_run`).
A contestant whose connection fails on its first requests is given up (its
remaining rows recorded as not sent, with the reason) while the others go on.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import requests

from egp_core.chat import build_request, estimate_tokens
from egp_core.errors import EGPError, ProtocolError, RateLimitError, ServerError, TimeoutError, error_to_dict
from egp_core.pricing import estimate_cost, price_for
from egp_core.templates import TemplateError, render_all, variables
from egp_core.types import CompletionRequest, Message, ModelParameters

from . import graders
from .datasets import Dataset, row_values, unmapped
from .records import Records

log = logging.getLogger(__name__)

REPLICA = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
"""This process, as the owner of the runs it executes."""

DEFAULT_CONCURRENCY = 4
LOCAL_CONCURRENCY = 1
MAX_CONTESTANTS = 4
MAX_REPEATS = 5
GIVE_UP_AFTER = 5
"""A contestant whose first this-many requests all fail is given up (the others carry on)."""
MAX_RATE_LIMITED = 8
"""How often one request may be answered 429 (after the client's own retries) before it counts as failed."""
MAX_CUT_RETRIES = 2
"""How often a request whose stream was cut, or that met a server error, is sent again."""
JUDGE_ANSWER_TOKENS = 30
"""About how long a judge's "Score: 4 / Reason: ..." is, for the estimate."""
RAISE_AFTER = 20
"""Successes in a row after which a slowed-down lane tries one more request at a time."""


@dataclass
class Contestant:
    """One column of results: where, which model, with what, and which prompt."""

    connection_id: str
    model: str
    template: str
    connection_name: str = ""
    kind: str = "egp"
    base_url: str = ""
    account_id: str | None = None
    api: str = "completions"
    parameters: dict[str, Any] = field(default_factory=dict)
    system_prompt: str = ""
    prompt_ref: dict[str, Any] | None = None  # {"prompt_id", "version", "name"} when from the library
    concurrency: int | None = None
    label: str = ""

    @property
    def lane(self) -> str:
        return self.connection_id

    def name(self) -> str:
        version = f" · {self.prompt_ref.get('name', 'prompt')} v{self.prompt_ref.get('version')}" if self.prompt_ref else ""
        return f"{self.label or '?'}: {self.model}{version}"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Contestant:
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class RunConfig:
    """What a run does; saved with the run (no keys), so Resume and "View code" can redo it."""

    dataset_id: str
    mapping: dict[str, str | None]
    contestants: list[Contestant]
    expected_column: str | None = None
    graders: list[dict[str, Any]] = field(default_factory=list)
    repeats: int = 1

    def total(self, rows: int) -> int:
        return rows * len(self.contestants) * self.repeats

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        return cls(dataset_id=data["dataset_id"], mapping=dict(data.get("mapping") or {}),
                   contestants=[Contestant.from_dict(c) for c in data.get("contestants") or []],
                   expected_column=data.get("expected_column"), graders=list(data.get("graders") or []),
                   repeats=int(data.get("repeats") or 1))


# ----- before running ---------------------------------------------------------------------------


def required_variables(template: str) -> list[str]:
    """The template's variables that have no default (TemplateError when the template is malformed)."""
    return [v.name for v in variables(template) if v.default is None]


def check_plan(config: RunConfig, dataset: Dataset, max_listed: int = 5) -> list[str]:
    """Everything that stops the run from starting, in plain sentences; [] when it can run."""
    problems: list[str] = []
    if not 1 <= len(config.contestants) <= MAX_CONTESTANTS:
        problems.append(f"Choose 1 to {MAX_CONTESTANTS} contestants.")
    if not 1 <= config.repeats <= MAX_REPEATS:
        problems.append(f"Repeats must be 1 to {MAX_REPEATS}.")
    if config.expected_column and config.expected_column not in dataset.columns:
        problems.append(f"The expected-answer column \"{config.expected_column}\" is not in the dataset.")
    for spec in config.graders:
        problem = graders.check_spec(spec)
        if problem:
            problems.append(f"{graders.KINDS.get(spec.get('kind'), 'Grader')}: {problem}")
        elif spec.get("kind") in graders.NEEDS_EXPECTED and not config.expected_column:
            problems.append(f"{graders.KINDS[spec['kind']]}: choose the column that holds the expected answer.")
    for c in config.contestants:
        who = c.name()
        if not c.model:
            problems.append(f"{who}: pick a model.")
        try:
            needed = required_variables(whole(c))
            names = [v.name for v in variables(whole(c))]
        except TemplateError as exc:
            problems.append(f"{who}: the prompt template cannot be used: {exc.message}")
            continue
        if not names:
            problems.append(f"{who}: the prompt has no {{{{variables}}}}, so every row would send the same "
                            "prompt. Add one, like {{question}}, for a column of the dataset.")
        for var in unmapped(config.mapping, needed):
            problems.append(f"{who}: the variable {{{{{var}}}}} has no column. Pick one for it under "
                            "\"Columns\", or give it a default in the prompt: {{" + var + "|...}}.")
        for var, col in config.mapping.items():
            if col is not None and col not in dataset.columns:
                problems.append(f"The variable {{{{{var}}}}} is mapped to \"{col}\", which is not a column.")
        if any(p.startswith(who) for p in problems):
            continue
        # a row breaks the prompt only where a variable without a default meets an empty cell
        columns = [dataset.columns.index(config.mapping[v]) for v in needed if config.mapping.get(v)]
        rows = [i for i, row in enumerate(dataset.rows) if any(row[k] == "" for k in columns)]
        if rows:
            try:
                filled(c, dataset, rows[0], config.mapping)
                why = "a value is missing"
            except TemplateError as exc:
                why = exc.message.rstrip(".")
            listed = ", ".join(str(i + 1) for i in rows[:max_listed])
            more = f" and {len(rows) - max_listed:,} more" if len(rows) > max_listed else ""
            problems.append(f"{who}: {len(rows):,} row{'s' if len(rows) != 1 else ''} cannot fill the prompt "
                            f"({why}): row{'s' if len(rows) != 1 else ''} {listed}{more}. Fill those cells, or "
                            "give the variable a default.")
    return problems


def whole(c: Contestant) -> str:
    """The contestant's system prompt and template as one text, for listing their variables together."""
    return f"{c.system_prompt}\n{c.template}" if c.system_prompt else c.template


def filled(c: Contestant, dataset: Dataset, row: int, mapping: dict[str, str | None]) -> tuple[str, str]:
    """(system prompt, user message) of row `row`, both filled with its values (TemplateError if it cannot)."""
    system, user = render_all([c.system_prompt or "", c.template], row_values(dataset, row, mapping))
    return system, user


def build(c: Contestant, prompt: str, system: str | None = None, params: ModelParameters | None = None
          ) -> CompletionRequest:
    """The request a contestant sends for one filled prompt (as the chat page would send it);
    `params`: its parameters already checked (a run checks them once, not on every row)."""
    params = params or ModelParameters.model_validate(c.parameters or {})
    api = "chat" if c.kind == "openai" else (c.api or "completions")
    return build_request([Message(role="user", content=prompt)], model=c.model, parameters=params,
                         system_prompt=(c.system_prompt if system is None else system) or None, api=api).request


@dataclass
class Estimate:
    requests: int
    prompt_tokens: int
    completion_tokens: int
    cost: float | None  # None when a model has no known price
    seconds: float
    unpriced: list[str]

    @property
    def needs_confirmation(self) -> bool:
        return self.requests > 500 or (self.cost or 0) > 1.0 or self.seconds > 600


def estimate(config: RunConfig, dataset: Dataset, prices: dict | None = None,
             history: dict[str, dict[str, float]] | None = None, sample: int = 200) -> Estimate:
    """Requests, tokens, cost (from the price table) and time (from recent speeds) of a run.

    `history`: per model, recent {"completion_tokens", "latency"} averages (see `speeds_from_history`);
    without it an answer is guessed at max_tokens/2 (at most 256) tokens and 2 seconds. A judge is
    asked once per answer (its prompt, the question and the answer in; about 30 tokens out). The time
    is that of the busiest connection (its requests, contestants' and judges' alike, at its requests
    at a time), or of a contestant's workers, who wait for the judge's answer before the next row."""
    rows = len(dataset)
    step = max(1, rows // sample)
    picked = list(range(0, rows, step))[:sample]
    total_prompt = total_completion = 0
    cost: float | None = 0.0
    unpriced: list[str] = []
    judges = judges_of(config)
    limits = lane_limits(config, judges)
    busy: dict[str, float] = {}  # per connection: seconds of its requests over its places
    workers: dict[str, float] = {}  # per contestant connection: seconds its workers spend per answer, judge included
    for c in config.contestants:
        sizes = []
        for i in picked:
            try:
                sizes.append(estimate_tokens("".join(filled(c, dataset, i, config.mapping))))
            except TemplateError:
                continue
        per_prompt = sum(sizes) / len(sizes) if sizes else 0
        seen = (history or {}).get(c.model) or {}
        max_tokens = (c.parameters or {}).get("max_tokens") or 512
        per_answer = seen.get("completion_tokens") or min(256, max_tokens / 2)
        latency = seen.get("latency") or 2.0
        n = rows * config.repeats
        prompt_tokens, completion_tokens = int(per_prompt * n), int(per_answer * n)
        total_prompt += prompt_tokens
        total_completion += completion_tokens
        price = price_for(c.model, prices)
        if price is None:
            unpriced.append(c.model)
        elif cost is not None:
            cost += estimate_cost({"prompt": prompt_tokens, "completion": completion_tokens}, price) or 0.0
        seconds = n * latency  # of this contestant's workers
        busy[c.lane] = busy.get(c.lane, 0.0) + seconds / limits[c.lane]
        for gi, judge in judges.items():  # asked once per answer
            spec = config.graders[gi]
            judge_prompt = int((estimate_tokens(spec.get("prompt") or graders.DEFAULT_JUDGE_PROMPT)
                                + per_prompt + per_answer) * n)
            judge_answer = JUDGE_ANSWER_TOKENS * n
            total_prompt += judge_prompt
            total_completion += judge_answer
            judge_price = price_for(spec.get("model"), prices)
            if judge_price is None:
                unpriced.append(spec.get("model") or "the judge")
            elif cost is not None:
                cost += estimate_cost({"prompt": judge_prompt, "completion": judge_answer}, judge_price) or 0.0
            judging = n * ((history or {}).get(spec.get("model")) or {}).get("latency", 2.0)
            busy[judge.lane] = busy.get(judge.lane, 0.0) + judging / limits[judge.lane]
            seconds += judging
        workers[c.lane] = workers.get(c.lane, 0.0) + seconds / limits[c.lane]
    if unpriced:
        cost = None
    return Estimate(requests=config.total(rows) * (1 + len(judges)), prompt_tokens=total_prompt,
                    completion_tokens=total_completion, cost=cost,
                    seconds=max([*busy.values(), *workers.values()], default=0.0), unpriced=sorted(set(unpriced)))


def speeds_from_history(store: Any, owner: str, last: int = 500) -> dict[str, dict[str, float]]:
    """Per model, the average answer length (tokens) and time (s) of the owner's `last` answers."""
    from egp_core.store.usage import usage_rows

    out: dict[str, dict[str, list[float]]] = {}
    for r in usage_rows(store, owner)[-last:]:
        if r["total_time"] and r["completion_tokens"]:
            d = out.setdefault(r["model"], {"completion_tokens": [], "latency": []})
            d["completion_tokens"].append(r["completion_tokens"])
            d["latency"].append(r["total_time"])
    return {m: {k: sum(v) / len(v) for k, v in d.items()} for m, d in out.items()}


def concurrency_for(c: Contestant) -> int:
    """Requests at a time on the contestant's (or judge's) connection: as chosen, else 4; the
    built-in model 1, or as many as it decodes together when it batches (its /health "slots")."""
    if c.concurrency:
        return max(1, int(c.concurrency))
    return local_slots(c.base_url) if c.kind == "local" else DEFAULT_CONCURRENCY


def judges_of(config: RunConfig) -> dict[int, Contestant]:
    """The run's LLM judges, by grader index, each as a Contestant (its connection, model, parameters)."""
    return {gi: Contestant(connection_id=spec.get("connection_id") or "judge", model=spec.get("model") or "",
                           template="", kind=spec.get("connection_kind") or "egp", base_url=spec.get("base_url") or "",
                           account_id=spec.get("account_id"), api=spec.get("api") or "completions",
                           connection_name=spec.get("connection_name") or "",
                           parameters={"temperature": 0.0, "max_tokens": 200})
            for gi, spec in enumerate(config.graders) if spec.get("kind") == "judge"}


def lane_limits(config: RunConfig, judges: dict[int, Contestant]) -> dict[str, int]:
    """Requests at a time per connection: its contestants' (the lowest, when several share it); a judge's
    connection of its own as `concurrency_for` says. Contestants and judges on one connection share it."""
    limits: dict[str, int] = {}
    for c in config.contestants:
        limit = concurrency_for(c)
        limits[c.lane] = min(limits.get(c.lane, limit), limit)
    for j in judges.values():
        if j.lane not in limits:
            limits[j.lane] = concurrency_for(j)
    return limits


_SLOTS: dict[str, int] = {}


def local_slots(base_url: str) -> int:
    """How many requests the built-in model's server decodes together (1 when it cannot say);
    remembered per address once it has said."""
    if base_url not in _SLOTS:
        try:
            slots = requests.get(base_url.rstrip("/") + "/health", timeout=1.0).json().get("slots")
        except (requests.RequestException, ValueError, AttributeError):
            return LOCAL_CONCURRENCY
        if not isinstance(slots, int):
            return LOCAL_CONCURRENCY
        _SLOTS[base_url] = max(LOCAL_CONCURRENCY, slots)
    return _SLOTS[base_url]


# ----- running ------------------------------------------------------------------------------------

ClientFactory = Callable[[Contestant, Callable[[EGPError, float], None]], Any]
"""(contestant or judge spec as a Contestant, on_retry) -> a client with .stream(request) and .close()."""


class _Limiter:
    """Requests at a time on one connection (contestants' and judges' alike), lowered by a 429."""

    def __init__(self, key: str, name: str, limit: int) -> None:
        self.key = key
        self.name = name
        self.max = limit
        self.limit = limit
        self.active = 0
        self.streak = 0
        self.cond = threading.Condition()

    def acquire(self, stopped: threading.Event) -> bool:
        """Wait for a free place; False when the run stops first."""
        with self.cond:
            while not stopped.is_set():
                if self.active < self.limit:
                    self.active += 1
                    return True
                self.cond.wait(0.2)
            return False

    def release(self) -> None:
        with self.cond:
            self.active -= 1
            self.cond.notify_all()

    def slow_down(self) -> int | None:
        """Halve the concurrency; the new value, or None when it was already 1."""
        with self.cond:
            self.streak = 0
            if self.limit <= 1:
                return None
            self.limit = max(1, self.limit // 2)
            return self.limit

    def succeeded(self) -> None:
        with self.cond:
            self.streak += 1
            if self.streak >= RAISE_AFTER and self.limit < self.max:
                self.limit += 1
                self.streak = 0
                self.cond.notify_all()


class _Lane:
    """The contestants' requests to one connection, waiting for a place in its limiter."""

    def __init__(self, limiter: _Limiter) -> None:
        self.limiter = limiter
        self.items: deque[tuple[int, int, int]] = deque()

    def take(self, stopped: threading.Event) -> tuple[int, int, int] | None:
        """The next request, with a place in the limiter taken for it; None when none is left."""
        limiter = self.limiter
        with limiter.cond:
            while True:
                if stopped.is_set() or not self.items:
                    return None
                if limiter.active < limiter.limit:
                    limiter.active += 1
                    return self.items.popleft()
                limiter.cond.wait(0.2)


class Runner:
    """Executes one run (already claimed by this replica) until done or stopped."""

    def __init__(self, records: Records, run_id: str, client_factory: ClientFactory, *, replica: str = REPLICA,
                 prices: dict | None = None, batch_size: int = 25, flush_every: float = 0.5,
                 heartbeat_every: float = 1.0) -> None:
        run = records.get_run(run_id)
        if run is None:
            raise LookupError(f"no run {run_id}")
        self.records = records
        self.run_id = run_id
        self.replica = replica
        self.config = RunConfig.from_dict(run.config)
        dataset = records.get_dataset(self.config.dataset_id)
        if dataset is None:
            raise LookupError(f"no dataset {self.config.dataset_id}")
        self.dataset = dataset
        self.client_factory = client_factory
        self.prices = prices if prices is not None else records.store.get_prices()
        self.batch_size = batch_size
        self.flush_every = flush_every
        self.heartbeat_every = heartbeat_every
        self.status = "running"
        self.started = time.monotonic()
        self.sent = 0  # results produced by this runner (for its ETA)

        self._stop = threading.Event()
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._buffer: list[dict[str, Any]] = []
        self._streams: set[Any] = set()
        self._notices: dict[str, str] = {}
        self._failures = [0] * len(self.config.contestants)
        self._successes = [0] * len(self.config.contestants)
        self._given_up: dict[int, str] = {}
        self._params = [ModelParameters.model_validate(c.parameters or {}) for c in self.config.contestants]
        self._price = [price_for(c.model, self.prices) for c in self.config.contestants]
        self._flush_now = threading.Event()  # a batch is full: the keeper writes it (workers never wait on the database)
        # one limiter per connection: its contestants' requests and any judge's on it share it
        self._judges = judges_of(self.config)
        names: dict[str, str] = {}
        for c in self.config.contestants:
            names.setdefault(c.lane, c.connection_name or c.connection_id)
        for j in self._judges.values():
            names.setdefault(j.lane, j.connection_name or "the judge")
        self._limiters = {lane: _Limiter(lane, names[lane], limit)
                          for lane, limit in lane_limits(self.config, self._judges).items()}
        self._lanes: dict[str, _Lane] = {}
        done = records.done_keys(run_id)
        for r in range(len(dataset)):
            for ci, c in enumerate(self.config.contestants):
                for rep in range(self.config.repeats):
                    if (r, ci, rep) not in done:
                        lane = self._lanes.get(c.lane) or self._lanes.setdefault(c.lane, _Lane(self._limiters[c.lane]))
                        lane.items.append((r, ci, rep))
        self.pending_at_start = sum(len(lane.items) for lane in self._lanes.values())
        self._workers: list[threading.Thread] = []
        self._working = 0
        self._all_done = threading.Event()
        self._keeper = threading.Thread(target=self._keep, name=f"eval-keeper-{run_id[:8]}", daemon=True)

    # -- control -------------------------------------------------------------------------------------
    def start(self) -> Runner:
        self._working = sum(lane.limiter.max for lane in self._lanes.values())
        if not self._working:
            self._all_done.set()
        for key, lane in self._lanes.items():
            for i in range(lane.limiter.max):
                t = threading.Thread(target=self._work, args=(lane,), name=f"eval-{self.run_id[:8]}-{key}-{i}",
                                     daemon=True)
                self._workers.append(t)
                t.start()
        self._keeper.start()
        return self

    def stop(self) -> None:
        """Stop now: requests in flight are closed; what finished is saved; the rest waits for Resume."""
        self._stop.set()
        with self._lock:
            streams = list(self._streams)
        for stream in streams:
            try:
                stream.close()
            except Exception:
                pass

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)

    @property
    def done(self) -> bool:
        return self._done.is_set()

    @property
    def notice(self) -> str | None:
        with self._lock:
            return " ".join(self._notices.values()) or None

    def _say(self, key: str, text: str) -> None:
        with self._lock:
            self._notices[key] = text

    # -- workers -------------------------------------------------------------------------------------
    def _work(self, lane: _Lane) -> None:
        clients: dict[int, Any] = {}
        try:
            while True:
                item = lane.take(self._stop)
                if item is None:
                    return
                try:
                    try:
                        result, prompt = self._execute(item, lane.limiter, clients)
                    finally:
                        lane.limiter.release()  # the judge, if any, waits for a place on its own connection
                    if result is not None and result["status"] == "ok":
                        grades = self._grade(prompt, result["output"], item[0], clients)
                        result = None if grades is None else result | grades  # stopped: Resume sends it again
                except Exception as exc:  # a bug must not lose the row silently
                    result = self._error(item, EGPError("Something went wrong with this row.", detail=repr(exc)))
                if result is not None:
                    self._save(result)
        finally:
            for client in clients.values():
                try:
                    client.close()
                except Exception:
                    pass
            with self._lock:
                self._working -= 1
                if self._working == 0:
                    self._all_done.set()
                    self._flush_now.set()

    def _client(self, clients: dict[int, Any], key: int, contestant: Contestant) -> Any:
        """This worker's client for a contestant or a judge; its 429s slow down that connection."""
        if key not in clients:
            limiter = self._limiters[contestant.lane]

            def on_retry(error: EGPError, delay: float) -> None:
                if isinstance(error, RateLimitError):
                    self._rate_limited(limiter)

            clients[key] = self.client_factory(contestant, on_retry)
        return clients[key]

    def _rate_limited(self, limiter: _Limiter) -> None:
        now = limiter.slow_down()
        with self._lock:
            said = f"429-{limiter.key}" in self._notices
        if now is not None or not said:
            now = now or 1
            self._say(f"429-{limiter.key}", f"The server of {limiter.name} asked us to slow down (rate limit): "
                      f"now {now} request{'s' if now != 1 else ''} at a time.")

    def _execute(self, item: tuple[int, int, int], limiter: _Limiter, clients: dict[int, Any]
                 ) -> tuple[dict[str, Any] | None, str]:
        """Send one request (its place in the limiter taken); (its result, or None when stopped; the prompt)."""
        row, ci, rep = item
        c = self.config.contestants[ci]
        if ci in self._given_up:
            return self._error(item, EGPError(self._given_up[ci]), sent=False), ""
        system, prompt = filled(c, self.dataset, row, self.config.mapping)
        request = build(c, prompt, system, self._params[ci])
        client = self._client(clients, ci, c)
        cuts = limited = 0
        while True:
            if self._stop.is_set():
                return None, prompt
            stream = client.stream(request)
            with self._lock:
                self._streams.add(stream)
            try:
                for _chunk in stream:
                    if self._stop.is_set():
                        break
                if self._stop.is_set():
                    return None, prompt
                completion = stream.completion
                break
            except RateLimitError as exc:
                limited += 1
                if limited >= MAX_RATE_LIMITED:
                    return self._failed(item, exc), prompt
                self._rate_limited(limiter)
                self._stop.wait(exc.retry_after if exc.retry_after is not None else min(2.0 ** limited, 30.0))
            except (ProtocolError, ServerError, TimeoutError) as exc:
                cuts += 1
                if cuts > MAX_CUT_RETRIES:
                    return self._failed(item, exc), prompt
            except EGPError as exc:
                return self._failed(item, exc), prompt
            finally:
                with self._lock:
                    self._streams.discard(stream)
                stream.close()
        limiter.succeeded()
        with self._lock:
            self._successes[ci] += 1
            self._failures[ci] = 0
        usage = completion.usage
        price = self._price[ci]
        result = {
            "run_id": self.run_id, "row_index": row, "contestant": ci, "repeat_index": rep, "status": "ok",
            "output": completion.text,
            "prompt_tokens": usage.prompt if usage else None, "completion_tokens": usage.completion if usage else None,
            "latency": completion.metrics.total_time, "first_token": completion.metrics.time_to_first_token,
            "cost": estimate_cost(usage, price) if usage else None,
        }
        return result, prompt

    def _grade(self, prompt: str, output: str, row: int, clients: dict[int, Any]) -> dict[str, Any] | None:
        """Grades, the verdict and the judge's score of an answer; None when the run stops meanwhile."""
        expected = None
        if self.config.expected_column:
            expected = self.dataset.rows[row][self.dataset.columns.index(self.config.expected_column)]
        grades: list[dict[str, Any]] = []
        judge_score = None
        for gi, spec in enumerate(self.config.graders):
            if spec.get("kind") == "judge":
                g = self._judge(gi, spec, prompt, output, expected, clients)
                if g is None:
                    return None
                judge_score = g.score
            else:
                g = graders.grade(spec, output, expected)
            grades.append(g.to_dict())
        verdicts = [g["passed"] for g in grades if g["passed"] is not None]
        return {"grades": grades, "passed": all(verdicts) if verdicts else None, "judge_score": judge_score}

    def _judge(self, gi: int, spec: dict[str, Any], prompt: str, output: str, expected: str | None,
               clients: dict[int, Any]) -> graders.Grade | None:
        """Ask the judge, waiting for a place on its connection (shared with any contestant there);
        a 429 lowers that connection's requests at a time, waits, and asks again. None when stopped."""
        judge = self._judges[gi]
        limiter = self._limiters[judge.lane]
        request = build(judge, graders.judge_prompt(spec, prompt, output, expected))
        limited = 0
        while True:
            if not limiter.acquire(self._stop):
                return None
            try:
                text = self._client(clients, 1000 + gi, judge).complete(request).text
                limiter.succeeded()
                break
            except RateLimitError as exc:
                limited += 1
                if limited >= MAX_RATE_LIMITED:
                    return graders.Grade(None, note=f"The judge could not be asked: {exc.user_message}")
                self._rate_limited(limiter)
                wait = exc.retry_after if exc.retry_after is not None else min(2.0 ** limited, 30.0)
            except EGPError as exc:
                return graders.Grade(None, note=f"The judge could not be asked: {exc.user_message}")
            finally:
                limiter.release()
            if self._stop.wait(wait):  # waiting without a place, so others on the connection go on
                return None
        return graders.parse_judge(text, float(spec.get("pass_score") or graders.DEFAULT_PASS_SCORE))

    def _failed(self, item: tuple[int, int, int], error: EGPError) -> dict[str, Any]:
        ci = item[1]
        with self._lock:
            self._failures[ci] += 1
            give_up = self._successes[ci] == 0 and self._failures[ci] >= GIVE_UP_AFTER and ci not in self._given_up
            if give_up:
                c = self.config.contestants[ci]
                self._given_up[ci] = (f"Not sent: {c.name()} failed on its first {GIVE_UP_AFTER} requests "
                                      f"({error.user_message})")
        if give_up:
            self._say(f"dead-{ci}", f"{c.name()}: every request failed ({error.user_message}) The run carries on "
                      "for the others; fix the connection, then use \"Retry failed rows\".")
        return self._error(item, error)

    def _error(self, item: tuple[int, int, int], error: EGPError, sent: bool = True) -> dict[str, Any]:
        row, ci, rep = item
        return {"run_id": self.run_id, "row_index": row, "contestant": ci, "repeat_index": rep, "status": "error",
                "output": "", "error": json.dumps(error_to_dict(error)), "passed": None}

    # -- saving --------------------------------------------------------------------------------------
    def _save(self, result: dict[str, Any]) -> None:
        with self._lock:
            self._buffer.append(result)
            self.sent += 1
            full = len(self._buffer) >= self.batch_size
        if full:
            self._flush_now.set()

    def _flush(self) -> None:
        with self._lock:
            batch, self._buffer = self._buffer, []
        if not batch:
            return
        for attempt in range(5):  # a busy database: wait and try again; results are never dropped
            try:
                self.records.add_results(batch)
                return
            except Exception:
                if attempt == 4:
                    log.exception("Could not save %d evaluation results of run %s", len(batch), self.run_id)
                    with self._lock:
                        self._buffer[:0] = batch
                    return
                time.sleep(0.2 * (attempt + 1))

    def _keep(self) -> None:
        """Flush batches, beat, notice a Stop from another replica; at the end, the final save."""
        last_beat = 0.0
        try:
            while not self._all_done.is_set():
                self._flush_now.wait(self.flush_every)
                self._flush_now.clear()
                if self._all_done.is_set():
                    break
                self._flush()
                if time.monotonic() - last_beat >= self.heartbeat_every:
                    last_beat = time.monotonic()
                    try:
                        status = self.records.heartbeat(self.run_id, self.replica, self.notice)
                    except Exception:
                        continue  # the database hiccuped; the next beat tries again
                    if status != "running":  # stopped elsewhere, or taken over by another replica
                        self.stop()
            for t in self._workers:
                t.join()
            self._flush()
            with self._lock:
                unsaved = bool(self._buffer)
            # results that could not be saved are missing: "stopped" lets Resume send them again
            status = "stopped" if self._stop.is_set() or unsaved else "complete"
            if self.notice:
                try:
                    self.records.heartbeat(self.run_id, self.replica, self.notice)
                except Exception:
                    pass
            for _attempt in range(5):
                try:
                    self.records.finish(self.run_id, self.replica, status)
                    break
                except Exception:
                    time.sleep(0.5)
            self.status = status
        finally:
            self._done.set()

    # -- progress ------------------------------------------------------------------------------------
    def eta_seconds(self, remaining: int) -> float | None:
        elapsed = time.monotonic() - self.started
        if self.sent == 0 or elapsed <= 0:
            return None
        return remaining * elapsed / self.sent


class RunnerRegistry:
    """The runs executing in this process, by run id."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._runners: dict[str, Runner] = {}

    def get(self, run_id: str) -> Runner | None:
        with self._lock:
            return self._runners.get(run_id)

    def add(self, runner: Runner) -> None:
        with self._lock:
            self._runners = {k: r for k, r in self._runners.items() if not r.done}
            self._runners[runner.run_id] = runner

    def running(self) -> list[Runner]:
        with self._lock:
            return [r for r in self._runners.values() if not r.done]


def start_run(records: Records, run_id: str, client_factory: ClientFactory, *, replica: str = REPLICA,
              registry: RunnerRegistry | None = None, stale_after: float | None = None, **kw: Any) -> Runner | None:
    """Claim the run for this replica and start it (or Resume it). None when another live replica runs it."""
    if registry is not None:
        live = registry.get(run_id)
        if live is not None and not live.done:
            return live
    claimed = records.claim(run_id, replica) if stale_after is None else records.claim(run_id, replica, stale_after)
    if not claimed:
        return None
    runner = Runner(records, run_id, client_factory, replica=replica, **kw)
    if registry is not None:
        registry.add(runner)
    return runner.start()


def client_factory_for(connections: Sequence[Any], **client_kw: Any) -> ClientFactory:
    """A factory that finds each contestant's connection (with its key) by id among `connections`;
    when it is not there (another session's connection), one built from the saved address, without a key."""
    from egp_core.connections import Connection

    by_id = {c.id: c for c in connections}

    def make(c: Contestant, on_retry: Callable[[EGPError, float], None]) -> Any:
        conn = by_id.get(c.connection_id) or Connection(
            id=c.connection_id, name=c.connection_name or c.connection_id, kind=c.kind or "egp",  # type: ignore[arg-type]
            base_url=c.base_url, account_id=c.account_id)
        kw = dict(client_kw, on_retry=on_retry)
        if conn.kind != "openai":
            kw["api"] = c.api or "completions"
        return conn.make_client(**kw)

    return make
