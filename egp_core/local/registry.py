"""The set of local models a server offers, by model id."""

from __future__ import annotations

from egp_core.local.engine import DEFAULT_MAX_WAITING, Engine, ModelSpec, model_specs


class Registry:
    """Engines by model id. The first one (the bundled model) loads at start, others on first use."""

    def __init__(
        self,
        specs: list[ModelSpec] | None = None,
        *,
        n_ctx: int | None = None,
        n_threads: int | None = None,
        slots: int | None = None,
        max_waiting: int = DEFAULT_MAX_WAITING,
    ) -> None:
        """`n_threads`: the most CPU threads per model (default: the machine's cores);
        `slots`: requests decoded together per model (default: up to 4, as memory allows)."""
        specs = specs if specs is not None else model_specs()
        self.engines: dict[str, Engine] = {
            s.id: Engine(s, n_ctx=n_ctx, n_threads=n_threads, slots=slots, max_waiting=max_waiting)
            for s in specs
        }
        self.default = next(iter(self.engines.values()))

    @property
    def ids(self) -> list[str]:
        return list(self.engines)

    def get(self, model_id: str) -> Engine | None:
        return self.engines.get(model_id)

    def start(self) -> None:
        """Starts loading the default model in the background."""
        self.default.start_loading()

    def status(self) -> dict:
        models = [e.status() for e in self.engines.values()]
        state = self.default.state
        return {
            "status": {"ready": "ok"}.get(state, state),
            "ready": state == "ready",
            "busy": any(m["busy"] for m in models),
            "active": sum(m["active"] for m in models),
            "slots": self.default.slots,
            "queue_length": sum(m["queue_length"] for m in models),
            "error": self.default.error,
            "error_detail": self.default.error_detail,
            "models": models,
        }

    def close(self) -> None:
        for engine in self.engines.values():
            engine.close()
